"""Garbage collection: deleted runs and experiments removed for good, files first, then rows.

What goes: runs in the `deleted` lifecycle stage (all runs of a deleted experiment are deleted with
it), deleted longer ago than `older_than` (or than the experiment's `modelyard.retention.days` tag,
when that is set), with everything they own: their artifact folder, their metric/param/tag/input
rows and the logged models they produced (rows and files). Then deleted experiments left with no
runs go too, their folders included. An experiment that also carries `modelyard.retention.finished_runs
= true` has its ended runs (FINISHED, FAILED, KILLED) that no model version points at removed the same
way once they ended longer ago than its retention days (`_ended_batches`).

What stays: a run that a registered model version still points at (by `run_id`, or through one of
its logged models) is refused with the version named, unless `force`; a logged model a version
points at keeps its files even under `force`.

Order and safety: runs are read in batches of `BATCH_SIZE`, ordered by id (keyset). A batch's folders
(its runs' and their logged models') are listed together, which measures them (`ArtifactRepository.
list_folders`: on S3 a few key ranges for the whole batch); then exactly the files that listing found
are deleted (on S3 1,000 keys per DeleteObjects call, across runs), and only then the batch's rows, in
one transaction. Interrupted at any point, a re-run finds the same rows, lists again what is left and
finishes the job (deleting what is already gone is a no-op), so gc is idempotent. A file written into
a deleted run's folder after the listing stays behind: once the run's row is gone, nothing owns it
and the orphan sweep (`storage.orphans`) finds it. Memory stays flat however many runs there are: a
batch holds its runs and their keys (200 runs x a few files), and a listing that finds more keys than
`s3_folders.KEEP_MAX` keeps none, leaving the delete to list and delete folder by folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, or_, select
from sqlalchemy.orm import Session

from modelyard.artifact_repos import ArtifactRepository
from modelyard.artifact_repos.base import FolderListing
from modelyard.artifact_repos.locations import Locator
from modelyard.entities.lifecycle import LifecycleStage
from modelyard.exceptions import ModelyardException
from modelyard.lifecycle.locations import place as locate_place
from modelyard.lifecycle.locations import walk
from modelyard.store.sql.logged_model_schema import (
    SqlLoggedModel,
    SqlLoggedModelParam,
    SqlLoggedModelTag,
    SqlRunModelOutput,
)
from modelyard.store.sql.registry_schema import SqlModelVersion
from modelyard.store.sql.schema import (
    SqlExperiment,
    SqlExperimentTag,
    SqlInput,
    SqlLatestMetric,
    SqlMetric,
    SqlMetricSeriesCache,
    SqlParam,
    SqlRun,
    SqlTag,
)

RETENTION_TAG = "modelyard.retention.days"
#: Set to "true" beside RETENTION_TAG, an experiment's retention also applies to its ended runs (FINISHED,
#: FAILED or KILLED, by end time) that no model version points at (by `run_id` or through a logged
#: model they produced): they go as deleted runs do. Opt-in per experiment, never for registered runs.
FINISHED_RUNS_TAG = "modelyard.retention.finished_runs"
ENDED_STATUSES = ("FINISHED", "FAILED", "KILLED")
BATCH_SIZE = 200
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Selection:
    """Which deleted runs are eligible: all by default, narrowed by ids and age."""

    older_than_ms: int = 0
    experiment_ids: Sequence[str] = ()
    run_ids: Sequence[str] = ()
    force: bool = False


@dataclass
class RunGarbage:
    run_id: str
    experiment_id: str
    locations: list[str]
    logged_model_ids: list[str]
    objects: int = 0
    bytes: int = 0


@dataclass
class Report:
    runs: list[str] = field(default_factory=list)
    experiments: list[str] = field(default_factory=list)
    objects: int = 0
    bytes: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)
    #: Repository paths already measured, so an experiment's folder does not count its runs twice.
    measured: set[str] = field(default_factory=set)


Progress = Callable[[str], None]
#: What a batch's listing found, per repository: the input of `_delete_files`.
Listings = list[tuple[ArtifactRepository, FolderListing]]


def collect(
    engine: Engine,
    destination: str,
    selection: Selection,
    *,
    dry_run: bool,
    progress: Progress = lambda line: None,
    now_ms: int | None = None,
) -> Report:
    """Remove (or, with `dry_run`, only measure and name) what `selection` makes eligible."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    _check_ids(engine, selection)
    locator = Locator(destination)
    report = Report()
    for batch in _batches(engine, selection, now):
        garbage, refused = _inspect(engine, batch, selection.force)
        report.refused += refused
        for run_id, reason in refused:
            progress(f"refused run {run_id}: {reason}")
        listings = _measure(locator, garbage, report.measured)
        for item in garbage:
            report.runs.append(item.run_id)
            report.objects += item.objects
            report.bytes += item.bytes
            verb = "would remove" if dry_run else "removing"
            progress(f"{verb} run {item.run_id} (experiment {item.experiment_id}): {item.objects} objects, {item.bytes} bytes")
        if not dry_run and garbage:
            _delete_files(listings)  # every file of the batch first,
            _delete_rows(engine, garbage)  # then its rows
    for experiment_id, location in _empty_deleted_experiments(engine, selection, now, locator, dry_run, report):
        place = locate_place(locator, location) if location else None
        if place is not None:  # what is left in its folder (in a dry run: what its runs did not hold)
            for info in walk(place):
                if not _inside_measured(info.path, report.measured):
                    report.objects += 1
                    report.bytes += int(info.file_size or 0)
        report.experiments.append(experiment_id)
        progress(f"{'would remove' if dry_run else 'removing'} experiment {experiment_id}")
        if not dry_run:
            if place is not None:
                place.repository.delete_artifacts(place.path or None)
            _delete_experiment(engine, experiment_id)
    return report


