"""`modelyard`: run the tracking server (or `ui`), upgrade a database, inspect experiments and runs.

Every command that reads or writes tracking data takes `--tracking-uri` (default: the
MODELYARD_TRACKING_URI / MLFLOW_TRACKING_URI environment, else the embedded SQLite default), prints a
table, or JSON in MLflow's REST shapes with `--json`. Errors exit 1 with the MLflow error code.
Subcommand groups that need heavy imports (`deploy` needs boto3) load only when invoked.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from functools import wraps
from typing import Any

import click

from modelyard.exceptions import ModelyardException
from modelyard.version import __version__

_LAZY_GROUPS = {
    "deploy": ("modelyard.cli_deploy:deploy", "Deploy models to SageMaker(-style) endpoints."),
    "models": ("modelyard.cli_models:models", "Score models (predict) and inspect registered models."),
    "gc": ("modelyard.cli_lifecycle:gc", "Permanently remove deleted runs and experiments, artifacts included."),
    "storage": ("modelyard.cli_lifecycle:storage_report", "Bytes and objects per experiment in the artifact store."),
    "export": ("modelyard.cli_lifecycle:export_command", "Write experiments and models to a bundle (any MLflow API)."),
    "import": ("modelyard.cli_lifecycle:import_command", "Load a bundle into a stack (idempotent)."),
    "webhooks": ("modelyard.cli_webhooks:webhooks", "Register webhooks on registry and run events; delivery log."),
    "run": ("modelyard.cli_projects:run", "Run an MLflow project (MLproject folder or git URI) as a tracked run."),
    "users": ("modelyard.cli_auth:users", "Users and admins (in the database; MODELYARD_AUTH)."),
    "tokens": ("modelyard.cli_auth:tokens_group", "Personal access tokens: create (shown once), list, revoke."),
    "groups": ("modelyard.cli_auth:groups", "Groups of users and their grants."),
    "permissions": ("modelyard.cli_auth:permissions", "A user's grants on experiments and registered models."),
    "audit": ("modelyard.cli_auth:audit", "The audit log of user, token, group and permission changes."),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_LAZY_GROUPS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _LAZY_GROUPS:
            module_name, _, attribute = _LAZY_GROUPS[cmd_name][0].partition(":")
            return getattr(importlib.import_module(module_name), attribute)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, cmd.get_short_help_str()) for name, cmd in sorted(self.commands.items())]
        rows += [(name, help_text) for name, (_, help_text) in _LAZY_GROUPS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))


@click.group(cls=_LazyGroup)
@click.version_option(__version__, prog_name="modelyard")
def main() -> None:
    """modelyard: ML experiment tracking, model registry, serving and deploy (MLflow-compatible)."""


# ---- shared helpers ---------------------------------------------------------------------------
def _fails_cleanly(func: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ModelyardException as exc:
            click.echo(f"Error ({exc.error_code}): {exc.message}", err=True)
            sys.exit(1)

    return wrapper


def _tracking_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--json", "as_json", is_flag=True, help="Print JSON (MLflow's REST shapes).")(func)
    func = click.option(
        "--tracking-uri",
        default=None,
        help="http(s)://server, sqlite:///file.db or postgresql://... "
        "[default: $MODELYARD_TRACKING_URI, $MLFLOW_TRACKING_URI, sqlite:///modelyard.db]",
    )(func)
    return _fails_cleanly(func)


def _client(tracking_uri: str | None) -> Any:
    from modelyard.client import Client

    return Client(tracking_uri)


def _view_type(view: str) -> int:
    from modelyard.entities import ViewType

    return {"active": ViewType.ACTIVE_ONLY, "deleted": ViewType.DELETED_ONLY, "all": ViewType.ALL}[view]


_VIEW_OPTION = click.option(
    "--view", type=click.Choice(["active", "deleted", "all"]), default="active", show_default=True
)


def _time(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def _pairs(title: str, mapping: dict[str, Any]) -> str:
    if not mapping:
        return f"{title}: (none)"
    width = max(len(k) for k in mapping)
    return "\n".join([f"{title}:"] + [f"  {k.ljust(width)}  {v}" for k, v in sorted(mapping.items())])


# ---- server, ui -------------------------------------------------------------------------------
# The options `server` and `ui` share.
_BACKEND_STORE_OPTION = click.option(
    "--backend-store-uri", default=None, help="Database URI [sqlite:///modelyard.db in the current folder]."
)
_ARTIFACTS_DESTINATION_OPTION = click.option(
    "--artifacts-destination",
    default=None,
    help="Where served artifacts are stored: a folder or s3://bucket/prefix [./modelyard-artifacts].",
)
_HOST_OPTION = click.option("--host", "-h", default=None, help="Interface to bind [127.0.0.1].")
_PORT_OPTION = click.option("--port", "-p", type=int, default=None, help="Port [5000].")


@main.command()
@_BACKEND_STORE_OPTION
@click.option(
    "--default-artifact-root",
    default=None,
    help="Artifact root for new experiments [mlflow-artifacts:/ when serving artifacts].",
)
@_ARTIFACTS_DESTINATION_OPTION
@click.option(
    "--serve-artifacts/--no-serve-artifacts",
    default=None,
    help="Serve the artifacts API from this server [on].",
)
@_HOST_OPTION
@_PORT_OPTION
@click.option("--workers", "-w", type=int, default=None, help="gunicorn worker processes [2].")
@click.option("--timeout", type=int, default=None, help="Worker timeout, seconds [120].")
@_fails_cleanly
def server(**options: Any) -> None:
    """Run the all-in-one tracking server (tracking + artifacts API) under gunicorn."""

    def announce(settings: Any) -> None:
        click.echo(
            f"modelyard server on http://{settings.host}:{settings.port} "
            f"({settings.workers} workers, store {_redact(settings.backend_store_uri)})",
            err=True,
        )

    _run_tracking_server(announce, options)


@main.command()
@_BACKEND_STORE_OPTION
@_ARTIFACTS_DESTINATION_OPTION
@_HOST_OPTION
@_PORT_OPTION
@_fails_cleanly
def ui(**options: Any) -> None:
    """Run the tracking service and its web UI on your own machine (what `mlflow ui` does).

    `modelyard server` with a personal default: one worker, the embedded SQLite store (or the one
    given) and artifacts served, so one URL serves the UI, the REST API and the artifacts."""
    options["serve_artifacts"] = True
    if not os.environ.get("MODELYARD_WORKERS"):
        options["workers"] = 1

    def announce(settings: Any) -> None:
        click.echo(
            f"modelyard UI at http://{settings.host}:{settings.port} (store {_redact(settings.backend_store_uri)})"
        )

    _run_tracking_server(announce, options)


def _run_tracking_server(announce: Callable[[Any], None], options: dict[str, Any]) -> None:
    """Export the flags as MODELYARD_* variables, say where it listens, migrate once (before workers
    fork, so they never race to do it), then become gunicorn."""
    env = server_environment(**options)
    from modelyard.settings import Settings

    settings = Settings.from_env()
    _require_free_port(settings.host, settings.port)
    announce(settings)
    if settings.auth:
        click.echo(f"Authentication is on: default permission {settings.auth_default_permission}.", err=True)
    else:
        from modelyard.auth.install import OFF_MESSAGE

        click.echo(OFF_MESSAGE, err=True)
    if os.environ.get("MODELYARD_AUTO_MIGRATE", "true").lower() not in ("0", "false", "no", "off"):
        _upgrade(settings.backend_store_uri)
    args = [
        sys.executable, "-m", "gunicorn",
        "-c", "python:modelyard.runtime.gunicorn_conf",
        "modelyard.tracking.asgi:app",
    ]  # fmt: skip
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, args, env)


def _require_free_port(host: str, port: int) -> None:
    """Fail before printing a URL when something already listens there (gunicorn would retry for a while,
    then exit; the printed URL would have opened the other server, e.g. `make up`'s gateway on 5000)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise click.ClickException(f"Cannot listen on {host}:{port}: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise click.ClickException(
                f"Cannot listen on {host}:{port}: {exc.strerror or exc} (another server uses it? pass --port)"
            ) from exc


