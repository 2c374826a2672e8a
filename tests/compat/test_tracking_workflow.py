"""The real mlflow client (3.17.2) runs the tracking workflow end to end against the server."""

from __future__ import annotations

import time

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

pytestmark = pytest.mark.compat


def _error_code(exc: pytest.ExceptionInfo[MlflowException]) -> str:
    return str(exc.value.error_code)


def test_default_experiment_exists(client: MlflowClient) -> None:
    default = client.get_experiment("0")
    assert default.name == "Default"
    assert client.get_experiment_by_name("Default").experiment_id == "0"


def test_fluent_run_with_nested_child_logs_everything(client: MlflowClient, experiment_name: str) -> None:
    experiment = mlflow.set_experiment(experiment_name)
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("alpha", 0.5)
        mlflow.log_params({"layers": 3, "activation": "relu"})
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"accuracy": 0.9, "f1": 0.8}, step=2)
        mlflow.set_tag("team", "yard")
        mlflow.set_tags({"stage": "dev"})
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("child_metric", 7.0)
    assert mlflow.active_run() is None

    run = client.get_run(parent.info.run_id)
    assert run.info.experiment_id == experiment.experiment_id
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "parent"
    assert run.info.end_time is not None and run.info.end_time >= run.info.start_time
    assert run.data.params == {"alpha": "0.5", "layers": "3", "activation": "relu"}
    # The run's metric value is the latest step's.
    assert run.data.metrics == {"loss": pytest.approx(1.0 / 3), "accuracy": 0.9, "f1": 0.8}
    assert run.data.tags["team"] == "yard"
    assert run.data.tags["stage"] == "dev"
    assert run.data.tags["mlflow.runName"] == "parent"

    nested = client.get_run(child.info.run_id)
    assert nested.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert nested.data.metrics == {"child_metric": 7.0}
    assert nested.info.status == "FINISHED"


def test_log_batch_then_metric_history(client: MlflowClient, experiment_name: str) -> None:
    experiment_id = client.create_experiment(experiment_name)
    run_id = client.create_run(experiment_id).info.run_id
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric("rmse", 10.0 - step, now + step, step) for step in range(5)],
        params=[Param("optimizer", "adam"), Param("lr", "0.01")],
        tags=[RunTag("source", "batch")],
    )
    client.log_metric(run_id, "rmse", 4.5, timestamp=now + 10, step=5)

    history = client.get_metric_history(run_id, "rmse")
    assert sorted((m.step, m.value) for m in history) == [(s, 10.0 - s) for s in range(5)] + [(5, 4.5)]
    assert {m.key for m in history} == {"rmse"}

    run = client.get_run(run_id)
    assert run.data.params == {"optimizer": "adam", "lr": "0.01"}
    assert run.data.tags["source"] == "batch"
    assert run.data.metrics["rmse"] == 4.5
    assert client.get_metric_history(run_id, "never-logged") == []


def test_search_runs_filters_orders_and_pages(client: MlflowClient, experiment_name: str) -> None:
    experiment_id = client.create_experiment(experiment_name)
    run_ids: dict[int, str] = {}
    for i in range(7):
        run = client.create_run(
            experiment_id, run_name=f"run-{i}", tags={"parity": "even" if i % 2 == 0 else "odd"}
        )
        client.log_metric(run.info.run_id, "score", float(i))
        client.log_param(run.info.run_id, "index", str(i))
        if i == 3:
            client.set_terminated(run.info.run_id, status="FAILED")
        else:
            client.set_terminated(run.info.run_id)
        run_ids[i] = run.info.run_id

    found = client.search_runs(
        [experiment_id],
        filter_string="metrics.score > 2 and tags.parity = 'even'",
        order_by=["metrics.score DESC"],
    )
    assert [r.info.run_id for r in found] == [run_ids[6], run_ids[4]]

    failed = client.search_runs([experiment_id], filter_string="attributes.status = 'FAILED'")
    assert [r.info.run_id for r in failed] == [run_ids[3]]

    by_name = client.search_runs([experiment_id], filter_string="tags.\"mlflow.runName\" LIKE 'run-1%'")
    assert [r.info.run_id for r in by_name] == [run_ids[1]]

    by_id = client.search_runs(
        [experiment_id],
        filter_string=f"attributes.run_id IN ('{run_ids[0]}', '{run_ids[5]}')",
        order_by=["params.index"],
    )
    assert [r.info.run_id for r in by_id] == [run_ids[0], run_ids[5]]

    not_even = client.search_runs(
        [experiment_id], filter_string="tags.parity != 'even'", order_by=["metrics.score"]
    )
    assert [r.info.run_id for r in not_even] == [run_ids[1], run_ids[3], run_ids[5]]

    pages: list[list[str]] = []
    token: str | None = None
    while True:
        page = client.search_runs(
            [experiment_id], max_results=3, order_by=["metrics.score ASC"], page_token=token
        )
        pages.append([r.info.run_id for r in page])
        token = page.token
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [run_id for p in pages for run_id in p] == [run_ids[i] for i in range(7)]

    frame = mlflow.search_runs(experiment_ids=[experiment_id], filter_string="metrics.score >= 5")
    assert sorted(frame["run_id"]) == sorted([run_ids[5], run_ids[6]])
    assert set(frame["metrics.score"]) == {5.0, 6.0}