# --- selection -----------------------------------------------------------------------------------
def _check_ids(engine: Engine, selection: Selection) -> None:
    """Named runs must exist and be deleted: gc never removes an active run, however asked."""
    if not selection.run_ids:
        return
    with Session(engine) as session:
        rows = dict(
            session.execute(
                select(SqlRun.run_uuid, SqlRun.lifecycle_stage).where(SqlRun.run_uuid.in_(list(selection.run_ids)))
            ).all()
        )
    for run_id in selection.run_ids:
        if run_id not in rows:
            continue  # already collected: a re-run after an interruption
        if rows[run_id] != LifecycleStage.DELETED:
            raise ModelyardException.invalid_parameter(f"Run {run_id} is not deleted; delete it before gc removes it.")


def _batches(engine: Engine, selection: Selection, now: int) -> Iterator[list[tuple[str, str]]]:
    """(run_id, experiment_id) of eligible runs, BATCH_SIZE at a time, in run id order."""
    retention = _retention_days(engine)
    after = ""
    while True:
        stmt = (
            select(SqlRun.run_uuid, SqlRun.experiment_id, SqlRun.deleted_time, SqlExperiment.last_update_time)
            .join(SqlExperiment, SqlExperiment.experiment_id == SqlRun.experiment_id)
            .where(SqlRun.lifecycle_stage == LifecycleStage.DELETED, SqlRun.run_uuid > after)
            .order_by(SqlRun.run_uuid)
            .limit(BATCH_SIZE)
        )
        if selection.experiment_ids:
            stmt = stmt.where(SqlRun.experiment_id.in_([int(i) for i in selection.experiment_ids]))
        if selection.run_ids:
            stmt = stmt.where(SqlRun.run_uuid.in_(list(selection.run_ids)))
        rows = session_rows(engine, stmt)
        if not rows:
            break
        after = rows[-1][0]
        eligible = []
        for run_id, experiment_id, deleted_time, experiment_updated in rows:
            when = deleted_time if deleted_time is not None else experiment_updated or 0
            days = retention.get(str(experiment_id))
            age_limit = days * DAY_MS if days is not None else selection.older_than_ms
            if now - when >= age_limit:
                eligible.append((run_id, str(experiment_id)))
        if eligible:
            yield eligible
    yield from _ended_batches(engine, selection, now, retention)


def _ended_batches(
    engine: Engine, selection: Selection, now: int, retention: dict[str, float]
) -> Iterator[list[tuple[str, str]]]:
    """Ended, unregistered runs past their experiment's retention, where the experiment opted in
    (`FINISHED_RUNS_TAG`); never when gc was given run ids (those name deleted runs only)."""
    if selection.run_ids:
        return
    opted_in = {
        str(experiment_id)
        for experiment_id, value in session_rows(
            engine,
            select(SqlExperimentTag.experiment_id, SqlExperimentTag.value).where(SqlExperimentTag.key == FINISHED_RUNS_TAG),
        )
        if str(value).strip().lower() == "true" and str(experiment_id) in retention
    }
    if selection.experiment_ids:
        opted_in &= {str(i) for i in selection.experiment_ids}
    registered_directly = select(SqlModelVersion.run_id).where(SqlModelVersion.run_id == SqlRun.run_uuid).exists()
    registered_through_model = (
        select(SqlLoggedModel.model_id)
        .join(SqlModelVersion, SqlModelVersion.model_id == SqlLoggedModel.model_id)
        .where(SqlLoggedModel.source_run_id == SqlRun.run_uuid)
        .exists()
    )
    for experiment_id in sorted(opted_in, key=int):
        ended_before = now - int(retention[experiment_id] * DAY_MS)
        after = ""
        while True:
            stmt = (
                select(SqlRun.run_uuid)
                .where(
                    SqlRun.experiment_id == int(experiment_id),
                    SqlRun.lifecycle_stage == LifecycleStage.ACTIVE,
                    SqlRun.status.in_(ENDED_STATUSES),
                    SqlRun.end_time.is_not(None),
                    SqlRun.end_time <= ended_before,
                    SqlRun.run_uuid > after,
                    ~registered_directly,
                    ~registered_through_model,
                )
                .order_by(SqlRun.run_uuid)
                .limit(BATCH_SIZE)
            )
            rows = session_rows(engine, stmt)
            if not rows:
                break
            after = rows[-1][0]
            yield [(run_id, experiment_id) for (run_id,) in rows]


