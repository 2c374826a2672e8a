"""`modelyard gc` and the per-experiment retention tags (issue #19): `modelyard.retention.days` replaces
`--older-than` for an experiment's deleted runs, and with `modelyard.retention.finished_runs=true` also
applies to its ended runs that no model version points at. Through the store on SQLite and PostgreSQL,
with each run's files in a local artifact folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from modelyard.entities import ExperimentTag, LifecycleStage
from modelyard.exceptions import ModelyardException
from modelyard.lifecycle.gc import FINISHED_RUNS_TAG, RETENTION_TAG, Selection, collect
from modelyard.store.registry.sql_store import SqlRegistryStore
from modelyard.store.sql.migrate import upgrade
from modelyard.store.sql.schema import SqlRun
from modelyard.store.tracking.sql_store import SqlTrackingStore

DAY = 86_400_000
NOW = 1_900_000_000_000  # gc's clock for this test: every age below is relative to it


def _run(store: SqlTrackingStore, experiment_id: str, root: Path, name: str, status: str = "FINISHED", ended_days_ago: float | None = 20) -> str:
    run = store.create_run(experiment_id, user_id="me", start_time=NOW - 30 * DAY, tags=[], run_name=name)
    run_id = run.info.run_id
    if status != "RUNNING":
        store.update_run_info(run_id, status, NOW - int((ended_days_ago or 0) * DAY), name)
    folder = root / run.info.artifact_uri.removeprefix(str(root)).strip("/")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text(name)
    return run_id


def _deleted(store: SqlTrackingStore, run_id: str, days_ago: float) -> None:
    store.delete_run(run_id)
    with store.engine.begin() as conn:  # when it was deleted, on gc's clock
        conn.execute(update(SqlRun).where(SqlRun.run_uuid == run_id).values(deleted_time=NOW - int(days_ago * DAY)))


def test_retention_tags_choose_what_gc_removes(db_uri: str, tmp_path: Path) -> None:
    upgrade(db_uri)
    root = tmp_path / "artifacts"
    store = SqlTrackingStore.from_uri(db_uri, default_artifact_root=str(root))
    registry = SqlRegistryStore(store.engine, artifact_roots=(str(root),))
    plain = store.create_experiment("plain")  # no tags: --older-than decides
    kept_10d = store.create_experiment("ten-days")  # deleted runs go 10 days after their deletion
    store.set_experiment_tag(kept_10d, ExperimentTag(RETENTION_TAG, "10"))
    scratch = store.create_experiment("scratch")  # and ended runs 10 days after they ended
    store.set_experiment_tag(scratch, ExperimentTag(RETENTION_TAG, "10"))
    store.set_experiment_tag(scratch, ExperimentTag(FINISHED_RUNS_TAG, "true"))

    runs = {
        "plain deleted 1d": _run(store, plain, root, "a"),
        "plain ended 20d": _run(store, plain, root, "b"),
        "10d deleted 11d": _run(store, kept_10d, root, "c"),
        "10d deleted 5d": _run(store, kept_10d, root, "d"),
        "10d ended 20d": _run(store, kept_10d, root, "e"),  # that experiment did not opt in
        "scratch ended 20d": _run(store, scratch, root, "f"),
        "scratch failed 20d": _run(store, scratch, root, "g", status="FAILED"),
        "scratch ended 2d": _run(store, scratch, root, "h", ended_days_ago=2),
        "scratch running": _run(store, scratch, root, "i", status="RUNNING"),
        "scratch registered": _run(store, scratch, root, "j"),
    }
    _deleted(store, runs["plain deleted 1d"], 1)
    _deleted(store, runs["10d deleted 11d"], 11)
    _deleted(store, runs["10d deleted 5d"], 5)
    registry.create_registered_model("kept")
    registered = store.get_run(runs["scratch registered"])
    registry.create_model_version("kept", f"{registered.info.artifact_uri}/model", run_id=registered.info.run_id)

    gone = {"plain deleted 1d", "10d deleted 11d", "scratch ended 20d", "scratch failed 20d"}
    dry = collect(store.engine, str(root), Selection(older_than_ms=0), dry_run=True, now_ms=NOW)
    assert sorted(dry.runs) == sorted(runs[k] for k in gone)
    assert dry.objects == len(gone) and dry.refused == []

    # Only for the experiments asked for: the scratch experiment's ended runs alone.
    only = collect(store.engine, str(root), Selection(experiment_ids=[scratch]), dry_run=True, now_ms=NOW)
    assert sorted(only.runs) == sorted(runs[k] for k in ("scratch ended 20d", "scratch failed 20d"))
    # Run ids name deleted runs only: never an active run, whatever its experiment's tags.
    named = collect(store.engine, str(root), Selection(run_ids=[runs["plain deleted 1d"]]), dry_run=True, now_ms=NOW)
    assert named.runs == [runs["plain deleted 1d"]]

    done = collect(store.engine, str(root), Selection(older_than_ms=0), dry_run=False, now_ms=NOW)
    assert sorted(done.runs) == sorted(dry.runs)
    for label, run_id in runs.items():
        folder_files = [p for p in root.rglob("notes.txt") if run_id in str(p)]
        if label in gone:
            assert not folder_files, label
            with pytest.raises(ModelyardException, match="not found"):  # its rows went with its files
                store.get_run(run_id)
        else:
            assert len(folder_files) == 1, label
            stage = store.get_run(run_id).info.lifecycle_stage
            assert stage == (LifecycleStage.DELETED if "deleted" in label else LifecycleStage.ACTIVE), label
    again = collect(store.engine, str(root), Selection(older_than_ms=0), dry_run=False, now_ms=NOW)
    assert again.runs == []  # idempotent: nothing left to do
    store.engine.dispose()


def test_storage_reports_each_experiment_from_its_last_measurement(db_uri: str, tmp_path: Path) -> None:
    """`modelyard storage`: nothing until measured; `--refresh` lists the store (bytes and objects per
    experiment); later runs of the command show that measurement until the next refresh (or gc)."""
    from click.testing import CliRunner

    from modelyard.cli_lifecycle import storage_report

    upgrade(db_uri)
    root = tmp_path / "artifacts"
    store = SqlTrackingStore.from_uri(db_uri, default_artifact_root=str(root))
    small, big = store.create_experiment("small"), store.create_experiment("big")
    _run(store, small, root, "x")  # notes.txt: 1 byte
    for name in ("aaaa", "bbbb"):
        _run(store, big, root, name)  # 4 bytes each
    options = ["--backend-store-uri", db_uri, "--artifacts-destination", str(root)]

    def rows(*extra: str) -> dict[str, tuple[int, int]]:
        result = CliRunner().invoke(storage_report, [*options, *extra])
        assert result.exit_code == 0, result.output
        out = {}
        for line in result.output.splitlines()[1:]:
            experiment, objects, size, *name = line.split()
            out[" ".join(name) or experiment] = (int(objects), int(size))
        return out

    first = CliRunner().invoke(storage_report, options)
    assert first.exit_code == 0 and "No measurement yet" in first.output
    measured = rows("--refresh")
    assert measured["small"] == (1, 1) and measured["big"] == (2, 8) and measured["total"] == (3, 9)
    _run(store, small, root, "later")  # 5 more bytes, not measured yet
    assert rows()["small"] == (1, 1)
    assert rows("--refresh")["small"] == (2, 6)
    store.engine.dispose()
