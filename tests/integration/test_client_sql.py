"""The client in-process on the SQL store (no server): SQLite and the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.client_workflow import reset_fluent_state, run_client_workflow, run_fluent_workflow

import modelyard as mlflow
from modelyard.client import tracking_uri


@pytest.fixture
def sql_uri(db_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    if db_uri.startswith("postgresql"):
        # PostgreSQL is never migrated implicitly (many clients would race); that is `modelyard db upgrade`.
        from modelyard.store.sql.migrate import upgrade

        upgrade(db_uri)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MODELYARD_TRACKING_URI", raising=False)
    reset_fluent_state()
    yield db_uri
    reset_fluent_state()
    tracking_uri.clear_store_cache()


def test_fluent_workflow_in_process(sql_uri: str) -> None:
    run_fluent_workflow(sql_uri)


def test_client_workflow_in_process(sql_uri: str) -> None:
    run_client_workflow(sql_uri)


def test_artifacts_of_in_process_runs_default_to_the_working_directory(sql_uri: str, tmp_path: Path) -> None:
    mlflow.set_tracking_uri(sql_uri)
    with mlflow.start_run() as run:
        pass
    assert run.info.artifact_uri.startswith(str(tmp_path / "modelyard-artifacts"))


def test_embedded_default_is_a_sqlite_file_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MODELYARD_TRACKING_URI", raising=False)
    reset_fluent_state()
    try:
        with mlflow.start_run() as run:
            mlflow.log_metric("m", 1.0)
        assert mlflow.get_tracking_uri() == "sqlite:///modelyard.db"
        assert (tmp_path / "modelyard.db").is_file()
        assert mlflow.get_run(run.info.run_id).data.metrics == {"m": 1.0}
        assert run.info.experiment_id == "0"
    finally:
        reset_fluent_state()
        tracking_uri.clear_store_cache()


def test_runs_started_in_threads_do_not_nest(sql_uri: str) -> None:
    import threading

    mlflow.set_tracking_uri(sql_uri)
    results: dict[str, str] = {}

    def work(name: str) -> None:
        with mlflow.start_run(run_name=name) as run:
            mlflow.log_param("thread", name)
            results[name] = run.info.run_id

    with mlflow.start_run(run_name="main") as main_run:
        threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert mlflow.active_run().info.run_id == main_run.info.run_id
    for name, run_id in results.items():
        run = mlflow.get_run(run_id)
        assert run.data.params == {"thread": name}
        assert "mlflow.parentRunId" not in run.data.tags


def test_asynchronous_logging_is_written_after_wait(sql_uri: str) -> None:
    mlflow.set_tracking_uri(sql_uri)
    with mlflow.start_run() as run:
        operations = [mlflow.log_metric("async", float(i), step=i, synchronous=False) for i in range(20)]
        for op in operations:
            op.wait()
    history = mlflow.MlflowClient(sql_uri).get_metric_history(run.info.run_id, "async")
    assert [m.step for m in history] == list(range(20))


def test_starting_a_second_run_without_nested_is_refused(sql_uri: str) -> None:
    mlflow.set_tracking_uri(sql_uri)
    with mlflow.start_run():
        with pytest.raises(mlflow.MlflowException, match="already active"):
            mlflow.start_run()


def test_logging_without_an_active_run_starts_one(sql_uri: str) -> None:
    mlflow.set_tracking_uri(sql_uri)
    mlflow.log_param("implicit", 1)
    run = mlflow.active_run()
    assert run is not None
    mlflow.end_run()
    assert mlflow.get_run(run.info.run_id).data.params == {"implicit": "1"}
    assert mlflow.get_run(run.info.run_id).info.status == "FINISHED"


def test_asynchronous_failure_is_raised_by_wait(sql_uri: str) -> None:
    client = mlflow.MlflowClient(sql_uri)
    run_id = client.create_run("0").info.run_id
    client.log_param(run_id, "p", "1")
    operations = client.log_param(run_id, "p", "2", synchronous=False)
    with pytest.raises(mlflow.MlflowException) as err:
        operations.wait()
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_switching_tracking_uri_drops_the_active_experiment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import modelyard
    from modelyard.client import fluent

    first, second = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    try:
        modelyard.set_tracking_uri(first)
        experiment = modelyard.set_experiment("only-on-a")
        assert fluent.current_experiment_id() == experiment.experiment_id
        modelyard.set_tracking_uri(second)
        # Experiment ids belong to their server: b has no "only-on-a", so runs go to its Default.
        assert fluent.current_experiment_id() == "0"
        with modelyard.start_run() as run:
            assert run.info.experiment_id == "0"
        modelyard.set_tracking_uri(first)
        assert fluent.current_experiment_id() == experiment.experiment_id
    finally:
        modelyard.set_tracking_uri(None)
        fluent._active_experiment = None
