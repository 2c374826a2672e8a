"""Autolog options and RandomizedSearchCV, side by side with the real mlflow 3.17 on the same data.

`_scenario(client, experiment)` uses only the module it is given (`mlflow`, or `modelyard` as `mlflow`):
the universal `autolog(...)` passing `log_input_examples=True, log_model_signatures=False,
log_datasets=False, exclusive=True` on; sklearn autolog with `log_input_examples=True,
log_model_signatures=False`, with `log_datasets=False`, with `exclusive=True` (a fit in a run the user
started, then one outside any run); a RandomizedSearchCV (`n_iter=5, max_tuning_runs=3`); and the
universal autolog leaving sklearn alone once sklearn's own autolog() was called. Both clients log to
one modelyard server (the compat session's, SQLite only) and the runs must agree as in
test_autolog_mlflow (its helpers compare them), and so must each logged model's folder: MLmodel with or
without `signature`, `input_example.json` or not, and the example's content (full float precision).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import mlflow
import pytest
import yaml
from mlflow import MlflowClient
from tests.compat.conftest import CompatServer
from tests.compat.test_autolog_mlflow import _compare, _structure
from tests.support.mlflow_client import run_with_both_clients

import modelyard

pytestmark = [pytest.mark.compat, pytest.mark.slow]
#: The tests that read the scenario's runs: SQLite only (what each client logs is the point here).
on_sqlite_server = pytest.mark.parametrize("compat_server", ["sqlite"], indirect=True)


def _scenario(client: ModuleType, experiment: str) -> None:
    """Each numbered step is one top-level run, in this order (see `test_runs_match_mlflows`)."""
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.model_selection import RandomizedSearchCV
    from sklearn.tree import DecisionTreeClassifier

    client.set_experiment(experiment)
    Xr, yr = load_diabetes(return_X_y=True, as_frame=True)
    Xr, yr = Xr.iloc[:60, :4], yr.iloc[:60]
    Xc, yc = load_iris(return_X_y=True)

    # 0-1. the universal autolog passes the options on: exclusive (the user's run keeps only the user's
    #      param), then outside any run an example (the frame's first rows), no signature, no dataset
    client.autolog(log_input_examples=True, log_model_signatures=False, log_datasets=False, exclusive=True)
    with client.start_run():
        client.log_param("user_param", "universal")
        LogisticRegression(max_iter=300).fit(Xc, yc)
    LinearRegression().fit(Xr, yr)
    client.autolog(disable=True)
    # 2. sklearn's own autolog: the example but no signature, the dataset input
    client.sklearn.autolog(log_input_examples=True, log_model_signatures=False)
    LinearRegression(fit_intercept=False).fit(Xr, yr)
    # 3. numpy data: its example and the signature (the default), no dataset input
    client.sklearn.autolog(log_input_examples=True, log_datasets=False)
    LogisticRegression(max_iter=300).fit(Xc, yc)
    # 4. exclusive: the user's run keeps only what the user logged; 5. a fit outside any run still logs
    client.sklearn.autolog(exclusive=True, log_models=False)
    with client.start_run():
        client.log_param("user_param", "mine")
        client.log_metric("user_metric", 0.5)
        LinearRegression().fit(Xr, yr)
    LinearRegression().fit(Xr, yr)
    # 6. a randomized search: 3 children of 5 candidates, best_* on the parent, cv_results.csv
    client.sklearn.autolog(max_tuning_runs=3)
    space = {"max_depth": [1, 2, 3, 4], "min_samples_leaf": [1, 3, 5]}
    search = RandomizedSearchCV(DecisionTreeClassifier(random_state=0), space, n_iter=5, cv=3, random_state=0)
    search.fit(Xc, yc)
    # (no run) sklearn's own autolog was called: the universal autolog leaves it as it is, disabled
    client.sklearn.autolog(disable=True)
    client.autolog(log_models=False)
    LinearRegression().fit(Xr, yr)
    client.autolog(disable=True)


def _forget_autolog_calls() -> None:
    """Both clients as in a fresh process, where no integration's own autolog() was called yet (the
    universal autolog would otherwise leave sklearn as an earlier test configured it)."""
    from mlflow.utils.autologging_utils import AUTOLOGGING_INTEGRATIONS

    from modelyard.autologging import config

    for integration in ("sklearn", "xgboost"):
        mlflow_config = AUTOLOGGING_INTEGRATIONS.pop(integration, None)
        assert mlflow_config is None or mlflow_config.get("disable", True), "an earlier test left it on"
        ours = config._configs.pop(integration, None)
        assert ours is None or ours.disable, "an earlier test left it on"
        config._universal.discard(integration)


@pytest.fixture(scope="module")
def seeded(compat_server: CompatServer) -> dict[str, str]:
    """The scenario's experiment ids: {"mlflow": ..., "modelyard": ...}."""
    _forget_autolog_calls()
    return run_with_both_clients(_scenario, compat_server.url, "autolog-options")


def _top_runs(client: MlflowClient, experiment_id: str) -> list[Any]:
    runs = client.search_runs([experiment_id], order_by=["attributes.start_time ASC"], max_results=100)
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


