"""SqlTrackingStore on real SQLite and PostgreSQL databases: MLflow's tracking semantics."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from modelyard.entities import ExperimentTag, LifecycleStage, Metric, Param, RunTag, ViewType
from modelyard.exceptions import ModelyardException
from modelyard.protocol import limits
from modelyard.store.sql import migrate
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.sql.schema import SqlLatestMetric, SqlMetric, SqlRun
from modelyard.store.tracking.sql_store import SqlTrackingStore

ALLOWED_ROOT = "s3://allowed-bucket/team"


@pytest.fixture
def store(db_uri: str, tmp_path: Path) -> Iterator[SqlTrackingStore]:
    migrate.upgrade(db_uri)
    engine = create_engine_for(db_uri)
    yield SqlTrackingStore(engine, str(tmp_path / "artifacts"), allowed_artifact_roots=(ALLOWED_ROOT,))
    engine.dispose()


@pytest.fixture
def run_id(store: SqlTrackingStore) -> str:
    experiment_id = store.create_experiment("exp")
    return store.create_run(experiment_id, "alice", 1000).info.run_id


def _raises(code: str, fn, *args, **kwargs) -> ModelyardException:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelyardException) as info:
        fn(*args, **kwargs)
    assert info.value.error_code == code, info.value.message
    return info.value


def _history(store: SqlTrackingStore, run_id: str, key: str) -> list[tuple[int, int, float]]:
    return [(m.step, m.timestamp, m.value) for m in store.get_metric_history(run_id, key)]


# ---- experiments ------------------------------------------------------------------------------------
def test_default_experiment_exists_with_a_location_under_the_root(store: SqlTrackingStore) -> None:
    default = store.get_experiment("0")
    assert default.name == "Default"
    assert default.lifecycle_stage == LifecycleStage.ACTIVE
    assert default.artifact_location == f"{store.default_artifact_root}/0"
    assert store.get_experiment_by_name("Default") == default


def test_create_experiment_ids_locations_and_tags(store: SqlTrackingStore) -> None:
    first = store.create_experiment("a", tags=[ExperimentTag("team", "ml")])
    second = store.create_experiment("b")
    assert first.isdigit() and int(second) > int(first) > 0
    experiment = store.get_experiment(first)
    assert experiment.artifact_location == f"{store.default_artifact_root}/{first}"
    assert experiment.tags == {"team": "ml"}
    assert experiment.creation_time is not None and experiment.last_update_time is not None


def test_duplicate_experiment_name_is_refused(store: SqlTrackingStore) -> None:
    store.create_experiment("dup")
    err = _raises("RESOURCE_ALREADY_EXISTS", store.create_experiment, "dup")
    assert err.http_status == 400
    _raises("RESOURCE_ALREADY_EXISTS", store.create_experiment, "Default")


@pytest.mark.parametrize("name", ["", "x" * (limits.MAX_EXPERIMENT_NAME_LENGTH + 1)])
def test_invalid_experiment_names(store: SqlTrackingStore, name: str) -> None:
    _raises("INVALID_PARAMETER_VALUE", store.create_experiment, name)


def test_artifact_location_must_lie_inside_an_allowed_root(store: SqlTrackingStore) -> None:
    inside = store.create_experiment("inside", artifact_location=f"{store.default_artifact_root}/custom")
    assert store.get_experiment(inside).artifact_location == f"{store.default_artifact_root}/custom"
    allowed = store.create_experiment("allowed", artifact_location=f"{ALLOWED_ROOT}/proj")
    assert store.get_experiment(allowed).artifact_location == f"{ALLOWED_ROOT}/proj"
    for bad in (
        "s3://elsewhere/x",
        f"{ALLOWED_ROOT}/../escape",
        f"{store.default_artifact_root}/../escape",
        "/etc",
        f"{ALLOWED_ROOT}-evil/x",
    ):
        _raises("INVALID_PARAMETER_VALUE", store.create_experiment, f"bad {bad}", artifact_location=bad)
    assert store.get_experiment_by_name("bad s3://elsewhere/x") is None


def test_unknown_experiments(store: SqlTrackingStore) -> None:
    for bad in ("12345", "abc", "", "-1", "99999999999999"):
        err = _raises("RESOURCE_DOES_NOT_EXIST", store.get_experiment, bad)
        assert err.http_status == 404
    assert store.get_experiment_by_name("nope") is None
    _raises("RESOURCE_DOES_NOT_EXIST", store.delete_experiment, "424242")
    _raises("RESOURCE_DOES_NOT_EXIST", store.create_run, "424242", "u", 0)


def test_rename_experiment(store: SqlTrackingStore) -> None:
    experiment_id = store.create_experiment("old")
    store.create_experiment("taken")
    store.rename_experiment(experiment_id, "new")
    assert store.get_experiment(experiment_id).name == "new"
    assert store.get_experiment_by_name("old") is None
    _raises("RESOURCE_ALREADY_EXISTS", store.rename_experiment, experiment_id, "taken")
    _raises("INVALID_PARAMETER_VALUE", store.rename_experiment, experiment_id, "")
    store.delete_experiment(experiment_id)
    _raises("INVALID_PARAMETER_VALUE", store.rename_experiment, experiment_id, "newer")


def test_experiment_tags(store: SqlTrackingStore) -> None:
    experiment_id = store.create_experiment("tagged")
    store.set_experiment_tag(experiment_id, ExperimentTag("k", "v1"))
    store.set_experiment_tag(experiment_id, ExperimentTag("k", "v2"))
    store.set_experiment_tag(experiment_id, ExperimentTag("other", "x"))
    assert store.get_experiment(experiment_id).tags == {"k": "v2", "other": "x"}
    store.delete_experiment_tag(experiment_id, "k")
    assert store.get_experiment(experiment_id).tags == {"other": "x"}
    _raises("RESOURCE_DOES_NOT_EXIST", store.delete_experiment_tag, experiment_id, "k")
    _raises("INVALID_PARAMETER_VALUE", store.set_experiment_tag, experiment_id, ExperimentTag("bad!", "v"))


def test_delete_and_restore_experiment_carries_its_runs(store: SqlTrackingStore) -> None:
    experiment_id = store.create_experiment("lifecycle")
    kept = store.create_run(experiment_id, "u", 1).info.run_id
    deleted_before = store.create_run(experiment_id, "u", 2).info.run_id
    store.delete_run(deleted_before)

    store.delete_experiment(experiment_id)
    assert store.get_experiment(experiment_id).lifecycle_stage == LifecycleStage.DELETED
    assert store.get_run(kept).info.lifecycle_stage == LifecycleStage.DELETED
    _raises("INVALID_PARAMETER_VALUE", store.create_run, experiment_id, "u", 3)
    _raises("INVALID_PARAMETER_VALUE", store.log_metric, kept, Metric("m", 1.0, 0, 0))

    store.restore_experiment(experiment_id)
    assert store.get_experiment(experiment_id).lifecycle_stage == LifecycleStage.ACTIVE
    assert store.get_run(kept).info.lifecycle_stage == LifecycleStage.ACTIVE
    # A run the user deleted on its own stays deleted.
    assert store.get_run(deleted_before).info.lifecycle_stage == LifecycleStage.DELETED
    _raises("INVALID_PARAMETER_VALUE", store.restore_experiment, experiment_id)


def test_a_run_deleted_in_the_same_millisecond_as_its_experiment_stays_deleted(
    store: SqlTrackingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """restore_experiment tells the runs deleted with the experiment from those deleted before by
    their deleted_time; a clock that does not move between the two deletions must not blur that."""
    from modelyard.store.tracking import sql_experiments, sql_store

    experiment_id = store.create_experiment("same-ms")
    kept = store.create_run(experiment_id, "u", 1).info.run_id
    deleted_before = store.create_run(experiment_id, "u", 2).info.run_id
    for module in (sql_store, sql_experiments):
        monkeypatch.setattr(module, "now_ms", lambda: 1_700_000_000_000)
    store.delete_run(deleted_before)
    store.delete_experiment(experiment_id)
    store.restore_experiment(experiment_id)
    assert store.get_run(kept).info.lifecycle_stage == LifecycleStage.ACTIVE
    assert store.get_run(deleted_before).info.lifecycle_stage == LifecycleStage.DELETED


# ---- runs -------------------------------------------------------------------------------------------
def test_create_run_identity_and_locations(store: SqlTrackingStore) -> None:
    experiment_id = store.create_experiment("runs")
    run = store.create_run(experiment_id, "alice", 1234, tags=[RunTag("t", "v")])
    info = run.info
    assert re.fullmatch(r"[0-9a-f]{32}", info.run_id)
    assert info.experiment_id == experiment_id
    assert info.user_id == "alice" and info.start_time == 1234 and info.end_time is None
    assert info.status == "RUNNING" and info.lifecycle_stage == LifecycleStage.ACTIVE
    location = store.get_experiment(experiment_id).artifact_location
    assert info.artifact_uri == f"{location}/{info.run_id}/artifacts"
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{1,3}", info.run_name)
    assert run.data.tags == {"t": "v", "mlflow.runName": info.run_name}
    assert store.get_run(info.run_id) == run


def test_runs_in_the_default_experiment_use_its_filled_location(store: SqlTrackingStore) -> None:
    run = store.create_run("0", "u", 0)
    assert run.info.artifact_uri == f"{store.default_artifact_root}/0/{run.info.run_id}/artifacts"


def test_run_name_and_tag_stay_in_sync(store: SqlTrackingStore) -> None:
    experiment_id = store.create_experiment("names")
    by_arg = store.create_run(experiment_id, "u", 0, run_name="first")
    assert by_arg.info.run_name == "first" and by_arg.data.tags["mlflow.runName"] == "first"
    by_tag = store.create_run(experiment_id, "u", 0, tags=[RunTag("mlflow.runName", "tagged")])
    assert by_tag.info.run_name == "tagged"
    _raises(
        "INVALID_PARAMETER_VALUE",
        store.create_run,
        experiment_id,
        "u",
        0,
        tags=[RunTag("mlflow.runName", "a")],
        run_name="b",
    )

    run_id = by_arg.info.run_id
    info = store.update_run_info(run_id, run_name="second")
    assert info.run_name == "second"
    assert store.get_run(run_id).data.tags["mlflow.runName"] == "second"
    store.set_tag(run_id, RunTag("mlflow.runName", "third"))
    run = store.get_run(run_id)
    assert run.info.run_name == "third" and run.data.tags["mlflow.runName"] == "third"


def test_update_run_info(store: SqlTrackingStore, run_id: str) -> None:
    info = store.update_run_info(run_id, run_status="FINISHED", end_time=5000)
    assert (info.status, info.end_time) == ("FINISHED", 5000)
    assert store.get_run(run_id).info.status == "FINISHED"
    _raises("INVALID_PARAMETER_VALUE", store.update_run_info, run_id, run_status="DONE")
    _raises("RESOURCE_DOES_NOT_EXIST", store.update_run_info, "f" * 32, run_status="FINISHED")


def test_delete_and_restore_run(store: SqlTrackingStore, run_id: str) -> None:
    store.delete_run(run_id)
    assert store.get_run(run_id).info.lifecycle_stage == LifecycleStage.DELETED
    with store.engine.connect() as conn:
        assert conn.execute(select(SqlRun.deleted_time).where(SqlRun.run_uuid == run_id)).scalar_one() > 0
    for write in (
        lambda: store.log_param(run_id, Param("p", "1")),
        lambda: store.set_tag(run_id, RunTag("t", "1")),
        lambda: store.log_batch(run_id, metrics=[Metric("m", 1.0, 0, 0)]),
        lambda: store.update_run_info(run_id, run_status="FAILED"),
        lambda: store.delete_tag(run_id, "mlflow.runName"),
    ):
        _raises("INVALID_PARAMETER_VALUE", write)
    store.restore_run(run_id)
    assert store.get_run(run_id).info.lifecycle_stage == LifecycleStage.ACTIVE
    with store.engine.connect() as conn:
        assert conn.execute(select(SqlRun.deleted_time).where(SqlRun.run_uuid == run_id)).scalar_one() is None
    store.log_param(run_id, Param("p", "1"))


def test_unknown_runs(store: SqlTrackingStore) -> None:
    for fn in (store.get_run, store.delete_run, store.restore_run):
        err = _raises("RESOURCE_DOES_NOT_EXIST", fn, "0" * 32)
        assert err.http_status == 404
    _raises("RESOURCE_DOES_NOT_EXIST", store.log_param, "nope", Param("p", "1"))
    _raises("RESOURCE_DOES_NOT_EXIST", store.get_metric_history, "nope", "m")


# ---- params, tags, batches ---------------------------------------------------------------------------
def test_params_are_immutable(store: SqlTrackingStore, run_id: str) -> None:
    store.log_param(run_id, Param("lr", "0.1"))
    store.log_param(run_id, Param("lr", "0.1"))  # the same value again is fine
    err = _raises("INVALID_PARAMETER_VALUE", store.log_param, run_id, Param("lr", "0.2"))
    assert "lr" in err.message and "0.1" in err.message and "0.2" in err.message
    assert store.get_run(run_id).data.params == {"lr": "0.1"}


def test_params_and_tags_at_their_longest_are_stored(store: SqlTrackingStore, run_id: str) -> None:
    import secrets

    # Random (incompressible) text: a (key, value) btree index would refuse these rows on PostgreSQL.
    value = secrets.token_hex(limits.MAX_PARAM_VALUE_LENGTH // 2)
    tag = secrets.token_hex(limits.MAX_TAG_VALUE_LENGTH // 2)
    store.log_batch(run_id, params=[Param("long", value)], tags=[RunTag("long", tag)])
    data = store.get_run(run_id).data
    assert data.params["long"] == value and data.tags["long"] == tag


def test_duplicate_param_keys_within_a_batch(store: SqlTrackingStore, run_id: str) -> None:
    store.log_batch(run_id, params=[Param("a", "1"), Param("a", "1")])
    _raises("INVALID_PARAMETER_VALUE", store.log_batch, run_id, params=[Param("b", "1"), Param("b", "2")])
    assert store.get_run(run_id).data.params == {"a": "1"}


def test_batch_is_all_or_nothing_on_a_bad_last_item(store: SqlTrackingStore, run_id: str) -> None:
    metrics = [Metric(f"m{i}", float(i), 10, 0) for i in range(20)]
    params = [Param(f"p{i}", "v") for i in range(5)]
    tags = [RunTag("t", "v"), RunTag("bad/../tag", "v")]
    _raises("INVALID_PARAMETER_VALUE", store.log_batch, run_id, metrics, params, tags)
    _raises(
        "INVALID_PARAMETER_VALUE",
        store.log_batch,
        run_id,
        [*metrics, Metric("m", "x", 0, 0)],
        params,  # type: ignore[arg-type]
    )
    run = store.get_run(run_id)
    assert run.data.metrics == {} and run.data.params == {}
    assert set(run.data.tags) == {"mlflow.runName"}


def test_batch_rolls_back_when_the_database_refuses_a_param(store: SqlTrackingStore, run_id: str) -> None:
    store.log_param(run_id, Param("fixed", "1"))
    _raises(
        "INVALID_PARAMETER_VALUE",
        store.log_batch,
        run_id,
        metrics=[Metric("m", 1.0, 0, 0)],
        params=[Param("new", "x"), Param("fixed", "2")],
        tags=[RunTag("t", "v")],
    )
    run = store.get_run(run_id)
    assert run.data.params == {"fixed": "1"} and run.data.metrics == {} and "t" not in run.data.tags
    assert store.get_metric_history(run_id, "m") == []


def test_batch_limits_are_enforced(store: SqlTrackingStore, run_id: str) -> None:
    too_many = [Metric("m", 1.0, 0, i) for i in range(limits.MAX_METRICS_PER_BATCH + 1)]
    _raises("INVALID_PARAMETER_VALUE", store.log_batch, run_id, metrics=too_many)
    assert store.get_metric_history(run_id, "m") == []


def test_tags_upsert_and_delete(store: SqlTrackingStore, run_id: str) -> None:
    store.set_tag(run_id, RunTag("k", "1"))
    store.log_batch(run_id, tags=[RunTag("k", "2"), RunTag("j", "x")])
    assert {k: v for k, v in store.get_run(run_id).data.tags.items() if k != "mlflow.runName"} == {
        "k": "2",
        "j": "x",
    }
    store.delete_tag(run_id, "k")
    assert "k" not in store.get_run(run_id).data.tags
    _raises("RESOURCE_DOES_NOT_EXIST", store.delete_tag, run_id, "k")


def test_empty_batch_is_accepted(store: SqlTrackingStore, run_id: str) -> None:
    store.log_batch(run_id)
    _raises("RESOURCE_DOES_NOT_EXIST", store.log_batch, "f" * 32)


# ---- metrics -------------------------------------------------------------------------------------------
def test_param_and_tag_values_with_array_syntax_survive(store: SqlTrackingStore, run_id: str) -> None:
    """PostgreSQL gets batches as arrays in their text form: quoting characters must stay data."""
    odd = ['say "hi"', "back\\slash\\", "{braces}", "NULL", "a,b", "", " padded ", "日本語", "'"]
    store.log_batch(
        run_id,
        params=[Param(f"p{i}", v) for i, v in enumerate(odd)],
        tags=[RunTag(f"t{i}", v) for i, v in enumerate(odd)],
    )
    data = store.get_run(run_id).data
    assert data.params == {f"p{i}": v for i, v in enumerate(odd)}
    assert {k: v for k, v in data.tags.items() if k.startswith("t")} == {
        f"t{i}": v for i, v in enumerate(odd)
    }


def test_metric_writes_to_unknown_or_deleted_runs_write_nothing(store: SqlTrackingStore, run_id: str) -> None:
    store.delete_run(run_id)
    for write in (
        lambda: store.log_metric(run_id, Metric("m", 1.0, 1, 1)),
        lambda: store.log_batch(run_id, metrics=[Metric("m", 1.0, 1, 1), Metric("n", 2.0, 1, 1)]),
    ):
        err = _raises("INVALID_PARAMETER_VALUE", write)
        assert "must be in the 'active' state" in err.message and "deleted" in err.message
    err = _raises("RESOURCE_DOES_NOT_EXIST", store.log_metric, "e" * 32, Metric("m", 1.0, 1, 1))
    assert err.message == f"Run with id={'e' * 32} not found" and err.http_status == 404
    with store.engine.connect() as conn:
        assert conn.execute(select(SqlMetric.key)).all() == []
        assert conn.execute(select(SqlLatestMetric.key)).all() == []
    store.restore_run(run_id)
    store.log_metric(run_id, Metric("m", 1.0, 1, 1))
    assert store.get_run(run_id).data.metrics == {"m": 1.0}


def test_metric_values_steps_and_keys_at_their_edges(store: SqlTrackingStore, run_id: str) -> None:
    int64_min, int64_max = -(2**63), 2**63 - 1
    points = [
        Metric("tiny", 5e-324, 0, int64_min),
        Metric("tiny", 0.1 + 0.2, int64_max, int64_max),
        Metric("an int", 3, 7, 0),
        Metric("neg zero", -0.0, 1, 0),
        Metric("huge", -1.7976931348623157e308, 1, 0),
        Metric("a/b:c d.e-f", 1e-300, 1, 0),
        Metric("日本", 2.5, 1, 0),
    ]
    store.log_batch(run_id, metrics=points)
    assert _history(store, run_id, "tiny") == [(int64_min, 0, 5e-324), (int64_max, int64_max, 0.1 + 0.2)]
    metrics = store.get_run(run_id).data.metrics
    assert metrics == {
        "tiny": 0.1 + 0.2,
        "an int": 3.0,
        "neg zero": 0.0,
        "huge": -1.7976931348623157e308,
        "a/b:c d.e-f": 1e-300,
        "日本": 2.5,
    }


def test_a_point_repeated_within_a_batch_is_stored_once(store: SqlTrackingStore, run_id: str) -> None:
    point = Metric("loss", 0.5, 10, 1)
    store.log_batch(run_id, metrics=[point, Metric("loss", 0.7, 10, 1), point])
    assert _history(store, run_id, "loss") == [(1, 10, 0.5), (1, 10, 0.7)]
    assert store.get_run(run_id).data.metrics == {"loss": 0.7}


def test_concurrent_single_metrics_on_the_same_key(store: SqlTrackingStore, run_id: str) -> None:
    """log-metric's one-statement path under contention: no errors, no lost points, greatest wins."""
    n_threads, n_points = 6, 20

    def writer(w: int) -> None:
        for i in range(n_points):
            store.log_metric(run_id, Metric("loss", float(w), 1000 + i, i))

    assert _race(n_threads, writer) == []
    assert len(_history(store, run_id, "loss")) == n_threads * n_points
    latest = store.get_run(run_id).data.metric_objects[0]
    assert (latest.step, latest.timestamp, latest.value) == (n_points - 1, 1000 + n_points - 1, n_threads - 1)