def server_environment(**options: Any) -> dict[str, str]:
    """The MODELYARD_* variables the server's workers read, with the CLI flags over the environment.

    Also exported into this process, so `Settings.from_env()` here sees what the workers will.
    """
    env = dict(os.environ)
    for name, value in options.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        env[f"MODELYARD_{name.upper()}"] = str(value)
    os.environ.update(env)
    return env


# ---- db ---------------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@click.argument("url")
@_fails_cleanly
def db_upgrade(url: str) -> None:
    """Bring the database at URL to the newest schema (safe to run concurrently on PostgreSQL).

    A database a newer release migrated is left as it is when it says this release can use it."""
    from modelyard.store.sql.migrate import SchemaState

    status = _upgrade(url)
    if status.state is SchemaState.CURRENT:
        click.echo(f"Database {_redact(url)} is up to date (revision {status.revision}).")
    else:
        click.echo(f"Database {_redact(url)}: {status.describe()}")


@db.command("status")
@click.argument("url")
@_fails_cleanly
def db_status(url: str) -> None:
    """Say where the database's schema stands against this release; exit 1 if it cannot use it as is."""
    from modelyard.store.sql.migrate import schema_status

    status = schema_status(url)
    click.echo(f"Database {_redact(url)}: {status.describe()}")
    sys.exit(0 if status.usable else 1)