def session_rows(engine: Engine, stmt: object) -> list[tuple]:  # type: ignore[type-arg]
    with Session(engine) as session:
        return [tuple(row) for row in session.execute(stmt)]  # type: ignore[call-overload]


def _retention_days(engine: Engine) -> dict[str, float]:
    """Experiments' retention tags (days); a value that is not a number is ignored."""
    out: dict[str, float] = {}
    for experiment_id, value in session_rows(
        engine, select(SqlExperimentTag.experiment_id, SqlExperimentTag.value).where(SqlExperimentTag.key == RETENTION_TAG)
    ):
        try:
            days = float(value)
        except (TypeError, ValueError):
            continue
        if days >= 0:
            out[str(experiment_id)] = days
    return out


def _inspect(engine: Engine, batch: list[tuple[str, str]], force: bool) -> tuple[list[RunGarbage], list[tuple[str, str]]]:
    run_ids = [run_id for run_id, _ in batch]
    with Session(engine) as session:
        uris = dict(session.execute(select(SqlRun.run_uuid, SqlRun.artifact_uri).where(SqlRun.run_uuid.in_(run_ids))).all())
        models = session.execute(
            select(SqlLoggedModel.source_run_id, SqlLoggedModel.model_id, SqlLoggedModel.artifact_location).where(
                SqlLoggedModel.source_run_id.in_(run_ids)
            )
        ).all()
        model_ids = [m for _, m, _ in models]
        versions = session.execute(
            select(SqlModelVersion.name, SqlModelVersion.version, SqlModelVersion.run_id, SqlModelVersion.model_id).where(
                or_(SqlModelVersion.run_id.in_(run_ids), SqlModelVersion.model_id.in_(model_ids or [""]))
            )
        ).all()
    by_run_versions: dict[str, list[str]] = {}
    kept_models: set[str] = set()
    model_run = {m: r for r, m, _ in models}
    for name, version, run_id, model_id in versions:
        owner = run_id if run_id in uris else model_run.get(model_id or "")
        if owner:
            by_run_versions.setdefault(owner, []).append(f"{name} v{version}")
        if model_id:
            kept_models.add(model_id)
    garbage, refused = [], []
    for run_id, experiment_id in batch:
        if run_id in by_run_versions and not force:
            refused.append((run_id, f"registered as {', '.join(by_run_versions[run_id])} (use --force to remove it anyway)"))
            continue
        own_models = [(m, loc) for r, m, loc in models if r == run_id and m not in kept_models]
        locations = [uri for uri in [uris.get(run_id)] if uri] + [loc for _, loc in own_models if loc]
        garbage.append(RunGarbage(run_id, experiment_id, locations, [m for m, _ in own_models]))
    return garbage, refused


def _measure(locator: Locator, garbage: list[RunGarbage], measured: set[str]) -> Listings:
    """List every folder of `garbage` (a batch), the folders of one store together; add each item's
    objects and bytes. The listings are what `_delete_files` deletes."""
    by_store: dict[str, tuple[ArtifactRepository, list[tuple[RunGarbage, str]]]] = {}
    for item in garbage:
        for location in item.locations:
            place = locate_place(locator, location)
            measured.add(place.path)
            by_store.setdefault(place.repository.artifact_uri, (place.repository, []))[1].append((item, place.path))
    listings = []
    for repository, folders in by_store.values():
        listing = repository.list_folders([path for _, path in folders])
        for (item, _), objects, size in zip(folders, listing.objects, listing.bytes, strict=True):
            item.objects += objects
            item.bytes += size
        listings.append((repository, listing))
    return listings


def _delete_files(listings: Listings) -> None:
    for repository, listing in listings:
        repository.delete_listed(listing)


def _inside_measured(path: str, measured: set[str]) -> bool:
    """Whether `path` is under one of the `measured` folders (its parents looked up, not every folder)."""
    cut = path.rfind("/")
    while cut > 0:
        if path[:cut] in measured:
            return True
        cut = path.rfind("/", 0, cut)
    return False