@on_sqlite_server
def test_runs_match_mlflows(seeded: dict[str, str], tracking_uri: str) -> None:
    client = MlflowClient(tracking_uri)
    theirs, ours = _structure(client, seeded["mlflow"]), _structure(client, seeded["modelyard"])
    # What mlflow 3.17 does, so that the comparison below cannot pass on two empty experiments.
    assert [len(t["children"]) for t in theirs] == [0, 0, 0, 0, 0, 0, 3]
    user_universal, _, _, _, user_exclusive, outside_exclusive, search = theirs
    assert (user_universal["params"], user_universal["metrics"]) == ({"user_param": "universal"}, {})
    assert (user_exclusive["params"], user_exclusive["metrics"]) == ({"user_param": "mine"}, {"user_metric": 0.5})
    assert user_universal["models"] == user_exclusive["models"] == [] and not user_exclusive["tags"]
    assert outside_exclusive["tags"]["mlflow.autologging"] == "sklearn" and outside_exclusive["models"] == []
    assert [bool(t["inputs"]) for t in theirs] == [False, False, True, False, False, True, True]
    assert {"best_max_depth", "best_min_samples_leaf", "n_iter"} <= set(search["params"])
    assert "best_cv_score" in search["metrics"] and "cv_results.csv" in search["artifacts"]
    assert search["models"] == ["best_estimator", "model"]
    assert all("rank_test_score" in c["metrics"] for c in search["children"])

    assert [len(t["children"]) for t in ours] == [len(t["children"]) for t in theirs]
    for index, (a, b) in enumerate(zip(theirs, ours, strict=True)):
        _compare(a, b, f"run {index}")
        for child, (c, d) in enumerate(zip(a["children"], b["children"], strict=True)):
            _compare(c, d, f"run {index} child {child}")


def _model_folders(client: MlflowClient, experiment_id: str, folder: Path) -> list[dict[str, Path]]:
    """Each top-level run's logged models, downloaded: [{model name: folder}, ...] in run order."""
    out = []
    for index, run in enumerate(_top_runs(client, experiment_id)):
        models = {}
        for output in run.outputs.model_outputs:
            model = client.get_logged_model(output.model_id)
            target = folder / f"{index}-{model.name}"
            target.mkdir(parents=True)
            models[model.name] = Path(mlflow.artifacts.download_artifacts(model.artifact_location, dst_path=str(target)))
        out.append(models)
    return out


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


@on_sqlite_server
def test_models_have_the_same_signature_and_input_example(
    seeded: dict[str, str], tracking_uri: str, tmp_path: Path
) -> None:
    client = MlflowClient(tracking_uri)
    theirs = _model_folders(client, seeded["mlflow"], tmp_path / "mlflow")
    ours = _model_folders(client, seeded["modelyard"], tmp_path / "modelyard")
    assert [sorted(m) for m in ours] == [sorted(m) for m in theirs]
    seen = []
    for index, (their_models, our_models) in enumerate(zip(theirs, ours, strict=True)):
        for name, their_dir in their_models.items():
            where, our_dir = f"run {index} {name}", our_models[name]
            their_mlmodel = yaml.safe_load((their_dir / "MLmodel").read_text())
            our_mlmodel = yaml.safe_load((our_dir / "MLmodel").read_text())
            for key in ("signature", "saved_input_example_info"):
                assert our_mlmodel.get(key) == their_mlmodel.get(key), f"{where} {key}"
            for file in ("input_example.json", "serving_input_example.json"):
                assert _read_json(our_dir / file) == _read_json(their_dir / file), f"{where} {file}"
            seen.append(("signature" in their_mlmodel, (their_dir / "input_example.json").exists()))
    # mlflow's own: runs 1 and 2 an example without signature, 3 both, the search's two models neither
    assert seen == [(False, True), (False, True), (True, True), (True, False), (True, False)]


def test_save_model_with_signature_false_keeps_the_example_without_a_signature(tmp_path: Path) -> None:
    """MLflow's way to save a model with an input example but no (inferred) signature, which
    autologging uses for `log_model_signatures=False`."""
    import numpy as np
    from sklearn.linear_model import LinearRegression

    X = np.arange(20.0).reshape(10, 2) / 3
    model = LinearRegression().fit(X, X[:, 0])
    saved = {}
    for name, client in (("mlflow", mlflow), ("modelyard", modelyard)):
        for signature in (None, False):
            path = tmp_path / f"{name}-{signature}"
            client.sklearn.save_model(
                model, str(path), input_example=X[:3], signature=signature, pip_requirements=["scikit-learn"]
            )  # requirements given: mlflow would infer them in a subprocess (seconds)
            mlmodel = yaml.safe_load((path / "MLmodel").read_text())
            saved[name, signature] = (mlmodel.get("signature"), _read_json(path / "input_example.json"))
    assert saved["mlflow", False] == (None, X[:3].tolist())
    assert saved["mlflow", None][0] is not None
    for signature in (None, False):
        assert saved["modelyard", signature] == saved["mlflow", signature]