def _upgrade(url: str) -> Any:
    """`migrate.upgrade`, with a database that cannot be reached said in one line, not a traceback."""
    from sqlalchemy.exc import OperationalError

    from modelyard.store.sql.migrate import upgrade

    try:
        return upgrade(url)
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise click.ClickException(f"Cannot reach the database {_redact(url)}: {reason}") from None


def admin_store_uri(given: str | None) -> str:
    """The database the commands that open it directly use (gc, storage, users, groups, tokens,
    permissions, audit): the flag, else MODELYARD_BACKEND_STORE_URI, else this folder's embedded database
    when there is one (`modelyard ui`'s). Never a new empty one: that answered "the schema is empty,
    upgrade it" about a file the command had just created, on a stack whose database is elsewhere."""
    from modelyard.settings import DEFAULT_BACKEND_STORE_URI

    uri = given or os.environ.get("MODELYARD_BACKEND_STORE_URI")
    if uri:
        return uri
    if os.path.exists(DEFAULT_BACKEND_STORE_URI.removeprefix("sqlite:///")):
        return DEFAULT_BACKEND_STORE_URI
    raise click.ClickException(
        "No database given: pass --backend-store-uri or set MODELYARD_BACKEND_STORE_URI "
        "(the local stack's: `source .stack/admin-env`)."
    )


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL failed upgrade already; never echo a password
        return "<database>"


# ---- experiments ------------------------------------------------------------------------------
@main.group()
def experiments() -> None:
    """List, inspect, create and delete experiments."""