def test_latest_metric_is_the_greatest_step_then_timestamp(store: SqlTrackingStore, run_id: str) -> None:
    store.log_metric(run_id, Metric("loss", 0.5, 100, 5))
    store.log_metric(run_id, Metric("loss", 0.9, 200, 1))  # later in time, earlier step
    assert store.get_run(run_id).data.metrics["loss"] == 0.5
    store.log_metric(run_id, Metric("loss", 0.4, 150, 5))  # same step, later timestamp
    assert store.get_run(run_id).data.metrics["loss"] == 0.4
    store.log_metric(run_id, Metric("loss", 0.3, 150, 5))  # same step and timestamp, smaller value
    assert store.get_run(run_id).data.metrics["loss"] == 0.4
    store.log_batch(run_id, metrics=[Metric("loss", 0.1, 1, 9), Metric("loss", 0.2, 1, 7)])
    latest = store.get_run(run_id).data.metric_objects[0]
    assert (latest.key, latest.value, latest.timestamp, latest.step) == ("loss", 0.1, 1, 9)


def test_nan_and_infinities_round_trip(store: SqlTrackingStore, run_id: str) -> None:
    store.log_batch(
        run_id,
        metrics=[
            Metric("nan", math.nan, 1, 0),
            Metric("inf", math.inf, 1, 0),
            Metric("ninf", -math.inf, 1, 0),
            Metric("big", 1.7976931348623157e308, 1, 0),
        ],
    )
    metrics = store.get_run(run_id).data.metrics
    assert math.isnan(metrics["nan"])
    assert metrics["inf"] == math.inf and metrics["ninf"] == -math.inf
    assert metrics["big"] == 1.7976931348623157e308
    assert math.isnan(store.get_metric_history(run_id, "nan")[0].value)
    assert store.get_metric_history(run_id, "ninf")[0].value == -math.inf
    # A later finite value replaces NaN as the latest.
    store.log_metric(run_id, Metric("nan", 2.0, 2, 1))
    assert store.get_run(run_id).data.metrics["nan"] == 2.0