def test_delete_and_restore_run(client: MlflowClient, experiment_name: str) -> None:
    experiment_id = client.create_experiment(experiment_name)
    run_id = client.create_run(experiment_id).info.run_id

    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert client.search_runs([experiment_id]) == []
    deleted = client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [run_id]

    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [run_id]


def test_rename_delete_and_restore_experiment(client: MlflowClient, experiment_name: str) -> None:
    experiment_id = client.create_experiment(experiment_name, tags={"owner": "compat"})
    renamed = f"{experiment_name}-renamed"
    client.rename_experiment(experiment_id, renamed)
    assert client.get_experiment(experiment_id).name == renamed
    assert client.get_experiment_by_name(renamed).experiment_id == experiment_id
    assert client.get_experiment_by_name(experiment_name) is None
    assert client.get_experiment(experiment_id).tags["owner"] == "compat"

    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    active = client.search_experiments(filter_string=f"name = '{renamed}'")
    assert active == []
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY, filter_string=f"name = '{renamed}'")
    assert [e.experiment_id for e in deleted] == [experiment_id]

    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


def test_unknown_run_is_resource_does_not_exist(client: MlflowClient) -> None:
    with pytest.raises(MlflowException) as exc:
        client.get_run("0" * 32)
    assert _error_code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_unknown_experiment_is_resource_does_not_exist(client: MlflowClient) -> None:
    with pytest.raises(MlflowException) as exc:
        client.get_experiment("987654321")
    assert _error_code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_changing_a_logged_param_is_invalid_parameter_value(
    client: MlflowClient, experiment_name: str
) -> None:
    run_id = client.create_run(client.create_experiment(experiment_name)).info.run_id
    client.log_param(run_id, "seed", "1")
    client.log_param(run_id, "seed", "1")  # the same value again is fine
    with pytest.raises(MlflowException) as exc:
        client.log_param(run_id, "seed", "2")
    assert _error_code(exc) == "INVALID_PARAMETER_VALUE"
    assert client.get_run(run_id).data.params == {"seed": "1"}


def test_duplicate_experiment_name_is_resource_already_exists(
    client: MlflowClient, experiment_name: str
) -> None:
    client.create_experiment(experiment_name)
    with pytest.raises(MlflowException) as exc:
        client.create_experiment(experiment_name)
    assert _error_code(exc) == "RESOURCE_ALREADY_EXISTS"


def test_bad_filter_is_invalid_parameter_value(client: MlflowClient, experiment_name: str) -> None:
    experiment_id = client.create_experiment(experiment_name)
    with pytest.raises(MlflowException) as exc:
        client.search_runs([experiment_id], filter_string="metrics.x >>> 1")
    assert _error_code(exc) == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    "env",
    [{}, {"MLFLOW_TRACKING_USERNAME": "alice"}, {"MODELYARD_TRACKING_USERNAME": "bob", "MLFLOW_TRACKING_USERNAME": "bob"}],
)
def test_a_new_run_belongs_to_the_user_mlflow_records(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """mlflow 3.17 records the tracking username as `mlflow.user` (the run's user) when one is set, else
    the machine's user: runs logged by both clients with the same credentials show the same user."""
    from mlflow.tracking.context.default_context import DefaultRunContext

    from modelyard.client import run_context

    for name in ("MLFLOW_TRACKING_USERNAME", "MODELYARD_TRACKING_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    theirs = DefaultRunContext().tags()["mlflow.user"]
    assert run_context.system_tags()["mlflow.user"] == theirs
    assert theirs == (env.get("MLFLOW_TRACKING_USERNAME") or run_context.current_user())
