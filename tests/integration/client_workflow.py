"""One MLflow-tutorial-shaped workflow, run through modelyard's client against each kind of backend.

The same function runs in-process on SQLite/PostgreSQL (test_client_sql), against modelyard's
tracking service under gunicorn and against a real `mlflow server` (test_client_rest), so the client
is checked against MLflow's own behaviour, not only against ours.
"""

from __future__ import annotations

import uuid

import pytest

import modelyard as mlflow
from modelyard import MlflowClient
from modelyard.client import fluent
from modelyard.entities import Metric, Param, RunStatus, RunTag, ViewType
from modelyard.exceptions import ModelyardException


def reset_fluent_state() -> None:
    """End stray runs and forget the active experiment, so tests do not leak into each other."""
    while mlflow.active_run() is not None:
        mlflow.end_run()
    fluent._active_experiment = None
    mlflow.set_tracking_uri(None)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def run_fluent_workflow(tracking_uri: str) -> None:
    mlflow.set_tracking_uri(tracking_uri)
    assert mlflow.get_tracking_uri() == tracking_uri
    name = unique("workflow")
    experiment = mlflow.set_experiment(name)
    assert experiment.name == name
    assert mlflow.set_experiment(name).experiment_id == experiment.experiment_id
    assert mlflow.get_experiment_by_name(name).experiment_id == experiment.experiment_id

    # A parent run with nested children, as a hyper-parameter sweep logs them.
    alphas = ["0.1", "0.5", "0.5", "0.9", "0.5"]
    with mlflow.start_run(run_name="sweep", tags={"team": "ml"}, description="a sweep") as parent:
        mlflow.log_params({"model": "ridge", "cv": 5})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.set_tags({"stage": "dev", "owner": "me"})
        mlflow.set_tag("temporary", "x")
        mlflow.delete_tag("temporary")
        child_ids = []
        for i, alpha in enumerate(alphas):
            with mlflow.start_run(run_name=f"child-{i}", nested=True) as child:
                mlflow.log_param("alpha", alpha)
                mlflow.log_metrics({"rmse": 10.0 - i, "r2": i / 10})
                child_ids.append(child.info.run_id)
            assert mlflow.active_run().info.run_id == parent.info.run_id
    assert mlflow.active_run() is None

    client = MlflowClient(tracking_uri)
    parent_run = mlflow.get_run(parent.info.run_id)
    assert parent_run.info.status == RunStatus.FINISHED
    assert parent_run.info.end_time is not None
    assert parent_run.info.run_name == "sweep"
    assert parent_run.data.params == {"model": "ridge", "cv": "5"}
    assert parent_run.data.metrics["loss"] == pytest.approx(0.2)
    tags = parent_run.data.tags
    assert tags["team"] == "ml" and tags["stage"] == "dev" and tags["owner"] == "me"
    assert "temporary" not in tags
    assert tags["mlflow.note.content"] == "a sweep"
    assert tags["mlflow.runName"] == "sweep"
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.user"] == parent_run.info.user_id
    assert "mlflow.source.name" in tags
    assert mlflow.last_active_run().info.run_id == parent.info.run_id
    for child_id in child_ids:
        assert client.get_run(child_id).data.tags["mlflow.parentRunId"] == parent.info.run_id

    history = client.get_metric_history(parent.info.run_id, "loss")
    assert [m.step for m in history] == [0, 1, 2, 3, 4]
    assert [m.value for m in history] == pytest.approx([1.0, 0.5, 1 / 3, 0.25, 0.2])

    # A failing block ends its run FAILED and the error propagates.
    with pytest.raises(RuntimeError, match="boom"):
        with mlflow.start_run(run_name="broken") as broken:
            raise RuntimeError("boom")
    assert mlflow.get_run(broken.info.run_id).info.status == RunStatus.FAILED

    # Resuming a run by id makes it RUNNING again, then FINISHED.
    with mlflow.start_run(run_id=broken.info.run_id) as resumed:
        assert mlflow.get_run(resumed.info.run_id).info.status == RunStatus.RUNNING
        mlflow.log_metric("after_resume", 1.0)
    resumed_run = mlflow.get_run(broken.info.run_id)
    assert resumed_run.info.status == RunStatus.FINISHED
    assert resumed_run.data.metrics["after_resume"] == 1.0

    # Search: filter + order, paged two at a time through every page.
    filter_string = "params.alpha = '0.5'"
    expected = [child_ids[4], child_ids[2], child_ids[1]]  # rmse 6, 8, 9
    paged, token, pages = [], None, 0
    while True:
        page = client.search_runs(
            [experiment.experiment_id],
            filter_string,
            max_results=2,
            order_by=["metrics.rmse ASC"],
            page_token=token,
        )
        paged.extend(r.info.run_id for r in page)
        pages += 1
        token = page.token
        if not token:
            break
    assert paged == expected
    assert pages == 2
    frame = mlflow.search_runs(filter_string=filter_string, order_by=["metrics.rmse ASC"])
    assert list(frame["run_id"]) == expected
    for column in ("run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time",
                   "metrics.rmse", "params.alpha", "tags.mlflow.runName"):  # fmt: skip
        assert column in frame.columns
    assert str(frame["start_time"].dtype).startswith("datetime64")
    by_name = mlflow.search_runs(
        experiment_names=[name], output_format="list", filter_string="metrics.r2 >= 0.3"
    )
    assert sorted(r.info.run_id for r in by_name) == sorted(child_ids[3:])

    # Delete and restore a run.
    mlflow.delete_run(child_ids[0])
    assert child_ids[0] not in {r.info.run_id for r in client.search_runs([experiment.experiment_id])}
    deleted = client.search_runs([experiment.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [child_ids[0]]
    client.restore_run(child_ids[0])
    assert client.get_run(child_ids[0]).info.lifecycle_stage == "active"

    # Rename, then delete and restore the experiment.
    new_name = unique("renamed")
    client.rename_experiment(experiment.experiment_id, new_name)
    assert client.get_experiment_by_name(new_name).experiment_id == experiment.experiment_id
    assert client.get_experiment_by_name(name) is None
    client.delete_experiment(experiment.experiment_id)
    assert client.get_experiment(experiment.experiment_id).lifecycle_stage == "deleted"
    with pytest.raises(ModelyardException, match="deleted"):
        mlflow.set_experiment(new_name)
    client.restore_experiment(experiment.experiment_id)
    assert client.get_experiment(experiment.experiment_id).lifecycle_stage == "active"
    listed = {e.experiment_id for e in mlflow.search_experiments(filter_string=f"name = '{new_name}'")}
    assert listed == {experiment.experiment_id}


def run_client_workflow(tracking_uri: str) -> None:
    client = MlflowClient(tracking_uri)
    name = unique("client")
    experiment_id = client.create_experiment(name, tags={"k": "v"})
    assert client.get_experiment(experiment_id).tags == {"k": "v"}
    client.set_experiment_tag(experiment_id, "k2", 2)
    assert client.get_experiment(experiment_id).tags["k2"] == "2"
    with pytest.raises(ModelyardException) as dup:
        client.create_experiment(name)
    assert dup.value.error_code == "RESOURCE_ALREADY_EXISTS"

    run = client.create_run(experiment_id, run_name="batched")
    run_id = run.info.run_id
    assert run.info.status == RunStatus.RUNNING
    assert run.info.run_name == "batched"

    # Beyond one request's limits (1000 metrics, 100 params): the client splits the batch.
    metrics = [Metric("series", float(i), 1_700_000_000_000 + i, i) for i in range(1200)]
    params = [Param(f"p{i:03d}", str(i)) for i in range(150)]
    tags = [RunTag("batch", "yes")]
    client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
    stored = client.get_run(run_id)
    assert len(stored.data.params) == 150
    assert stored.data.metrics["series"] == 1199.0
    assert stored.data.tags["batch"] == "yes"
    history = client.get_metric_history(run_id, "series")
    assert [m.step for m in history] == list(range(1200))

    # The store's history pages, followed by token, add up to the whole series.
    pages, token, collected = 0, None, []
    while True:
        page = client.store.get_metric_history(run_id, "series", max_results=500, page_token=token)
        collected.extend(page)
        pages += 1
        token = page.token
        if not token:
            break
    assert [m.step for m in collected] == list(range(1200))

    client.log_metric(run_id, "nan_metric", float("nan"), step=3)
    assert (
        client.get_metric_history(run_id, "nan_metric")[0].value
        != client.get_metric_history(run_id, "nan_metric")[0].value
    )
    assert client.log_param(run_id, "lr", 0.01) == 0.01
    with pytest.raises(ModelyardException) as conflict:
        client.log_param(run_id, "lr", 0.02)
    assert conflict.value.error_code == "INVALID_PARAMETER_VALUE"
    client.set_tag(run_id, "t", "v")
    client.delete_tag(run_id, "t")
    assert "t" not in client.get_run(run_id).data.tags

    client.update_run(run_id, name="renamed-run")
    assert client.get_run(run_id).info.run_name == "renamed-run"
    client.set_terminated(run_id, "KILLED", end_time=1_800_000_000_000)
    info = client.get_run(run_id).info
    assert (info.status, info.end_time) == ("KILLED", 1_800_000_000_000)

    with pytest.raises(ModelyardException) as missing:
        client.get_run(uuid.uuid4().hex)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(ModelyardException) as missing_experiment:
        client.get_experiment("987654321")
    assert missing_experiment.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_experiment_by_name(unique("absent")) is None

    # Experiment search pages too.
    for i in range(3):
        client.create_experiment(f"{name}-page-{i}")
    seen, token = [], None
    while True:
        page = client.search_experiments(
            max_results=2, filter_string=f"name LIKE '{name}-page-%'", order_by=["name ASC"], page_token=token
        )
        seen.extend(e.name for e in page)
        token = page.token
        if not token:
            break
    assert seen == [f"{name}-page-{i}" for i in range(3)]
