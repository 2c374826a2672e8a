"""The XGBoost flavor: save, log and load Boosters and XGBoost's scikit-learn models in MLflow's layout.

The MLmodel says `loader_module: mlflow.xgboost` and the `xgboost` flavor block MLflow writes
(`data`, `model_class`, `model_format`, `xgb_version`), so models move both ways between modelyard and
MLflow. The model file is XGBoost's own format (UBJSON by default; `json` or the legacy `xgb`), never
a pickle. Needs the `xgboost` extra (the CPU-only `xgboost-cpu` wheel).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.exceptions import ModelyardException
from modelyard.models import flavor
from modelyard.models.environment import default_requirements
from modelyard.models.mlmodel import Model, ModelInfo

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["FLAVOR_NAME", "autolog", "get_default_pip_requirements", "load_model", "log_model", "save_model"]

FLAVOR_NAME = "xgboost"
PYFUNC_LOADER_MODULE = "mlflow.xgboost"
_FORMATS = ("ubj", "json", "xgb", "deprecated")


def _distribution() -> str:
    """The installed distribution that provides `xgboost` (`xgboost` or `xgboost-cpu`)."""
    from importlib import metadata

    names = metadata.packages_distributions().get("xgboost") or ["xgboost"]
    return names[0]


def get_default_pip_requirements() -> list[str]:
    return default_requirements([_distribution()])


def save_model(
    xgb_model: Any,
    path: str | os.PathLike[str],
    model_format: str = "ubj",
    **options: Unpack[flavor.SaveOptions],
) -> Model:
    """Save `xgb_model` to a new folder `path` (the shared keywords: `models/flavor.py`)."""
    import xgboost

    if model_format not in _FORMATS:
        raise ModelyardException.invalid_parameter(
            f"Unknown XGBoost model format {model_format!r}: use one of {_FORMATS}"
        )

    def write(directory: Path, model: Model, code: str | None) -> flavor.Written:
        data = f"model.{model_format}"
        xgb_model.save_model(str(directory / data))
        cls = type(xgb_model)
        model.add_flavor(
            FLAVOR_NAME,
            xgb_version=xgboost.__version__,
            data=data,
            model_class=f"{cls.__module__}.{cls.__qualname__}",
            model_format=model_format,
            code=code,
        )
        pyfunc_conf = {"loader_module": PYFUNC_LOADER_MODULE, "data": data, "code": code}
        return flavor.Written(get_default_pip_requirements(), pyfunc_conf, _PyfuncModel(xgb_model).predict)

    return flavor.save(path, write, options)


def log_model(
    xgb_model: Any,
    name: str | None = None,
    model_format: str = "ubj",
    **options: Unpack[flavor.LogOptions],
) -> ModelInfo:
    """Save to a temporary folder and publish it as a logged model of the active run (MLflow 3's flow)."""
    return flavor.log(save_model, name, {"xgb_model": xgb_model, "model_format": model_format}, options)


def _load(model_file: Path, model_class: str) -> Any:
    module_name, _, class_name = model_class.rpartition(".")
    if not module_name.startswith("xgboost"):
        raise ModelyardException.invalid_parameter(f"Not an XGBoost model class: {model_class!r}")
    cls = getattr(importlib.import_module(module_name), class_name)
    model = cls()
    model.load_model(str(model_file))
    return model


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """The Booster or XGBoost scikit-learn model itself (not a pyfunc wrapper)."""
    local, conf = flavor.local_model(model_uri, dst_path, FLAVOR_NAME)
    return _load(local / conf.get("data", "model.xgb"), conf.get("model_class", "xgboost.core.Booster"))


class _PyfuncModel:
    """pyfunc's view: a Booster scores a DMatrix built from the input; sklearn models take it as is."""

    def __init__(self, xgb_model: Any) -> None:
        self.xgb_model = xgb_model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        import xgboost

        if isinstance(self.xgb_model, xgboost.Booster):
            return self.xgb_model.predict(xgboost.DMatrix(data))
        return self.xgb_model.predict(data)

    def get_raw_model(self) -> Any:
        return self.xgb_model


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> _PyfuncModel:
    """The pyfunc loader contract: `path` is the model file (the pyfunc `data`) or its folder."""
    model_file = Path(path)
    folder = model_file if model_file.is_dir() else model_file.parent
    conf = Model.load(folder).flavor(FLAVOR_NAME)
    if model_file.is_dir():
        model_file = folder / conf.get("data", "model.xgb")
    return _PyfuncModel(_load(model_file, conf.get("model_class", "xgboost.core.Booster")))


def autolog(**options: Any) -> None:
    """XGBoost autologging (`modelyard.xgboost.autologging.autolog` has the options)."""
    from modelyard.xgboost.autologging import autolog as enable

    enable(**options)
