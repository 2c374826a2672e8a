"""The pytorch flavor across modelyard and mlflow 3.17, on disk and through a tracking server.

torch is not in the `dev` extra (a CPU build is ~0.9 GB installed), so the tests that need it skip
where it is absent (run them with torch installed: `pip install 'modelyard[pytorch]'`). The tests
at the end need no torch: the clear error without it, the loader mapping, the extra.
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


@pytest.fixture(scope="module")
def torch():  # type: ignore[no-untyped-def]
    return pytest.importorskip("torch")


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


def test_logged_through_a_server_both_ways(torch, net, x, tracking_uri: str, experiment_name: str) -> None:  # type: ignore[no-untyped-def]
    import mlflow
    import mlflow.pytorch

    modelyard.set_experiment(experiment_name)
    name = f"torch-{uuid.uuid4().hex[:8]}"
    with modelyard.start_run():
        ours = modelyard.pytorch.log_model(net, name="model", input_example=x[:2], registered_model_name=name)
    mlflow.set_experiment(experiment_name)
    with mlflow.start_run():
        theirs = mlflow.pytorch.log_model(net, name="model", input_example=x[:2], pip_requirements=["torch"])
    expected = _expected(torch, net, x)
    assert np.allclose(mlflow.pyfunc.load_model(f"models:/{name}/1").predict(x), expected)
    assert np.allclose(mlflow.pyfunc.load_model(ours.model_uri).predict(x), expected)
    assert np.allclose(modelyard.pyfunc.load_model(theirs.model_uri).predict(x), expected)


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