def test_metric_history_order_paging_and_retries(store: SqlTrackingStore, run_id: str) -> None:
    points = [Metric("acc", float(s), 1000 - s, s) for s in (3, 1, 4, 0, 2)]
    store.log_batch(run_id, metrics=points)
    store.log_batch(run_id, metrics=points)  # a retried request is absorbed, not duplicated
    store.log_metric(run_id, Metric("acc", 9.0, 1, 2))  # same step, earlier timestamp sorts first
    assert _history(store, run_id, "acc") == [
        (0, 1000, 0.0),
        (1, 999, 1.0),
        (2, 1, 9.0),
        (2, 998, 2.0),
        (3, 997, 3.0),
        (4, 996, 4.0),
    ]
    pages, token = [], None
    while True:
        page = store.get_metric_history(run_id, "acc", max_results=4, page_token=token)
        pages.append([m.step for m in page])
        token = page.token
        if token is None:
            break
    assert pages == [[0, 1, 2, 2], [3, 4]]
    first = store.get_metric_history(run_id, "acc", max_results=4)
    # A token belongs to its own history: handed to another key, it is refused.
    _raises("INVALID_PARAMETER_VALUE", store.get_metric_history, run_id, "other", page_token=first.token)
    assert store.get_metric_history(run_id, "missing") == []
    _raises("INVALID_PARAMETER_VALUE", store.get_metric_history, run_id, "acc", page_token="garbage!")
    _raises("INVALID_PARAMETER_VALUE", store.get_metric_history, run_id, "acc", max_results=0)


