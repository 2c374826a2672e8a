"""The pytorch flavor across modelyard and mlflow 3.17: on disk, through a tracking server and served.

torch is not in the `dev` extra (a CPU build is ~0.9 GB installed): the session fixture `torch`
(tests/conftest.py) installs the pinned CPU wheel into the test venv the first time these tests run,
so they never skip. The tests at the end need no torch: the clear error without it, the loader mapping,
the extra.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import modelyard
import modelyard.pyfunc
import modelyard.pytorch
from modelyard.exceptions import ModelyardException

pytestmark = [pytest.mark.compat, pytest.mark.usefixtures("allow_mlflow_unpickling")]


@pytest.fixture
def net(torch):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).eval()


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)


def _expected(torch, net, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def test_modelyard_saved_module_loads_in_mlflow(tmp_path: Path, torch, net, x) -> None:  # type: ignore[no-untyped-def]
    import mlflow.pyfunc
    import mlflow.pytorch

    modelyard.pytorch.save_model(net, tmp_path / "m", input_example=x[:2])
    mlmodel = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlflow.pytorch"
    assert mlmodel["flavors"]["pytorch"]["model_data"] == "data"
    expected = _expected(torch, net, x)
    assert np.allclose(mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(x), expected)
    with torch.no_grad():
        assert np.allclose(
            mlflow.pytorch.load_model(str(tmp_path / "m"))(torch.from_numpy(x)).numpy(), expected
        )
    assert np.allclose(modelyard.pyfunc.load_model(str(tmp_path / "m")).predict(x), expected)
    frame = pd.DataFrame(x, columns=["a", "b", "c"], index=range(10, 15))
    assert np.allclose(
        np.asarray(modelyard.pytorch._load_pyfunc(str(tmp_path / "m" / "data")).predict(frame)), expected
    )


@pytest.mark.parametrize("serialization_format", ["pickle", "pt2"])
def test_mlflow_saved_module_loads_in_modelyard(tmp_path: Path, torch, net, x, serialization_format) -> None:  # type: ignore[no-untyped-def]
    import mlflow.pytorch

    mlflow.pytorch.save_model(
        net,
        tmp_path / "m",
        input_example=x[:2],
        serialization_format=serialization_format,
        pip_requirements=["torch"],
    )
    expected = _expected(torch, net, x)
    assert np.allclose(modelyard.pyfunc.load_model(str(tmp_path / "m")).predict(x), expected)
    with torch.no_grad():
        assert np.allclose(
            modelyard.pytorch.load_model(str(tmp_path / "m"))(torch.from_numpy(x)).numpy(), expected
        )


def test_pt2_saved_by_modelyard_loads_in_mlflow(tmp_path: Path, torch, net, x) -> None:  # type: ignore[no-untyped-def]
    import mlflow.pyfunc

    modelyard.pytorch.save_model(net, tmp_path / "m", input_example=x[:2], serialization_format="pt2")
    assert (tmp_path / "m" / "data" / "model.pt2").is_file()
    assert np.allclose(mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(x), _expected(torch, net, x))
    with pytest.raises(ModelyardException, match="input_example"):
        modelyard.pytorch.save_model(net, tmp_path / "no-example", serialization_format="pt2")


# One backend is enough: the flavor never reaches the database, and each backend is a server start.
@pytest.mark.parametrize("compat_server", ["sqlite"], indirect=True)
def test_logged_through_a_server_both_ways_and_served_by_both(  # type: ignore[no-untyped-def]
    torch, net, x, tracking_uri: str, experiment_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each client logs the module; the other loads it (as a module and as pyfunc), and each scoring
    app serves the other's registered version with the same predictions as the module computes."""
    import mlflow
    import mlflow.pytorch

    modelyard.set_experiment(experiment_name)
    ours_name, theirs_name = f"torch-ours-{uuid.uuid4().hex[:8]}", f"torch-theirs-{uuid.uuid4().hex[:8]}"
    with modelyard.start_run():
        ours = modelyard.pytorch.log_model(
            net, name="model", input_example=x[:2], registered_model_name=ours_name
        )
    mlflow.set_experiment(experiment_name)
    with mlflow.start_run():
        theirs = mlflow.pytorch.log_model(
            net,
            name="model",
            input_example=x[:2],
            pip_requirements=["torch"],
            registered_model_name=theirs_name,
        )
    expected = _expected(torch, net, x)
    assert np.allclose(mlflow.pyfunc.load_model(f"models:/{ours_name}/1").predict(x), expected)
    assert np.allclose(mlflow.pyfunc.load_model(ours.model_uri).predict(x), expected)
    with torch.no_grad():
        assert np.allclose(mlflow.pytorch.load_model(ours.model_uri)(torch.from_numpy(x)).numpy(), expected)
        assert np.allclose(
            modelyard.pytorch.load_model(theirs.model_uri)(torch.from_numpy(x)).numpy(), expected
        )
    assert np.allclose(modelyard.pyfunc.load_model(theirs.model_uri).predict(x), expected)
    assert np.allclose(modelyard.pyfunc.load_model(f"models:/{theirs_name}/1").predict(x), expected)

    # Served: the signature from the float32 example is a tensor spec, so both take {"inputs": rows}.
    body = {"inputs": x.tolist()}
    ours_served = _served_by_mlflow(f"models:/{ours_name}/1", body, monkeypatch)
    theirs_served = _served_by_modelyard(f"models:/{theirs_name}/1", body)
    assert np.allclose(np.asarray(ours_served["predictions"]), expected, atol=1e-6)
    assert np.allclose(np.asarray(theirs_served["predictions"]), expected, atol=1e-6)
    assert ours_served == _served_by_modelyard(f"models:/{ours_name}/1", body)


