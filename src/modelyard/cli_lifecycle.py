"""`modelyard gc` and `modelyard storage`: what deleted runs leave behind, and what the store holds.

Both read the same settings as the services (MODELYARD_BACKEND_STORE_URI and
MODELYARD_ARTIFACTS_DESTINATION, S3 endpoint variables), so on a stack they need no flags.
"""

from __future__ import annotations

import re
import sys

import click

from modelyard.exceptions import ModelyardException

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhms]?)\s*$")
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000, "": 86_400_000}


def parse_age(text: str) -> int:
    """`30d`, `12h`, `45m`, `10s` (a bare number is days) as milliseconds."""
    match = _DURATION.match(text or "")
    if match is None:
        raise click.BadParameter(f"{text!r} is not a duration like 30d, 12h, 45m or 10s.")
    return int(float(match.group(1)) * _UNIT_MS[match.group(2)])


def _settings(backend_store_uri: str | None, artifacts_destination: str | None) -> tuple[str, str]:
    from modelyard.cli import admin_store_uri
    from modelyard.settings import Settings

    uri = admin_store_uri(backend_store_uri)
    settings = Settings.from_env(backend_store_uri=uri, artifacts_destination=artifacts_destination)
    return settings.backend_store_uri, settings.artifacts_destination


def _engine(uri: str):  # type: ignore[no-untyped-def]
    from modelyard.store.sql.engine import create_engine_for
    from modelyard.store.sql.migrate import require_usable

    engine = create_engine_for(uri)
    require_usable(engine)
    return engine


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


_store_options = [
    click.option("--backend-store-uri", default=None, help="Database [$MODELYARD_BACKEND_STORE_URI]."),
    click.option(
        "--artifacts-destination", default=None, help="Where proxied artifacts live [$MODELYARD_ARTIFACTS_DESTINATION]."
    ),
]


def store_options(f):  # type: ignore[no-untyped-def]
    for option in reversed(_store_options):
        f = option(f)
    return f


@click.command("gc")
@store_options
@click.option("--older-than", default="0s", show_default=True, help="Only runs deleted at least this long ago (30d, 12h).")
@click.option("--experiment-ids", default="", help="Comma-separated: only these experiments.")
@click.option("--run-ids", default="", help="Comma-separated: only these (deleted) runs.")
@click.option("--dry-run", is_flag=True, help="Name each run that would go, with its objects and bytes; change nothing.")
@click.option("--force", is_flag=True, help="Also remove runs that registered model versions point at.")
@click.option("--orphans", is_flag=True, help="Also sweep artifact folders that no experiment, run or logged model owns.")
@click.option("--webhook-log-days", type=float, default=None,
              help="Finished webhook deliveries older than this leave the delivery log [$MODELYARD_WEBHOOK_LOG_DAYS, 30; 0 keeps].")
@click.option("--webhook-log-rows", type=int, default=None,
              help="Finished deliveries kept per webhook [$MODELYARD_WEBHOOK_LOG_ROWS, 10000; 0: no cap].")
@click.option("--yes", is_flag=True, help="Do not ask before removing.")
def gc(
    backend_store_uri: str | None,
    artifacts_destination: str | None,
    older_than: str,
    experiment_ids: str,
    run_ids: str,
    dry_run: bool,
    force: bool,
    orphans: bool,
    webhook_log_days: float | None,
    webhook_log_rows: int | None,
    yes: bool,
) -> None:
    """Permanently remove deleted runs and experiments: their rows and all their artifacts; and prune
    the webhook delivery log to its bounds (the delivery workers do that too, hourly)."""
    from modelyard.lifecycle import gc as collector
    from modelyard.lifecycle import storage
    from modelyard.settings import Settings
    from modelyard.store.webhooks import deliveries

    uri, destination = _settings(backend_store_uri, artifacts_destination)
    selection = collector.Selection(
        older_than_ms=parse_age(older_than),
        experiment_ids=[i.strip() for i in experiment_ids.split(",") if i.strip()],
        run_ids=[i.strip() for i in run_ids.split(",") if i.strip()],
        force=force,
    )
    if not dry_run and not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("Removing is permanent: pass --yes (or look first with --dry-run).")
        click.confirm(f"Permanently remove deleted runs and their artifacts from {uri} and {destination}?", abort=True)
    try:
        engine = _engine(uri)
        report = collector.collect(engine, destination, selection, dry_run=dry_run, progress=click.echo)
        swept = []
        if orphans:
            from modelyard.artifact_repos.locations import Locator

            locator = Locator(destination)
            for path in storage.orphans(engine, destination):
                swept.append(path)
                click.echo(f"{'would remove' if dry_run else 'removing'} orphan {path}")
                if not dry_run:
                    locator.destination_repository().delete_artifacts(path)
        if not dry_run and (report.runs or report.experiments):
            storage.measure(engine, destination)
        pruned = None
        if not dry_run:
            settings = Settings.from_env()
            days = settings.webhook_log_days if webhook_log_days is None else webhook_log_days
            rows = settings.webhook_log_rows if webhook_log_rows is None else webhook_log_rows
            pruned = deliveries.prune(engine, days, rows)
    except ModelyardException as exc:
        raise click.ClickException(exc.message) from exc
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb}: {len(report.runs)} runs, {len(report.experiments)} experiments, {report.objects} objects, "
        f"{report.bytes} bytes ({_size(report.bytes)}); {len(report.refused)} refused; {len(swept)} orphan folders"
        + ("" if pruned is None else f"; {pruned} webhook deliveries pruned from the log")
    )


