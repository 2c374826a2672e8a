"""Each run's params/tags JSON kept on its row by triggers (PostgreSQL, `store/sql/run_docs`) against the
tables it is made from: after every kind of write, the store's or plain SQL's, racing writers, and the
migration that added it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, text

from modelyard.entities import Metric, Param, RunTag
from modelyard.store.sql import migrate
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.sql.run_docs import PARAMS_JSON, TAGS_JSON
from modelyard.store.tracking.sql_store import SqlTrackingStore

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(postgres_uri: str, tmp_path: Path) -> Iterator[SqlTrackingStore]:
    migrate.upgrade(postgres_uri)
    engine = create_engine_for(postgres_uri, pool_size=8)
    yield SqlTrackingStore(engine, str(tmp_path / "artifacts"))
    engine.dispose()


def _stale_runs(engine: Engine) -> list[tuple[str, str | None, str | None]]:
    """Runs whose stored JSON differs from what their params and tags tables say now."""
    with engine.connect() as conn:
        return [
            tuple(row)  # type: ignore[misc]
            for row in conn.execute(
                text(
                    f"SELECT run_uuid, params_json, tags_json FROM runs WHERE params_json IS DISTINCT FROM "
                    f"{PARAMS_JSON} OR tags_json IS DISTINCT FROM {TAGS_JSON}"
                )
            )
        ]


def _search_json(store: SqlTrackingStore, experiment_id: str) -> dict[str, dict[str, object]]:
    page = store.search_runs_json([experiment_id], "", 1, 1000)
    return {run["info"]["run_id"]: run["data"] for run in orjson.loads(orjson.dumps(list(page)))}


def test_every_write_keeps_the_json_equal_to_the_tables(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("docs")
    run = store.create_run(exp, "u", 1, [RunTag("a", "1"), RunTag("b", "2")], "first").info.run_id
    store.log_param(run, Param("lr", "0.1"))
    store.set_tag(run, RunTag("a", "changed"))
    store.delete_tag(run, "b")
    store.update_run_info(run, run_name="second")
    store.log_batch(run, metrics=[Metric("m", 1.0, 1, 0)], params=[Param("z", "last"), Param("e", "")])
    store.log_metric(run, Metric("m", 2.0, 2, 1))  # metric-only writes leave the documents alone
    assert _stale_runs(store.engine) == []
    data = _search_json(store, exp)[run]
    assert data["params"] == [
        {"key": "e", "value": ""},
        {"key": "lr", "value": "0.1"},
        {"key": "z", "value": "last"},
    ]
    assert data["tags"] == [{"key": "a", "value": "changed"}, {"key": "mlflow.runName", "value": "second"}]
    assert data == store.get_run(run).to_dict()["data"]


def test_plain_sql_writes_keep_the_json_too(store: SqlTrackingStore) -> None:
    """An older release after a rollback, a bulk load or an operator's fix-up writes the tables
    directly: the triggers keep the JSON of every run a statement touched."""
    exp = store.create_experiment("docs")
    runs = [store.create_run(exp, "u", 1, run_name=f"r{i}").info.run_id for i in range(3)]
    with store.engine.begin() as conn:
        for run in runs:
            conn.execute(
                text("INSERT INTO params (run_uuid, key, value) VALUES (:r, 'a', '1'), (:r, 'b', '2')"),
                {"r": run},
            )
        conn.execute(text("INSERT INTO tags (run_uuid, key, value) SELECT run_uuid, 'k', 'v' FROM runs"))
        conn.execute(text("UPDATE params SET value = 'changed' WHERE key = 'a'"))
        conn.execute(text("UPDATE tags SET value = NULL WHERE run_uuid = :r AND key = 'k'"), {"r": runs[0]})
        conn.execute(text("DELETE FROM params WHERE run_uuid = :r"), {"r": runs[1]})
        conn.execute(text("DELETE FROM tags WHERE run_uuid = :r"), {"r": runs[2]})
    assert _stale_runs(store.engine) == []
    found = _search_json(store, exp)
    assert found[runs[0]]["params"] == [{"key": "a", "value": "changed"}, {"key": "b", "value": "2"}]
    assert {"key": "k", "value": ""} in found[runs[0]]["tags"]  # type: ignore[operator]
    assert "params" not in found[runs[1]] and "tags" not in found[runs[2]]
    for run in runs:
        assert found[run] == store.get_run(run).to_dict()["data"]
    store.delete_run(runs[0])  # soft delete, then the rows go: the triggers find no run to update
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM runs WHERE run_uuid = :r"), {"r": runs[0]})
    assert _stale_runs(store.engine) == []


def test_a_rejected_write_leaves_the_json_as_it_was(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("docs")
    run = store.create_run(exp, "u", 1, run_name="r").info.run_id
    store.log_param(run, Param("lr", "0.1"))
    with pytest.raises(Exception, match="Changing param values is not allowed"):
        store.log_batch(run, params=[Param("lr", "0.2")], tags=[RunTag("new", "x")])
    assert _stale_runs(store.engine) == []
    assert _search_json(store, exp)[run] == store.get_run(run).to_dict()["data"]
    assert "new" not in {t["key"] for t in _search_json(store, exp)[run]["tags"]}  # type: ignore[union-attr]


def test_a_writer_waits_for_the_run_and_then_sees_the_other_writers_rows(
    store: SqlTrackingStore, postgres_uri: str
) -> None:
    """Another writer of the run holds it mid-transaction (locked, tag written, so its trigger rewrote
    the JSON); our set_tag must wait for its commit and then build the JSON with its tag. Under READ
    COMMITTED a writer that only met the lock in its trigger's UPDATE would finish with the snapshot
    that statement started with, and drop the other tag."""
    exp = store.create_experiment("race")
    run = store.create_run(exp, "u", 1, run_name="r").info.run_id
    other = create_engine_for(postgres_uri)
    try:
        with other.connect() as conn:
            conn.execute(text("SELECT 1 FROM runs WHERE run_uuid = :r FOR NO KEY UPDATE"), {"r": run})
            conn.execute(
                text("INSERT INTO tags (run_uuid, key, value) VALUES (:r, 'theirs', 'x')"), {"r": run}
            )
            ours = threading.Thread(target=store.set_tag, args=(run, RunTag("ours", "y")))
            ours.start()
            ours.join(0.5)
            assert ours.is_alive(), "set_tag did not wait for the run's other writer"
            conn.commit()
            ours.join(10)
    finally:
        other.dispose()
    assert _stale_runs(store.engine) == []
    tags = {t["key"] for t in _search_json(store, exp)[run]["tags"]}  # type: ignore[union-attr]
    assert {"theirs", "ours"} <= tags


def test_racing_writers_of_one_run_all_land(store: SqlTrackingStore) -> None:
    """Writers that log params and set and delete tags of the same run at once, each its own keys:
    no deadlock, no error, and the JSON equals the tables afterwards."""
    exp = store.create_experiment("race")
    run = store.create_run(exp, "u", 1, run_name="r").info.run_id
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for i in range(20):
                store.log_batch(run, params=[Param(f"p{n}-{i}", str(i))], tags=[RunTag(f"t{n}-{i}", "v")])
                store.set_tag(run, RunTag(f"s{n}-{i}", "v"))
                if i % 5 == 4:
                    store.delete_tag(run, f"t{n}-{i - 1}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _stale_runs(store.engine) == []
    data = _search_json(store, exp)[run]
    assert len(data["params"]) == 4 * 20  # type: ignore[arg-type]
    assert len(data["tags"]) == 4 * (20 + 20 - 4) + 1  # type: ignore[arg-type]  # + mlflow.runName
    assert data == store.get_run(run).to_dict()["data"]


def test_the_migration_fills_the_json_of_existing_runs(postgres_uri: str) -> None:
    engine = create_engine_for(postgres_uri)
    try:
        migrate.upgrade(engine, "0004")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO runs (run_uuid, experiment_id, status, lifecycle_stage) VALUES "
                    "('r1', 0, 'RUNNING', 'active'), ('r2', 0, 'RUNNING', 'active')"
                )
            )
            conn.execute(
                text(
                    """INSERT INTO params (run_uuid, key, value) VALUES ('r1', 'b', 'say "hi"'), ('r1', 'a', 'x')"""
                )
            )
            conn.execute(text("INSERT INTO tags (run_uuid, key, value) VALUES ('r1', 't', NULL)"))
        migrate.upgrade(engine)
        with engine.connect() as conn:
            rows = dict(
                (r[0], (r[1], r[2]))
                for r in conn.execute(text("SELECT run_uuid, params_json, tags_json FROM runs"))
            )
        assert rows == {
            "r1": (
                '[{"key":"a","value":"x"},{"key":"b","value":"say \\"hi\\""}]',
                '[{"key":"t","value":""}]',
            ),
            "r2": (None, None),
        }
        assert _stale_runs(engine) == []
    finally:
        engine.dispose()