@experiments.command("list")
@_tracking_options
@_VIEW_OPTION
@click.option("--max-results", type=int, default=None, help="Stop after this many.")
def experiments_list(tracking_uri: str | None, as_json: bool, view: str, max_results: int | None) -> None:
    client = _client(tracking_uri)
    limit = max_results if max_results is not None else sys.maxsize
    found: list[Any] = []
    token: str | None = None
    while len(found) < limit:
        page = client.search_experiments(_view_type(view), min(limit - len(found), 1000), page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            break
    if as_json:
        _echo_json({"experiments": [e.to_dict() for e in found]})
        return
    rows = [(e.experiment_id, e.name, e.lifecycle_stage, e.artifact_location) for e in found]
    click.echo(_table(("experiment_id", "name", "lifecycle_stage", "artifact_location"), rows))


@experiments.command("describe")
@_tracking_options
@click.argument("experiment_id", required=False)
@click.option("--name", default=None, help="Look the experiment up by name instead of id.")
def experiments_describe(
    tracking_uri: str | None, as_json: bool, experiment_id: str | None, name: str | None
) -> None:
    client = _client(tracking_uri)
    experiment = _find_experiment(client, experiment_id, name)
    if as_json:
        _echo_json({"experiment": experiment.to_dict()})
        return
    click.echo(
        "\n".join(
            [
                f"experiment_id:     {experiment.experiment_id}",
                f"name:              {experiment.name}",
                f"lifecycle_stage:   {experiment.lifecycle_stage}",
                f"artifact_location: {experiment.artifact_location}",
                f"creation_time:     {_time(experiment.creation_time)}",
                f"last_update_time:  {_time(experiment.last_update_time)}",
                _pairs("tags", experiment.tags),
            ]
        )
    )


def _find_experiment(client: Any, experiment_id: str | None, name: str | None) -> Any:
    if (experiment_id is None) == (name is None):
        raise ModelyardException.invalid_parameter("Give an EXPERIMENT_ID or --name (exactly one).")
    if experiment_id is not None:
        return client.get_experiment(experiment_id)
    found = client.get_experiment_by_name(name)
    if found is None:
        raise ModelyardException.not_found(f"Experiment with name {name!r} does not exist.")
    return found


@experiments.command("create")
@_tracking_options
@click.option("--name", "-n", required=True)
@click.option("--artifact-location", "-l", default=None)
def experiments_create(
    tracking_uri: str | None, as_json: bool, name: str, artifact_location: str | None
) -> None:
    experiment_id = _client(tracking_uri).create_experiment(name, artifact_location)
    if as_json:
        _echo_json({"experiment_id": experiment_id})
    else:
        click.echo(f"Created experiment {name!r} with id {experiment_id}")


@experiments.command("delete")
@_tracking_options
@click.argument("experiment_id")
def experiments_delete(tracking_uri: str | None, as_json: bool, experiment_id: str) -> None:
    _client(tracking_uri).delete_experiment(experiment_id)
    _done(as_json, f"Deleted experiment {experiment_id}")


@experiments.command("restore")
@_tracking_options
@click.argument("experiment_id")
def experiments_restore(tracking_uri: str | None, as_json: bool, experiment_id: str) -> None:
    _client(tracking_uri).restore_experiment(experiment_id)
    _done(as_json, f"Restored experiment {experiment_id}")


@experiments.command("rename")
@_tracking_options
@click.argument("experiment_id")
@click.argument("new_name")
def experiments_rename(tracking_uri: str | None, as_json: bool, experiment_id: str, new_name: str) -> None:
    _client(tracking_uri).rename_experiment(experiment_id, new_name)
    _done(as_json, f"Renamed experiment {experiment_id} to {new_name!r}")


def _done(as_json: bool, message: str) -> None:
    if as_json:
        _echo_json({})
    else:
        click.echo(message)


# ---- runs -------------------------------------------------------------------------------------
@main.group()
def runs() -> None:
    """List, inspect and delete runs."""


@runs.command("list")
@_tracking_options
@click.option("--experiment-id", "experiment_ids", multiple=True, required=True, help="Repeat for several.")
@click.option(
    "--filter", "filter_string", default="", help="e.g. \"metrics.rmse < 1 and params.alpha = '0.5'\""
)
@click.option("--order-by", multiple=True, help="e.g. 'metrics.rmse ASC'; repeat for several.")
@click.option("--max-results", type=int, default=1000, show_default=True)
@_VIEW_OPTION
def runs_list(
    tracking_uri: str | None,
    as_json: bool,
    experiment_ids: tuple[str, ...],
    filter_string: str,
    order_by: tuple[str, ...],
    max_results: int,
    view: str,
) -> None:
    client = _client(tracking_uri)
    found: list[Any] = []
    token: str | None = None
    while len(found) < max_results:
        page = client.search_runs(
            list(experiment_ids), filter_string, _view_type(view), min(max_results - len(found), 1000),
            list(order_by) or None, token,
        )  # fmt: skip
        found.extend(page)
        token = page.token
        if not token:
            break
    if as_json:
        _echo_json({"runs": [r.to_dict() for r in found]})
        return
    rows = [
        (
            r.info.run_id,
            r.info.run_name,
            r.info.experiment_id,
            r.info.status,
            _time(r.info.start_time),
            _time(r.info.end_time),
        )
        for r in found
    ]
    click.echo(_table(("run_id", "run_name", "experiment_id", "status", "start_time", "end_time"), rows))


@runs.command("describe")
@_tracking_options
@click.argument("run_id")
def runs_describe(tracking_uri: str | None, as_json: bool, run_id: str) -> None:
    run = _client(tracking_uri).get_run(run_id)
    if as_json:
        _echo_json({"run": run.to_dict()})
        return
    info = run.info
    click.echo(
        "\n".join(
            [
                f"run_id:          {info.run_id}",
                f"run_name:        {info.run_name}",
                f"experiment_id:   {info.experiment_id}",
                f"status:          {info.status}",
                f"lifecycle_stage: {info.lifecycle_stage}",
                f"user_id:         {info.user_id}",
                f"start_time:      {_time(info.start_time)}",
                f"end_time:        {_time(info.end_time)}",
                f"artifact_uri:    {info.artifact_uri}",
                _pairs("params", run.data.params),
                _pairs("metrics", run.data.metrics),
                _pairs("tags", run.data.tags),
            ]
        )
    )


@runs.command("delete")
@_tracking_options
@click.argument("run_id")
def runs_delete(tracking_uri: str | None, as_json: bool, run_id: str) -> None:
    _client(tracking_uri).delete_run(run_id)
    _done(as_json, f"Deleted run {run_id}")


@runs.command("restore")
@_tracking_options
@click.argument("run_id")
def runs_restore(tracking_uri: str | None, as_json: bool, run_id: str) -> None:
    _client(tracking_uri).restore_run(run_id)
    _done(as_json, f"Restored run {run_id}")


if __name__ == "__main__":
    main()