@click.command("storage")
@store_options
@click.option("--refresh", is_flag=True, help="List the store now instead of showing the last measurement.")
def storage_report(backend_store_uri: str | None, artifacts_destination: str | None, refresh: bool) -> None:
    """Bytes and objects per experiment (cached; gc and --refresh measure)."""
    from modelyard.lifecycle import storage

    uri, destination = _settings(backend_store_uri, artifacts_destination)
    try:
        engine = _engine(uri)
        usage = storage.measure(engine, destination) if refresh else storage.cached(engine)
    except ModelyardException as exc:
        raise click.ClickException(exc.message) from exc
    if not usage:
        click.echo("No measurement yet: run `modelyard storage --refresh` (or gc).")
        return
    click.echo(f"{'experiment':<12} {'objects':>9} {'bytes':>14}  name")
    for u in usage:
        click.echo(f"{u.experiment_id:<12} {u.objects:>9} {u.bytes:>14}  {u.name}")
    click.echo(f"{'total':<12} {sum(u.objects for u in usage):>9} {sum(u.bytes for u in usage):>14}")


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@click.command("export")
@click.option("--tracking-uri", required=True, help="The stack (or MLflow server) to read.")
@click.option("--experiments", default="", help="Comma-separated experiment names.")
@click.option("--models", default="", help="Comma-separated registered model names.")
@click.option(
    "--output",
    required=True,
    help="A folder, a path ending in .tar, - for stdout, or an s3:// URI (s3://bucket/key.tar: one object; "
    "s3://bucket/prefix/: a folder bundle).",
)
def export_command(tracking_uri: str, experiments: str, models: str, output: str) -> None:
    """Write experiments (runs, full metric histories, artifacts) and registered models to a bundle.
    A .tar is written as the export goes (to stdout with --output -, e.g. piped into `modelyard import -`
    on another host); progress goes to stderr then."""
    from modelyard.lifecycle.export import export_bundle

    if not experiments and not models:
        raise click.UsageError("Name at least one experiment (--experiments) or model (--models).")
    to_stdout = output == "-"
    if to_stdout and sys.stdout.isatty():
        raise click.UsageError("--output - writes a tar to stdout: pipe it (e.g. into `modelyard import -`) or redirect it.")

    def say(line: str) -> None:
        click.echo(line, err=to_stdout)

    try:
        manifest = export_bundle(tracking_uri, output, _names(experiments), _names(models), progress=say)
    except ModelyardException as exc:
        raise click.ClickException(exc.message) from exc
    say(f"exported {manifest['runs']} runs and {len(manifest['models'])} models to {'stdout' if to_stdout else output}")


@click.command("import")
@click.argument("bundle")
@click.option("--tracking-uri", required=True, help="The stack to load the bundle into.")
@click.option(
    "--mapping",
    default=None,
    help="Where to write the old -> new id mapping (JSON) [default: beside a .tar, inside a folder bundle; "
    "not written for stdin or S3 bundles].",
)
def import_command(bundle: str, tracking_uri: str, mapping: str | None) -> None:
    """Load a bundle made by `modelyard export`: a folder, a .tar, - for stdin, or an s3:// URI
    (s3://bucket/key.tar or s3://bucket/prefix/). Running it again changes nothing."""
    from modelyard.lifecycle.importer import import_bundle

    try:
        ids = import_bundle(bundle, tracking_uri, progress=click.echo, mapping_file=mapping)
    except ModelyardException as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"imported {len(ids['runs'])} runs and {len(ids['models'])} models into {tracking_uri}")
