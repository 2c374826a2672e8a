"""`modelyard models`: score a model from the command line and look at the registry.

`predict` reads the same bodies the scoring service accepts (CSV with a header, or JSON with one of
`dataframe_split`, `dataframe_records`, `instances`, `inputs`, plus optional `params`) through the same
parser, so a file that works here works against `/invocations` and vice versa.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from modelyard.exceptions import ModelyardException


def _fail(exc: ModelyardException) -> click.ClickException:
    return click.ClickException(f"{exc.error_code}: {exc.message}")


@click.group("models")
def models() -> None:
    """Score models and inspect registered models."""


@models.command("predict")
@click.option(
    "--model-uri", "-m", required=True, help="runs:/..., models:/name/1, models:/name@alias, a path, ..."
)
@click.option(
    "--input-path",
    "-i",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="CSV or JSON file; '-' reads stdin.",
)
@click.option(
    "--output-path",
    "-o",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write predictions here (default: stdout).",
)
@click.option(
    "--content-type",
    "-t",
    type=click.Choice(["json", "csv"]),
    default=None,
    help="Input format (default: from the file extension, else json).",
)
def predict(model_uri: str, input_path: str, output_path: str | None, content_type: str | None) -> None:
    """Predict with MODEL_URI on the input file; prints `{"predictions": ...}` like the scoring service."""
    from modelyard import pyfunc
    from modelyard.serving.protocol import UnsupportedContentType, parse_request, predictions_to_json

    body = sys.stdin.buffer.read() if input_path == "-" else Path(input_path).read_bytes()
    kind = content_type or ("csv" if input_path.lower().endswith(".csv") else "json")
    try:
        model = pyfunc.load_model(model_uri)
        schema = model.input_schema
        columns = schema.input_names() if schema is not None and schema.has_names else None
        mime = "text/csv" if kind == "csv" else "application/json"
        request = parse_request(body, mime, columns, schema)
        output = predictions_to_json(model.predict(request.data, params=request.params))
    except ModelyardException as exc:
        raise _fail(exc) from exc
    except UnsupportedContentType as exc:
        raise click.ClickException(str(exc)) from exc
    if output_path:
        Path(output_path).write_bytes(output)
    else:
        click.echo(output.decode())


@models.command("list")
@click.option("--filter", "filter_string", default=None, help="e.g. \"name LIKE 'churn%'\"")
@click.option("--max-results", type=int, default=100, show_default=True)
def list_models(filter_string: str | None, max_results: int) -> None:
    """Registered models with their latest versions, as JSON."""
    from modelyard.client import Client

    try:
        found = Client().search_registered_models(filter_string=filter_string, max_results=max_results)
    except ModelyardException as exc:
        raise _fail(exc) from exc
    _print([_registered_model(m) for m in found])


@models.command("describe")
@click.argument("name")
def describe(name: str) -> None:
    """A registered model: description, tags, aliases and every version with its stage."""
    from modelyard.client import Client

    client = Client()
    try:
        model = client.get_registered_model(name)
        versions = _all_versions(client, name)
    except ModelyardException as exc:
        raise _fail(exc) from exc
    out = _registered_model(model)
    out["versions"] = [
        {
            "version": str(v.version),
            "stage": v.current_stage,
            "status": v.status,
            "aliases": list(v.aliases),
            "run_id": v.run_id,
            "source": v.source,
            "description": v.description,
        }
        for v in sorted(versions, key=lambda v: int(v.version))
    ]
    _print(out)


def _all_versions(client: Any, name: str) -> list[Any]:
    escaped = name.replace("'", "\\'")
    versions: list[Any] = []
    token = None
    while True:
        page = client.search_model_versions(f"name = '{escaped}'", max_results=1000, page_token=token)
        versions.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return versions


def _registered_model(model: Any) -> dict[str, Any]:
    return {
        "name": model.name,
        "description": model.description,
        "tags": dict(model.tags),
        "aliases": {a.alias: str(a.version) for a in model.aliases},
        "latest_versions": [
            {"version": str(v.version), "stage": v.current_stage} for v in (model.latest_versions or [])
        ],
    }


def _print(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@models.command("serve")
@click.option(
    "--model-uri", "-m", required=True, help="models:/name/Production, models:/name@alias, runs:/..., a path."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", "-p", type=int, default=8080, show_default=True, help="SageMaker's container port.")
@click.option("--workers", "-w", type=int, default=None, help="Worker processes [$MODELYARD_WORKERS or 2].")
@click.option("--timeout", "-t", type=int, default=None, help="Seconds a request may take [120].")
def serve(model_uri: str, host: str, port: int, workers: int | None, timeout: int | None) -> None:
    """Serve MODEL_URI on /invocations (MLflow's scoring protocol) under gunicorn, until stopped."""
    from modelyard.serving.launcher import exec_scoring_server

    exec_scoring_server(model_uri, host=host, port=port, workers=workers, timeout=timeout)


@models.command("promote")
@click.argument("name_version", metavar="NAME/VERSION")
@click.option("--from", "source", required=True, help="The stack the version is on.")
@click.option("--to", "target", required=True, help="The stack to copy it to.")
@click.option("--alias", default=None, help="Point this alias at the copy on the target.")
def promote(name_version: str, source: str, target: str, alias: str | None) -> None:
    """Copy one registered version (files, metadata, and its source run) from one stack to another."""
    import tempfile

    from modelyard.client import Client
    from modelyard.lifecycle.export import export_version
    from modelyard.lifecycle.importer import import_bundle

    name, slash, version = name_version.rpartition("/")
    if not slash or not name or not version.isdigit():
        raise click.UsageError("Give the version as NAME/VERSION, e.g. churn/3.")
    try:
        with tempfile.TemporaryDirectory(prefix="modelyard-promote-") as tmp:
            export_version(source, name, version, tmp)
            mapping = import_bundle(tmp, target)
        copied = mapping["models"][name][version]
        if alias:
            Client(tracking_uri=target, registry_uri=target).set_registered_model_alias(name, alias, copied)
    except ModelyardException as exc:
        raise _fail(exc) from exc
    click.echo(f"{name} version {version} on {source} is version {copied} on {target}" + (f" (@{alias})" if alias else ""))
@models.command("history")
@click.argument("name")
@click.option("--version", default=None, help="Only the events of this version.")
@click.option("--max-results", type=int, default=100, show_default=True, help="Newest first.")
def model_history(name: str, version: str | None, max_results: int) -> None:
    """The registered model's history, newest first: one line per event (time, who, what)."""
    from modelyard.client import Client, registry_history

    try:
        found = registry_history.list_events(Client().registry_store, name, version, max_results=max_results)
    except ModelyardException as exc:
        raise _fail(exc) from exc
    for event in found:
        click.echo(describe_event(event))


@models.command("delete")
@click.argument("name")
@click.option(
    "--purge-history", is_flag=True, help="Also forget the model's registry history (kept by default, even with the model gone)."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_model(name: str, purge_history: bool, yes: bool) -> None:
    """Delete a registered model with its versions, tags and aliases. Its history stays, ended by a
    `model_deleted` event (`modelyard models history NAME` still shows it), unless --purge-history."""
    from modelyard.client import Client

    what = f"registered model {name} with all its versions" + (" and its history" if purge_history else "")
    if not yes:
        click.confirm(f"Delete {what}?", default=False, abort=True)
    try:
        Client().registry_store.delete_registered_model(name, purge_history=purge_history)
    except ModelyardException as exc:
        raise _fail(exc) from exc
    click.echo(f"deleted {what}")


@models.command("rollback")
@click.argument("name")
@click.option("--alias", default=None, help="Move this alias back to the version it held before.")
@click.option("--stage", default=None, help="Undo the last promotion into this stage (e.g. Production).")
@click.option("--yes", is_flag=True, help="Also redeploy the endpoints serving it, without asking.")
def rollback(name: str, alias: str | None, stage: str | None, yes: bool) -> None:
    """Undo the last move of an alias or stage (recorded as a new event), then offer to redeploy the
    endpoints whose last deployment used that alias or stage (`modelyard deploy update` underneath)."""
    from modelyard.client import Client, registry_history

    if (alias is None) == (stage is None):
        raise click.UsageError("Give exactly one of --alias and --stage.")
    store = Client().registry_store
    try:
        changed = registry_history.rollback(store, name, alias=alias, stage=stage)
    except ModelyardException as exc:
        raise _fail(exc) from exc
    for version in changed:
        click.echo(f"{name} version {version.version}: stage {version.current_stage}, aliases {list(version.aliases)}")
    uri = f"models:/{name}@{alias}" if alias else f"models:/{name}/{stage}"
    for endpoint in registry_history.deployed_endpoints(store, name, alias, stage):
        if yes or click.confirm(f"Redeploy endpoint {endpoint} with {uri}?", default=False):
            from modelyard.deploy.sagemaker import DeployOptions, SageMakerDeployer

            click.echo(f"updating endpoint {endpoint} to {uri} ...")
            SageMakerDeployer(DeployOptions()).update(endpoint, uri)
            click.echo(f"endpoint {endpoint} is InService")


def describe_event(event: Any) -> str:
    """One history line: `2026-12-05 10:01:02Z  alice  alias_set champion -> v2 (was v1)`."""
    from datetime import datetime, timezone

    when = datetime.fromtimestamp(event.timestamp / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    what = [event.kind]
    if event.subject:
        what.append(event.subject)
    if event.version:
        what.append(f"v{event.version}")
    if event.endpoint:
        what.append(f"endpoint={event.endpoint}")
    details = dict(event.details)
    if "from_version" in details:
        what.append(f"(was v{details.pop('from_version')})")
    if "from_stage" in details:
        what.append(f"(was {details.pop('from_stage')})")
    what += [f"{k}={v}" for k, v in sorted(details.items())]
    return f"{when}  {event.actor or '-'}  {' '.join(what)}"
