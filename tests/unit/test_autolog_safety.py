"""Autologging's promises that need no server: a tracking failure never fails the user's fit, and
nested fits (a Pipeline's steps, preprocessing alone) never start runs of their own."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import modelyard
from modelyard.autologging import config


@pytest.fixture
def dead_server():  # type: ignore[no-untyped-def]
    modelyard.set_tracking_uri("http://127.0.0.1:9")  # nothing listens on the discard port
    try:
        yield
    finally:
        modelyard.sklearn.autolog(disable=True)
        modelyard.set_tracking_uri(None)


def test_fit_returns_with_a_warning_when_the_server_is_down(dead_server: None) -> None:
    modelyard.sklearn.autolog()
    X = np.arange(20.0).reshape(10, 2)
    with pytest.warns(UserWarning, match="sklearn autologging"):
        fitted = LinearRegression().fit(X, X[:, 0])
    assert fitted.coef_ is not None
    assert modelyard.active_run() is None


def test_silent_turns_the_warning_into_a_debug_log(
    dead_server: None, recwarn: pytest.WarningsRecorder
) -> None:
    modelyard.sklearn.autolog(silent=True)
    X = np.arange(20.0).reshape(10, 2)
    LinearRegression().fit(X, X[:, 0])
    assert not [w for w in recwarn if "autologging" in str(w.message)]


def test_user_errors_in_fit_are_raised_unchanged(dead_server: None) -> None:
    modelyard.sklearn.autolog(silent=True)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        LinearRegression().fit(np.zeros((3, 2)), np.zeros(4))


def test_disabled_autolog_and_preprocessing_steps_log_nothing(
    dead_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(
        "modelyard.sklearn.autologging.log_fit", lambda estimator, *a: calls.append(type(estimator).__name__)
    )
    monkeypatch.setattr(
        "modelyard.client.fluent.start_run", lambda **kw: (_ for _ in ()).throw(RuntimeError("no"))
    )
    modelyard.sklearn.autolog(silent=True)
    X = np.arange(20.0).reshape(10, 2)
    StandardScaler().fit(X)  # preprocessing alone: not patched, as in MLflow
    assert calls == [] and not config.SESSION.active
    modelyard.sklearn.autolog(disable=True)
    LinearRegression().fit(X, X[:, 0])
    assert calls == []


def test_a_pipeline_logs_once_not_per_step(monkeypatch: pytest.MonkeyPatch) -> None:
    from contextlib import contextmanager

    logged: list[str] = []

    @contextmanager
    def fake_run(integration, cfg):  # type: ignore[no-untyped-def]
        yield "run-id"

    monkeypatch.setattr("modelyard.sklearn.autologging.autolog_run", fake_run)
    monkeypatch.setattr(
        "modelyard.sklearn.autologging.log_fit", lambda estimator, *a: logged.append(type(estimator).__name__)
    )
    modelyard.sklearn.autolog()
    try:
        X = np.arange(20.0).reshape(10, 2)
        Pipeline([("s", StandardScaler()), ("m", LinearRegression())]).fit(X, X[:, 0])
    finally:
        modelyard.sklearn.autolog(disable=True)
    assert logged == ["Pipeline"]


def test_universal_autolog_configures_every_installed_integration(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in a fresh process: no integration's own autolog() called yet (earlier tests call sklearn's).
    monkeypatch.setattr(config, "_configs", {})
    monkeypatch.setattr(config, "_universal", set())
    modelyard.autolog(log_models=False, exclusive=True)
    try:
        for integration in ("sklearn", "xgboost"):
            options = config.active_config(integration)
            assert options is not None and options.log_models is False and options.exclusive is True
    finally:
        modelyard.autolog(disable=True)
    assert config.active_config("sklearn") is None and config.active_config("xgboost") is None


def test_universal_autolog_leaves_an_integration_configured_by_its_own_autolog(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As MLflow's: once `sklearn.autolog(...)` was called (disable=True included), `autolog()`
    neither changes nor disables sklearn; the integrations it configured itself it may set again."""
    monkeypatch.setattr(config, "_configs", {})
    monkeypatch.setattr(config, "_universal", set())
    modelyard.sklearn.autolog(disable=True)
    modelyard.autolog(log_models=False)
    assert config.active_config("sklearn") is None
    assert config.active_config("xgboost") is not None and config.active_config("xgboost").log_models is False
    modelyard.sklearn.autolog(log_datasets=False)
    modelyard.autolog(disable=True)
    assert config.active_config("xgboost") is None
    assert config.active_config("sklearn") is not None and config.active_config("sklearn").log_datasets is False
    modelyard.sklearn.autolog(disable=True)


def test_autolog_patches_what_sklearn_lists_without_importing_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """sklearn's own `all_estimators()` imports torch where it is installed (its package walk enters
    `sklearn.externals`); autolog finds the same classes without it: checked in a fresh interpreter, as
    a user who never imported torch calls it, and compared with sklearn's list here (torch blocked, so
    that its walk skips the shim instead of importing torch)."""
    import subprocess
    import sys

    from sklearn.utils import all_estimators

    from modelyard.sklearn.autologging import public_estimators

    script = (
        "import sys\n"
        "from modelyard.sklearn.autologging import public_estimators\n"
        "print(len(public_estimators()), 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    count, torch_imported = done.stdout.split()
    assert torch_imported == "False" and int(count) > 150
    if "torch" not in sys.modules:
        monkeypatch.setitem(sys.modules, "torch", None)
    assert set(public_estimators()) == {cls for _, cls in all_estimators()}
