"""What the artifact store holds: bytes and objects per experiment, and prefixes nobody owns.

`measure` walks each experiment's artifact location (one flat listing per S3 prefix) and caches the
result on the experiment as tags (`modelyard.storage.bytes`, `.objects`, `.measured`), where the
report and the UI read it without listing again; gc refreshes it. `orphans` lists the proxied
destination's `<experiment>/<run>/` and `<experiment>/models/<model>/` folders that no experiment,
run or logged model in the database owns (what a crash between upload and row, or a restored
database, leaves behind).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from modelyard.artifact_repos.locations import Locator
from modelyard.lifecycle.gc import session_rows
from modelyard.lifecycle.locations import place as locate_place
from modelyard.store.sql.logged_model_schema import SqlLoggedModel
from modelyard.store.sql.schema import SqlExperiment, SqlExperimentTag, SqlRun

BYTES_TAG = "modelyard.storage.bytes"
OBJECTS_TAG = "modelyard.storage.objects"
MEASURED_TAG = "modelyard.storage.measured"
#: Run and model ids checked against the database per query, while sweeping.
ID_BATCH = 500


@dataclass(frozen=True)
class Usage:
    experiment_id: str
    name: str
    objects: int
    bytes: int
    measured: int | None


def measure(engine: Engine, destination: str, experiment_ids: Sequence[str] = ()) -> list[Usage]:
    """Walk each experiment's location now, and cache the totals as its tags."""
    locator = Locator(destination)
    stmt = select(SqlExperiment.experiment_id, SqlExperiment.name, SqlExperiment.artifact_location)
    if experiment_ids:
        stmt = stmt.where(SqlExperiment.experiment_id.in_([int(i) for i in experiment_ids]))
    out = []
    for experiment_id, name, location in session_rows(engine, stmt.order_by(SqlExperiment.experiment_id)):
        objects = size = 0
        if location:
            place = locate_place(locator, location)
            for info in place.repository.walk(place.path or None):
                objects += 1
                size += int(info.file_size or 0)
        now = int(time.time() * 1000)
        _cache(engine, int(experiment_id), objects, size, now)
        out.append(Usage(str(experiment_id), name, objects, size, now))
    return out


def cached(engine: Engine) -> list[Usage]:
    """The last measured totals, from the experiments' tags (no listing)."""
    tags: dict[int, dict[str, str]] = {}
    for experiment_id, key, value in session_rows(
        engine,
        select(SqlExperimentTag.experiment_id, SqlExperimentTag.key, SqlExperimentTag.value).where(
            SqlExperimentTag.key.in_([BYTES_TAG, OBJECTS_TAG, MEASURED_TAG])
        ),
    ):
        tags.setdefault(int(experiment_id), {})[key] = value or ""
    names = dict(session_rows(engine, select(SqlExperiment.experiment_id, SqlExperiment.name)))
    return [
        Usage(str(i), names.get(i, "?"), int(t.get(OBJECTS_TAG, 0)), int(t.get(BYTES_TAG, 0)), int(t[MEASURED_TAG]) if t.get(MEASURED_TAG) else None)
        for i, t in sorted(tags.items())
        if i in names
    ]


def _cache(engine: Engine, experiment_id: int, objects: int, size: int, when: int) -> None:
    with Session(engine) as session, session.begin():
        for key, value in ((BYTES_TAG, size), (OBJECTS_TAG, objects), (MEASURED_TAG, when)):
            tag = session.get(SqlExperimentTag, (experiment_id, key))
            if tag is None:
                session.add(SqlExperimentTag(experiment_id=experiment_id, key=key, value=str(value)))
            else:
                tag.value = str(value)


def orphans(engine: Engine, destination: str) -> Iterator[str]:
    """Folders under the destination (relative paths) that nothing in the database owns."""
    repository = Locator(destination).destination_repository()
    known_experiments = {str(i) for (i,) in session_rows(engine, select(SqlExperiment.experiment_id))}
    for top in repository.list_artifacts(None):
        if not top.is_dir:
            continue
        if top.path not in known_experiments:
            yield top.path
            continue
        children = [c for c in repository.list_artifacts(top.path) if c.is_dir]
        runs = [c.path for c in children if c.path.rsplit("/", 1)[-1] != "models"]
        yield from _unknown(engine, runs, SqlRun.run_uuid)
        if any(c.path.rsplit("/", 1)[-1] == "models" for c in children):
            models = [c.path for c in repository.list_artifacts(f"{top.path}/models") if c.is_dir]
            yield from _unknown(engine, models, SqlLoggedModel.model_id)


def _unknown(engine: Engine, paths: list[str], column: object) -> Iterator[str]:
    for start in range(0, len(paths), ID_BATCH):
        batch = {p.rsplit("/", 1)[-1]: p for p in paths[start : start + ID_BATCH]}
        found = {v for (v,) in session_rows(engine, select(column).where(column.in_(list(batch))))}  # type: ignore[attr-defined,call-overload]
        yield from (path for ident, path in batch.items() if ident not in found)
