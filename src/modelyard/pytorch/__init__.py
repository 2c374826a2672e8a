"""The PyTorch flavor: save, log and load `torch.nn.Module`s in MLflow's `pytorch` flavor layout.

The layout is mlflow 3.17's, so each library loads the other's models: `data/model.pth` (the whole
module, `torch.save` with cloudpickle) beside `data/pickle_module_info.txt` naming the pickle module
(`mlflow.pytorch.pickle_module`, mlflow's cloudpickle re-export, so mlflow loads ours; modelyard reads
such files with the standard pickle module), or `data/model.pt2` (`serialization_format="pt2"`: a `torch.export`
program, traced from a tensor input example, loaded without unpickling code). MLflow 3.17 defaults to
pt2 and then requires an input example; modelyard defaults to pickle, which needs none. The pyfunc
flavor names `loader_module: mlflow.pytorch`, mapped back to `_load_pyfunc` below. Loading a pickle
runs code from the model file: load only models you trust.

torch is not a dependency of modelyard: `pip install 'modelyard[pytorch]'`; it is imported by the
functions that need it, and a missing torch is an error naming the extra.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from modelyard.exceptions import ModelyardException
from modelyard.models import flavor
from modelyard.models.environment import default_requirements
from modelyard.models.mlmodel import Model, ModelInfo

__all__ = [
    "FLAVOR_NAME",
    "SERIALIZATION_FORMAT_PICKLE",
    "SERIALIZATION_FORMAT_PT2",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
]

FLAVOR_NAME = "pytorch"
PYFUNC_LOADER_MODULE = "mlflow.pytorch"
SERIALIZATION_FORMAT_PICKLE = "pickle"
SERIALIZATION_FORMAT_PT2 = "pt2"
DATA_DIR = "data"
PICKLED_FILE = "model.pth"
EXPORTED_FILE = "model.pt2"
PICKLE_MODULE_FILE = "pickle_module_info.txt"
#: What mlflow writes and loads with (a cloudpickle re-export). cloudpickle writes plain pickles but has
#: no Unpickler, which torch.load needs: such files are read with the standard pickle module.
MLFLOW_PICKLE_MODULE = "mlflow.pytorch.pickle_module"
_PICKLE_MODULE_ALIASES = {MLFLOW_PICKLE_MODULE: "pickle", "cloudpickle": "pickle"}


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ModelyardException.invalid_parameter(
            "The pytorch flavor needs torch, which is not installed: pip install 'modelyard[pytorch]'"
        ) from None
    return torch


def get_default_pip_requirements() -> list[str]:
    return default_requirements(["torch", "cloudpickle", "numpy"])


def save_model(
    pytorch_model: Any,
    path: str | os.PathLike[str],
    pickle_module: Any = None,
    serialization_format: str = SERIALIZATION_FORMAT_PICKLE,
    **kwargs: Any,
) -> Model:
    """Save `pytorch_model` (a `torch.nn.Module`) to a new folder `path`. `kwargs`: the keywords every
    flavor shares (`models/flavor.py: SaveOptions`); the others go to `torch.save`."""
    torch = _torch()
    options, torch_save_kwargs = flavor.split_options(kwargs, flavor.SaveOptions)
    if not isinstance(pytorch_model, torch.nn.Module):
        raise ModelyardException.invalid_parameter("pytorch_model must be a torch.nn.Module")
    if serialization_format not in (SERIALIZATION_FORMAT_PICKLE, SERIALIZATION_FORMAT_PT2):
        raise ModelyardException.invalid_parameter(
            f"Unrecognized serialization format {serialization_format!r}: use 'pickle' or 'pt2'"
        )

    def write(directory: Path, model: Model, code: str | None) -> flavor.Written:
        (directory / DATA_DIR).mkdir()
        if serialization_format == SERIALIZATION_FORMAT_PT2:
            _export(torch, pytorch_model, options.get("input_example"), directory / DATA_DIR / EXPORTED_FILE)
        else:
            _pickle(torch, pytorch_model, pickle_module, directory / DATA_DIR, torch_save_kwargs)
        model.add_flavor(FLAVOR_NAME, model_data=DATA_DIR, pytorch_version=str(torch.__version__), code=code)
        pyfunc_conf = {
            "loader_module": PYFUNC_LOADER_MODULE,
            "data": DATA_DIR,
            "pickle_module_name": MLFLOW_PICKLE_MODULE,
            "code": code,
            "config": {"device": None},
        }
        predict = PyTorchWrapper(pytorch_model, "cpu").predict
        return flavor.Written(get_default_pip_requirements(), pyfunc_conf, predict)

    return flavor.save(path, write, options)


def _pickle(
    torch: Any, pytorch_model: Any, pickle_module: Any, data_dir: Path, kwargs: dict[str, Any]
) -> None:
    import cloudpickle

    module = pickle_module or cloudpickle
    if isinstance(pytorch_model, torch.jit.ScriptModule):
        torch.jit.save(pytorch_model, str(data_dir / PICKLED_FILE))
    else:
        torch.save(pytorch_model, data_dir / PICKLED_FILE, pickle_module=module, **kwargs)
    name = MLFLOW_PICKLE_MODULE if module is cloudpickle else module.__name__
    (data_dir / PICKLE_MODULE_FILE).write_text(name)


def _export(torch: Any, pytorch_model: Any, input_example: Any, target: Path) -> None:
    """A `torch.export` program traced on the example, its first dimension (the batch) left free."""
    import numpy as np

    examples = input_example if isinstance(input_example, (tuple, list)) else (input_example,)
    if input_example is None or not all(isinstance(x, (np.ndarray, torch.Tensor)) for x in examples):
        raise ModelyardException.invalid_parameter(
            "serialization_format='pt2' traces the model on its input example: give a numpy array or "
            "tensor (or a tuple of them) as input_example"
        )
    tensors = tuple(torch.from_numpy(x) if isinstance(x, np.ndarray) else x for x in examples)
    batch = torch.export.Dim.AUTO if hasattr(torch.export.Dim, "AUTO") else None
    dynamic = tuple({0: batch} if batch is not None and t.dim() > 0 else None for t in tensors)
    program = torch.export.export(
        pytorch_model, tensors, dynamic_shapes=dynamic if batch is not None else None
    )
    torch.export.save(program, str(target))


def log_model(
    pytorch_model: Any,
    name: str | None = None,
    pickle_module: Any = None,
    serialization_format: str = SERIALIZATION_FORMAT_PICKLE,
    **kwargs: Any,
) -> ModelInfo:
    """Save to a temporary folder and publish it as a logged model of the active run (MLflow 3's flow).
    `kwargs`: the keywords every flavor's log_model shares (`models/flavor.py: LogOptions`); the others
    go to `torch.save`."""
    options, torch_save_kwargs = flavor.split_options(kwargs, flavor.LogOptions)
    own = {
        "pytorch_model": pytorch_model,
        "pickle_module": pickle_module,
        "serialization_format": serialization_format,
        **torch_save_kwargs,
    }
    return flavor.log(save_model, name, own, options)


def load_model(model_uri: str, dst_path: str | None = None, **kwargs: Any) -> Any:
    """The `torch.nn.Module` itself (not a pyfunc wrapper); `kwargs` go to `torch.load`."""
    local, conf = flavor.local_model(model_uri, dst_path, FLAVOR_NAME)
    return _load_module(local / conf.get("model_data", DATA_DIR), **kwargs)


def _load_module(data_dir: Path, device: str | None = None, **kwargs: Any) -> Any:
    torch = _torch()
    if (data_dir / EXPORTED_FILE).is_file():
        module = torch.export.load(str(data_dir / EXPORTED_FILE)).module()
        return module.to(device) if device else module
    info = data_dir / PICKLE_MODULE_FILE
    name = info.read_text().strip() if info.is_file() else "pickle"
    pickle_module = importlib.import_module(_PICKLE_MODULE_ALIASES.get(name, name))
    kwargs.setdefault("weights_only", False)  # a whole module, not a state dict (torch >= 2.6 defaults True)
    if device:
        kwargs.setdefault("map_location", device)
    return torch.load(data_dir / PICKLED_FILE, pickle_module=pickle_module, **kwargs)


class PyTorchWrapper:
    """The pyfunc view of a module: a DataFrame (as float32) or an ndarray in, the output tensor as
    numpy out (a DataFrame with the input's index for a DataFrame), under `torch.no_grad()`."""

    def __init__(self, module: Any, device: str) -> None:
        self.module = module
        self.device = device

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        import numpy as np
        import pandas as pd

        torch = _torch()
        if isinstance(data, pd.DataFrame):
            array = data.to_numpy(dtype=np.float32)
        elif isinstance(data, np.ndarray):
            array = data
        else:
            raise ModelyardException.invalid_parameter(
                f"The pytorch flavor predicts on a pandas DataFrame or a numpy array, not {type(data).__name__}"
            )
        if not array.flags.writeable:  # torch.from_numpy warns on read-only arrays (a frame's values)
            array = array.copy()
        with torch.no_grad():
            output = self.module(torch.from_numpy(array).to(self.device), **(params or {}))
        if not isinstance(output, torch.Tensor):
            raise ModelyardException.invalid_parameter(
                f"The pytorch flavor expects the model to return one tensor, got {type(output).__name__}"
            )
        result = output.to("cpu").numpy()
        if isinstance(data, pd.DataFrame):
            return pd.DataFrame(result, index=data.index)
        return result

    def get_raw_model(self) -> Any:
        return self.module


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> PyTorchWrapper:
    """The pyfunc loader contract: `path` is the flavor's data folder. `model_config={"device": ...}`
    picks the device (default: the first GPU when torch sees one, else the CPU), as in mlflow."""
    torch = _torch()
    device = (model_config or {}).get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    data_dir = Path(path)
    if not (data_dir / PICKLED_FILE).is_file() and not (data_dir / EXPORTED_FILE).is_file():
        data_dir = data_dir / DATA_DIR  # a model directory given directly
    return PyTorchWrapper(_load_module(data_dir, device=device), device)