def _delete_rows(engine: Engine, garbage: list[RunGarbage]) -> None:
    """Children first: correct also on a SQLite connection that does not enforce foreign keys."""
    run_ids = [g.run_id for g in garbage]
    model_ids = [m for g in garbage for m in g.logged_model_ids]
    with Session(engine) as session, session.begin():
        for table in (SqlMetric, SqlLatestMetric, SqlMetricSeriesCache, SqlParam, SqlTag, SqlInput, SqlRunModelOutput):
            session.execute(delete(table).where(table.run_uuid.in_(run_ids)))
        if model_ids:
            for table in (SqlLoggedModelTag, SqlLoggedModelParam):
                session.execute(delete(table).where(table.model_id.in_(model_ids)))
            session.execute(delete(SqlRunModelOutput).where(SqlRunModelOutput.model_id.in_(model_ids)))
            session.execute(delete(SqlLoggedModel).where(SqlLoggedModel.model_id.in_(model_ids)))
        session.execute(delete(SqlRun).where(SqlRun.run_uuid.in_(run_ids)))


def _empty_deleted_experiments(
    engine: Engine, selection: Selection, now: int, locator: Locator, dry_run: bool, report: Report
) -> list[tuple[str, str | None]]:
    """Deleted experiments (old enough) that nothing is left in once this collection is done: no
    run it did not collect, no logged model a version points at or a remaining run produced. Their
    logged models that no run produced go first (in a dry run: are counted)."""
    if selection.run_ids:
        return []
    _drop_runless_models(engine, selection, locator, dry_run, report)
    collected = set(report.runs)
    stmt = select(SqlExperiment.experiment_id, SqlExperiment.artifact_location, SqlExperiment.last_update_time).where(
        SqlExperiment.lifecycle_stage == LifecycleStage.DELETED
    )
    if selection.experiment_ids:
        stmt = stmt.where(SqlExperiment.experiment_id.in_([int(i) for i in selection.experiment_ids]))
    empty = []
    for experiment_id, location, updated in session_rows(engine, stmt):
        if now - (updated or 0) < selection.older_than_ms:
            continue
        runs = {r for (r,) in session_rows(engine, select(SqlRun.run_uuid).where(SqlRun.experiment_id == experiment_id))}
        if runs - collected:
            continue
        models = session_rows(
            engine,
            select(SqlLoggedModel.model_id, SqlLoggedModel.source_run_id).where(
                SqlLoggedModel.experiment_id == experiment_id
            ),
        )
        registered = {
            m for (m,) in session_rows(
                engine, select(SqlModelVersion.model_id).where(SqlModelVersion.model_id.in_([m for m, _ in models] or [""]))
            )
        }  # fmt: skip
        if any(m in registered or (run is not None and run not in collected) for m, run in models):
            continue
        empty.append((str(experiment_id), location))
    return empty


def _delete_experiment(engine: Engine, experiment_id: str) -> None:
    with Session(engine) as session, session.begin():
        session.execute(delete(SqlExperimentTag).where(SqlExperimentTag.experiment_id == int(experiment_id)))
        session.execute(delete(SqlExperiment).where(SqlExperiment.experiment_id == int(experiment_id)))


def _drop_runless_models(engine: Engine, selection: Selection, locator: Locator, dry_run: bool, report: Report) -> None:
    """Logged models of deleted experiments that no run produced and no version points at."""
    stmt = (
        select(SqlLoggedModel.model_id, SqlLoggedModel.artifact_location)
        .join(SqlExperiment, SqlExperiment.experiment_id == SqlLoggedModel.experiment_id)
        .where(
            SqlExperiment.lifecycle_stage == LifecycleStage.DELETED,
            SqlLoggedModel.source_run_id.is_(None),
            ~select(SqlModelVersion.model_id).where(SqlModelVersion.model_id == SqlLoggedModel.model_id).exists(),
        )
    )
    if selection.experiment_ids:
        stmt = stmt.where(SqlLoggedModel.experiment_id.in_([int(i) for i in selection.experiment_ids]))
    rows = session_rows(engine, stmt)
    for start in range(0, len(rows), BATCH_SIZE):
        chunk = rows[start : start + BATCH_SIZE]
        items = [RunGarbage("", "", [location], [model_id]) for model_id, location in chunk if location]
        listings = _measure(locator, items, report.measured)
        report.objects += sum(item.objects for item in items)
        report.bytes += sum(item.bytes for item in items)
        if dry_run:
            continue
        _delete_files(listings)
        model_ids = [m for m, _ in chunk]
        with Session(engine) as session, session.begin():
            for table in (SqlLoggedModelTag, SqlLoggedModelParam, SqlRunModelOutput):
                session.execute(delete(table).where(table.model_id.in_(model_ids)))
            session.execute(delete(SqlLoggedModel).where(SqlLoggedModel.model_id.in_(model_ids)))