def test_a_full_batch_of_metrics(store: SqlTrackingStore, run_id: str) -> None:
    batch = [Metric(f"k{i % 50}", float(i), i, i // 50) for i in range(limits.MAX_METRICS_PER_BATCH)]
    store.log_batch(run_id, metrics=batch)
    metrics = store.get_run(run_id).data.metrics
    assert len(metrics) == 50
    assert metrics["k0"] == 950.0 and metrics["k49"] == 999.0
    with store.engine.connect() as conn:
        assert len(conn.execute(select(SqlMetric.key).where(SqlMetric.run_uuid == run_id)).all()) == 1000


def test_concurrent_batches_on_the_same_run_and_keys(store: SqlTrackingStore, run_id: str) -> None:
    """Writers racing on the same params, tags and metric keys never fail; the greatest point wins."""
    n_threads, n_batches = 6, 15

    def writer(w: int) -> None:
        for b in range(n_batches):
            store.log_batch(
                run_id,
                metrics=[Metric(key, float(w * 1000 + b), b, b) for key in ("loss", "acc", "lr")],
                params=[Param("shared", "same"), Param(f"own{w}", str(w))],
                tags=[RunTag("shared", "x"), RunTag(f"writer{w}", str(b))],
            )

    assert _race(n_threads, writer) == []
    run = store.get_run(run_id)
    last = n_batches - 1
    best = (n_threads - 1) * 1000 + last  # same step and timestamp for all writers: greatest value wins
    assert run.data.metrics == {"loss": best, "acc": best, "lr": best}
    assert run.data.params == {"shared": "same", **{f"own{w}": str(w) for w in range(n_threads)}}
    assert all(run.data.tags[f"writer{w}"] == str(last) for w in range(n_threads))
    assert len(store.get_metric_history(run_id, "loss")) == n_threads * n_batches


# ---- inputs and bulk loading ----------------------------------------------------------------------------
def test_log_inputs_round_trip(store: SqlTrackingStore, run_id: str) -> None:
    dataset = {"name": "iris", "digest": "abc123", "source_type": "local", "source": "/data/iris.csv"}
    train = {"tags": [{"key": "mlflow.data.context", "value": "train"}], "dataset": dataset}
    other = {"tags": [], "dataset": {**dataset, "name": "wine", "digest": "def456"}}
    store.log_inputs(run_id, [train, other])
    store.log_inputs(run_id, [train])  # logging the same dataset again keeps one entry
    inputs = store.get_run(run_id).inputs.dataset_inputs
    assert sorted(i["dataset"]["name"] for i in inputs) == ["iris", "wine"]
    assert next(i for i in inputs if i["dataset"]["name"] == "iris") == train
    _raises("INVALID_PARAMETER_VALUE", store.log_inputs, run_id, [{"dataset": {"name": "x"}}])
    store.delete_run(run_id)
    _raises("INVALID_PARAMETER_VALUE", store.log_inputs, run_id, [train])


def test_bulk_load_keeps_the_order_of_ids(store: SqlTrackingStore) -> None:
    experiment_id = store.create_experiment("bulk")
    ids = []
    for i in range(5):
        run_id = store.create_run(experiment_id, "u", i).info.run_id
        store.log_batch(run_id, [Metric("m", float(i), 0, 0)], [Param("i", str(i))])
        ids.append(run_id)
    wanted = [ids[3], ids[0], "f" * 32, ids[4]]
    with store._read() as session:
        runs = store._load_runs(session, wanted)
    assert [r.info.run_id for r in runs] == [ids[3], ids[0], ids[4]]
    assert [r.data.params["i"] for r in runs] == ["3", "0", "4"]
    assert [r.data.metrics["m"] for r in runs] == [3.0, 0.0, 4.0]


def test_search_delegates_to_the_search_module(store: SqlTrackingStore) -> None:
    pytest.importorskip("modelyard.store.tracking.sql_search")
    experiment_id = store.create_experiment("searched")
    ids = [store.create_run(experiment_id, "u", 10 + i).info.run_id for i in range(3)]
    store.log_metric(ids[1], Metric("m", 5.0, 0, 0))
    store.delete_run(ids[2])
    found = store.search_runs([experiment_id], "metrics.m > 1", ViewType.ACTIVE_ONLY, 10)
    assert [r.info.run_id for r in found] == [ids[1]]
    assert found[0].data.metrics == {"m": 5.0}
    everything = store.search_runs([experiment_id], "", ViewType.ALL, 10)
    assert {r.info.run_id for r in everything} == set(ids)
    experiments = store.search_experiments(ViewType.ACTIVE_ONLY, 10, "name = 'searched'")
    assert [e.experiment_id for e in experiments] == [experiment_id]


def _race(n_threads: int, writer: Callable[[int], None]) -> list[BaseException]:
    """Run writer(0..n-1) in threads released together; the exceptions they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def run(w: int) -> None:
        try:
            barrier.wait()
            writer(w)
        except BaseException as exc:  # noqa: BLE001 - returned to the test, which asserts on them
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_a_new_run_and_logged_model_are_answered_as_a_read_of_them_would_be(store: SqlTrackingStore) -> None:
    """create_run and create_logged_model build their answers from what they wrote, without reading it
    back: the answers must be what get_run / get_logged_model return."""
    from modelyard.store.logged_models.sql_store import SqlLoggedModelStore

    experiment_id = store.create_experiment("answers")
    tags = [RunTag("b", "2"), RunTag("a", "1"), RunTag("a", "3"), RunTag("empty", ""), RunTag("mlflow.runName", "nm")]
    run = store.create_run(experiment_id, "someone", 1234, tags)
    assert run == store.get_run(run.info.run_id)
    assert run.data.tags == {"a": "3", "b": "2", "empty": "", "mlflow.runName": "nm"}
    assert store.get_run_info(run.info.run_id) == run.info
    named = store.create_run(experiment_id, None, None, [], run_name="given")
    assert named == store.get_run(named.info.run_id)
    models = SqlLoggedModelStore(store.engine, store.default_artifact_root)
    model = models.create_logged_model(experiment_id, "model", run.info.run_id, {"z": "1", "a": "2"}, {"p": "x"})
    assert model == models.get_logged_model(model.model_id)
    assert (model.tags, model.params, model.metrics) == ({"a": "2", "z": "1"}, {"p": "x"}, [])
    with pytest.raises(ModelyardException) as missing:
        store.get_run_info("0" * 32)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
