"""gc's batched listing and deletes (issue #19, "gc of 10,000 deleted runs ... in minutes"): a batch's run
folders of one experiment listed as one key range, exactly the listed keys deleted by DeleteObjects across
runs, on PostgreSQL + the S3 server and on a local folder, in process (`lifecycle.gc.collect`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from modelyard.artifact_repos import s3_folders
from modelyard.lifecycle import gc
from modelyard.store.sql.migrate import upgrade
from modelyard.store.tracking.sql_store import SqlTrackingStore


def _store(uri: str, root: str) -> SqlTrackingStore:
    upgrade(uri)
    return SqlTrackingStore.from_uri(uri, default_artifact_root=root)


def _runs(store: SqlTrackingStore, experiment_id: str, count: int) -> list[str]:
    """`count` runs of the experiment, their ids in order (gc's batch order)."""
    return sorted(store.create_run(experiment_id, "me", 0).info.run_id for _ in range(count))


@pytest.fixture
def s3(s3_bucket: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MODELYARD_S3_ENDPOINT_URL", s3_endpoint)
    from modelyard.artifact_repos.s3_client import get_s3_client

    return get_s3_client()


def _put(s3: Any, bucket: str, keys: dict[str, int]) -> None:
    for key, size in keys.items():
        s3.put_object(Bucket=bucket, Key=key, Body=b"x" * size)


def _bucket(s3: Any, bucket: str) -> set[str]:
    return {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])}


def _calls(s3: Any) -> Counter[str]:
    """S3 requests made on the shared client (the one gc uses) from now on, by operation."""
    calls: Counter[str] = Counter()
    s3.meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))
    return calls


def _collect(store: SqlTrackingStore, destination: str, dry_run: bool) -> tuple[gc.Report, list[str]]:
    lines: list[str] = []
    report = gc.collect(store.engine, destination, gc.Selection(), dry_run=dry_run, progress=lines.append)
    return report, lines


