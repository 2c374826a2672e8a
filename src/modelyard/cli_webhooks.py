"""`modelyard webhooks`: register, list, change and delete webhooks, fire a test delivery, and read
a webhook's delivery log, on the stack MLFLOW_TRACKING_URI (or --tracking-uri) names."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click


def _store(tracking_uri: str | None) -> Any:
    from modelyard.client import Client

    return Client(tracking_uri).registry_store


def _fails_cleanly(func: Callable[..., Any]) -> Callable[..., Any]:
    """The main CLI's error handling (one line, exit 1), plus `--tracking-uri`."""
    from modelyard.cli import _fails_cleanly as one_line_errors

    return click.option(
        "--tracking-uri", default=None, help="[default: $MODELYARD_TRACKING_URI, $MLFLOW_TRACKING_URI]"
    )(one_line_errors(func))


def _events(value: str | None) -> list[str] | None:
    return None if value is None else [part.strip() for part in value.split(",") if part.strip()]


def _echo(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


@click.group("webhooks")
def webhooks() -> None:
    """Webhooks: signed HTTP POSTs on registry and run events (see docs/operations.md)."""


_EVENTS_HELP = (
    "Comma-separated event kinds: model_version.created, model_version.stage_transitioned, "
    "registered_model.alias_set, deploy.finished, run.finished [default: all]"
)


@webhooks.command("create")
@click.option("--name", required=True)
@click.option("--url", required=True, help="http:// or https:// URL that receives the POSTs.")
@click.option("--events", default=None, help=_EVENTS_HELP)
@click.option("--description", default=None)
@click.option("--secret", default=None, help="Signing secret (16+ characters) [default: generated].")
@click.option("--inactive", is_flag=True, help="Create it paused.")
@_fails_cleanly
def create(
    tracking_uri: str | None, name: str, url: str, events: str | None, description: str | None,
    secret: str | None, inactive: bool,
) -> None:  # fmt: skip
    """Register a webhook; prints it with its secret, which is never shown again."""
    from modelyard.client import webhooks as api

    created = api.create(_store(tracking_uri), name, url, _events(events), description, secret, not inactive)
    _echo(created.to_dict())


@webhooks.command("list")
@_fails_cleanly
def list_command(tracking_uri: str | None) -> None:
    """Every webhook (without secrets)."""
    from modelyard.client import webhooks as api

    _echo([w.to_dict() for w in api.list_webhooks(_store(tracking_uri))])


@webhooks.command("update")
@click.argument("webhook_id")
@click.option("--name", default=None)
@click.option("--url", default=None)
@click.option("--events", default=None, help=_EVENTS_HELP)
@click.option("--description", default=None)
@click.option("--active/--inactive", default=None, help="Resume or pause deliveries.")
@click.option("--rotate-secret", is_flag=True, help="Make a new secret (printed once).")
@_fails_cleanly
def update(
    tracking_uri: str | None, webhook_id: str, name: str | None, url: str | None, events: str | None,
    description: str | None, active: bool | None, rotate_secret: bool,
) -> None:  # fmt: skip
    """Change a webhook's fields."""
    from modelyard.client import webhooks as api

    changed = api.update(
        _store(tracking_uri), webhook_id, name=name, url=url, events=_events(events), description=description,
        active=active, rotate_secret=rotate_secret or None,
    )  # fmt: skip
    _echo(changed.to_dict())


@webhooks.command("delete")
@click.argument("webhook_id")
@_fails_cleanly
def delete(tracking_uri: str | None, webhook_id: str) -> None:
    """Delete a webhook with its delivery log."""
    from modelyard.client import webhooks as api

    api.delete(_store(tracking_uri), webhook_id)
    click.echo(f"deleted webhook {webhook_id}")


@webhooks.command("test")
@click.argument("webhook_id")
@_fails_cleanly
def fire_test(tracking_uri: str | None, webhook_id: str) -> None:
    """Queue a `webhook.test` delivery; its outcome shows in `deliveries`."""
    from modelyard.client import webhooks as api

    click.echo(f"queued delivery {api.fire_test(_store(tracking_uri), webhook_id)}")


@webhooks.command("deliveries")
@click.argument("webhook_id")
@click.option("--status", type=click.Choice(["pending", "sending", "delivered", "failed"]), default=None)
@click.option("--max-results", type=int, default=20, show_default=True, help="Newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, payloads included.")
@_fails_cleanly
def deliveries(tracking_uri: str | None, webhook_id: str, status: str | None, max_results: int, as_json: bool) -> None:
    """The delivery log: one line per delivery (id, kind, status, attempts, last code, latency, error)."""
    from modelyard.client import webhooks as api

    page = api.list_deliveries(_store(tracking_uri), webhook_id, status, max_results)
    if as_json:
        _echo([d.to_dict() for d in page])
        return
    for d in page:
        code = "-" if d.last_status_code is None else d.last_status_code
        latency = "-" if d.last_latency_ms is None else f"{d.last_latency_ms}ms"
        line = f"{d.delivery_id}  {d.kind}  {d.status}  attempts={d.attempts}  code={code}  latency={latency}"
        click.echo(line + (f"  error={d.last_error}" if d.last_error and d.status != "delivered" else ""))