def test_a_dataframe_model_serves_the_same_in_both_scoring_apps(  # type: ignore[no-untyped-def]
    tmp_path: Path, torch, net, x, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A column-signature model (DataFrame example) saved by each library: each scoring app answers a
    `dataframe_split` body of the other's model with the module's outputs, and both agree."""
    import mlflow.pytorch

    frame = pd.DataFrame(x, columns=["a", "b", "c"]).astype("float32")
    modelyard.pytorch.save_model(net, tmp_path / "ours", input_example=frame.head(2))
    mlflow.pytorch.save_model(
        net,
        tmp_path / "theirs",
        input_example=frame.head(2),
        serialization_format="pickle",
        pip_requirements=["torch"],
    )
    body = {"dataframe_split": frame.to_dict(orient="split")}
    expected = _expected(torch, net, x)
    answers = [
        _served_by_mlflow(str(tmp_path / "ours"), body, monkeypatch),
        _served_by_modelyard(str(tmp_path / "ours"), body),
        _served_by_mlflow(str(tmp_path / "theirs"), body, monkeypatch),
        _served_by_modelyard(str(tmp_path / "theirs"), body),
    ]
    for answer in answers:
        rows = answer["predictions"]
        assert np.allclose(
            np.asarray([[row[k] for k in sorted(row, key=int)] for row in rows]), expected, atol=1e-6
        )
    assert answers[0] == answers[1], "modelyard serves its own model as mlflow serves it"
    assert answers[2] == answers[3], "modelyard serves mlflow's model as mlflow serves it"


def _served_by_modelyard(model_uri: str, body: dict[str, object]) -> dict[str, object]:
    from fastapi.testclient import TestClient

    from modelyard.serving.app import create_app
    from modelyard.settings import Settings

    with TestClient(create_app(Settings(model_uri=model_uri)), base_url="http://localhost") as served:
        answer = served.post("/invocations", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _served_by_mlflow(
    model_uri: str, body: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> dict[str, object]:
    """mlflow's own scoring app (what `mlflow models serve` runs), in process."""
    import mlflow.pyfunc
    from fastapi.testclient import TestClient
    from mlflow.pyfunc import scoring_server

    monkeypatch.setenv(
        "_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false"
    )  # init() sets it; restored after the test
    with TestClient(scoring_server.init(mlflow.pyfunc.load_model(model_uri))) as served:
        answer = served.post("/invocations", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


# --- without torch ---------------------------------------------------------------------------------


def test_without_torch_the_error_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(ModelyardException, match=r"modelyard\[pytorch\]"):
        modelyard.pytorch.save_model(object(), tmp_path / "m")
    with pytest.raises(ModelyardException, match=r"modelyard\[pytorch\]"):
        modelyard.pytorch._load_pyfunc(str(tmp_path))
    assert not (tmp_path / "m").exists()


def test_mlflows_pytorch_loader_maps_to_modelyards_and_the_extra_exists() -> None:
    import tomllib

    from modelyard.pyfunc.loader import _LOADER_ALIASES

    assert _LOADER_ALIASES["mlflow.pytorch"] == "modelyard.pytorch"
    root = Path(__file__).resolve().parents[2]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(r.startswith("torch") for r in extras["pytorch"])
    assert not any("torch" in r for r in extras["dev"])
