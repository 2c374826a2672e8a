"""A search's child runs: in one bulk import where the server has it, run by run where it does not
(MLflow's server), the same runs either way. Embedded SQLite store: pure client logic."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

import modelyard
from modelyard.entities import ViewType


def _children(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bulk: bool) -> list[dict[str, Any]]:
    """The child runs of one GridSearchCV of 3 candidates, logged into experiment bulk/each of one database."""
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import GridSearchCV
    from sklearn.tree import DecisionTreeRegressor

    import modelyard.client.run_import as run_import

    sent: list[int] = []
    original = run_import.import_runs

    def import_runs(store: Any, experiment_id: str, runs: list[dict[str, Any]]) -> list[str] | None:
        sent.append(len(runs))
        return original(store, experiment_id, runs) if bulk else None  # None: a server without it

    monkeypatch.setattr(run_import, "import_runs", import_runs)
    monkeypatch.chdir(tmp_path)  # the embedded store's artifacts go to ./modelyard-artifacts: not the checkout
    modelyard.set_tracking_uri(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        modelyard.set_experiment(experiment := "bulk" if bulk else "each")
        modelyard.sklearn.autolog(log_models=False)
        X, y = load_diabetes(return_X_y=True, as_frame=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            GridSearchCV(DecisionTreeRegressor(random_state=0), {"max_depth": [1, 2, 3]}, cv=2).fit(X, y)
        client = modelyard.client.Client()
        runs = client.search_runs(
            [modelyard.get_experiment_by_name(experiment).experiment_id], run_view_type=ViewType.ALL
        )
        inputs = {
            r.info.run_id: [d["dataset"]["name"] for d in client.get_run(r.info.run_id).inputs.dataset_inputs]
            for r in runs
        }
    finally:
        modelyard.sklearn.autolog(disable=True)
        modelyard.set_tracking_uri(None)
    assert sent == [3]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    return sorted(
        (
            {
                "status": r.info.status,
                "params": r.data.params,
                "metrics": sorted(r.data.metrics),
                "parent": r.data.tags["mlflow.parentRunId"] == parent.info.run_id,
                "name": r.info.run_name == r.data.tags["mlflow.runName"] and bool(r.info.run_name),
                "tags": sorted(k for k in r.data.tags if k not in ("mlflow.runName",)),
                "inputs": inputs[r.info.run_id],
            }
            for r in children
        ),
        key=lambda c: c["params"]["max_depth"],
    )


def test_children_in_one_bulk_import_match_children_written_run_by_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bulk = _children(monkeypatch, tmp_path, bulk=True)
    one_by_one = _children(monkeypatch, tmp_path, bulk=False)
    assert bulk == one_by_one
    assert [c["params"]["max_depth"] for c in bulk] == ["1", "2", "3"]
    assert all(c["status"] == "FINISHED" and c["parent"] and c["name"] and c["inputs"] for c in bulk)
    assert "mean_test_score" in bulk[0]["metrics"] and "estimator_name" in bulk[0]["tags"]