@pytest.mark.postgres
@pytest.mark.s3
@pytest.mark.parametrize("mode", ["range", "sparse", "many keys"])
def test_a_batch_of_one_experiment_is_listed_as_one_range(
    mode: str, postgres_uri: str, s3_bucket: str, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five runs of one experiment; the 1st, 3rd and 5th (by id) deleted, so live runs' keys lie inside
    the deleted runs' key range: they, and a deleted run's file outside its artifacts folder, stay."""
    if mode == "sparse":  # pages of 2 keys: the range needs more pages than it has folders
        monkeypatch.setattr(s3_folders, "PAGE_KEYS", 2)
    if mode == "many keys":  # the listing keeps no keys: the delete goes folder by folder
        monkeypatch.setattr(s3_folders, "KEEP_MAX", 3)
    store = _store(postgres_uri, "mlflow-artifacts:/")
    experiment_id = store.create_experiment("range")
    runs = _runs(store, experiment_id, 5)
    doomed, live = runs[0::2], runs[1::2]
    # Folder names that share their first character, as 200 runs of a batch among thousands do (names that
    # share none are split into ranges by it: `test_s3_folders`).
    name = {run_id: f"r{i}-{run_id}" for i, run_id in enumerate(runs)}
    with store.engine.begin() as db:
        for run_id in runs:
            uri = f"mlflow-artifacts:/{experiment_id}/{name[run_id]}/artifacts"
            db.execute(text("UPDATE runs SET artifact_uri = :uri WHERE run_uuid = :id"), {"uri": uri, "id": run_id})
    folder = {run_id: f"artifacts/{experiment_id}/{name[run_id]}/artifacts" for run_id in runs}
    doomed_keys = {}
    for i, run_id in enumerate(doomed):
        doomed_keys |= {f"{folder[run_id]}/model/MLmodel": 100 + i, f"{folder[run_id]}/a.txt": 10}
    markers = {f"{folder[doomed[1]]}/model/": 0, folder[doomed[2]]: 0}  # deleted, not counted
    kept = {f"{folder[run_id]}/a.txt": 7 for run_id in live}
    kept |= {f"artifacts/{experiment_id}/{name[doomed[0]]}/outside.txt": 5, f"{folder[doomed[1]]}-old/b.txt": 5}
    _put(s3, s3_bucket, doomed_keys | markers | kept)
    for run_id in doomed:
        store.delete_run(run_id)
    destination = f"s3://{s3_bucket}/artifacts"

    calls = _calls(s3)
    report, lines = _collect(store, destination, dry_run=True)
    assert report.runs == doomed and (report.objects, report.bytes) == (6, 333)
    assert lines[0] == f"would remove run {doomed[0]} (experiment {experiment_id}): 2 objects, 110 bytes"
    if mode == "range":
        assert calls == {"ListObjectsV2": 1}  # one range for the three runs, not one listing each

    calls.clear()
    report, _ = _collect(store, destination, dry_run=False)
    assert report.runs == doomed and (report.objects, report.bytes) == (6, 333)
    if mode == "range":
        assert calls == {"ListObjectsV2": 1, "DeleteObjects": 1}  # the three runs' 8 keys in one call
    if mode == "sparse":
        assert calls["DeleteObjects"] == 1
    assert _bucket(s3, s3_bucket) == set(kept)
    with store.engine.connect() as db:
        assert {r for (r,) in db.execute(text("SELECT run_uuid FROM runs"))} == set(live)
        assert db.execute(text("SELECT count(*) FROM tags WHERE run_uuid = ANY(:ids)"), {"ids": doomed}).scalar() == 0


@pytest.mark.postgres
@pytest.mark.s3
def test_runs_outside_the_pattern_are_listed_alone(postgres_uri: str, s3_bucket: str, s3: Any) -> None:
    """Runs whose locations are concrete S3 URIs of any shape, next to a proxied one: each run's files go,
    a sibling folder whose name starts like a run's location stays."""
    store = _store(postgres_uri, "mlflow-artifacts:/")
    experiment_id = store.create_experiment("shapes")
    flat, deep, proxied, live = _runs(store, experiment_id, 4)
    locations = {flat: f"s3://{s3_bucket}/flat-{flat}", deep: f"s3://{s3_bucket}/team/x/{deep}/artifacts"}
    with store.engine.begin() as db:
        for run_id, uri in locations.items():
            db.execute(text("UPDATE runs SET artifact_uri = :uri WHERE run_uuid = :id"), {"uri": uri, "id": run_id})
    doomed_keys = {f"flat-{flat}/f.bin": 11, f"team/x/{deep}/artifacts/sub/g.bin": 13,
                   f"artifacts/{experiment_id}/{proxied}/artifacts/h.bin": 17}  # fmt: skip
    kept = {f"flat-{flat}2/f.bin": 3, f"team/x/{deep}/artifacts-2/g.bin": 3, f"artifacts/{experiment_id}/{live}/artifacts/h.bin": 3}
    _put(s3, s3_bucket, doomed_keys | kept)
    for run_id in (flat, deep, proxied):
        store.delete_run(run_id)

    report, lines = _collect(store, f"s3://{s3_bucket}/artifacts", dry_run=False)
    assert sorted(report.runs) == sorted([flat, deep, proxied]) and (report.objects, report.bytes) == (3, 41)
    assert f"removing run {deep} (experiment {experiment_id}): 1 objects, 13 bytes" in lines
    assert _bucket(s3, s3_bucket) == set(kept)


def test_gc_on_a_local_folder(sqlite_uri: str, tmp_path: Path) -> None:
    """Proxied runs in a local artifacts folder: listed and deleted folder by folder, as before."""
    destination = tmp_path / "artifacts"
    store = _store(sqlite_uri, "mlflow-artifacts:/")
    experiment_id = store.create_experiment("local")
    runs = _runs(store, experiment_id, 3)
    for run_id in runs:
        (destination / experiment_id / run_id / "artifacts" / "sub").mkdir(parents=True)
        (destination / experiment_id / run_id / "artifacts" / "sub" / "f.txt").write_text("x" * 20)
    for run_id in runs[::2]:
        store.delete_run(run_id)

    report, _ = _collect(store, str(destination), dry_run=True)
    assert report.runs == runs[::2] and (report.objects, report.bytes) == (2, 40)
    report, _ = _collect(store, str(destination), dry_run=False)
    assert report.runs == runs[::2]
    assert sorted(p.name for p in (destination / experiment_id).iterdir() if any(p.iterdir())) == [runs[1]]
    assert (destination / experiment_id / runs[1] / "artifacts" / "sub" / "f.txt").read_text() == "x" * 20
