"""The XGBoost flavor: save, log and load Boosters and XGBoost's scikit-learn models in MLflow's layout.

The MLmodel says `loader_module: mlflow.xgboost` and the `xgboost` flavor block MLflow writes
(`data`, `model_class`, `model_format`, `xgb_version`), so models move both ways between modelyard and
MLflow. The model file is XGBoost's own format (UBJSON by default; `json` or the legacy `xgb`), never
a pickle. Needs the `xgboost` extra (the CPU-only `xgboost-cpu` wheel).
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from typing import Any

from modelyard.exceptions import ModelyardException
from modelyard.models import model_dir as _model_dir
from modelyard.models.environment import default_requirements
from modelyard.models.mlmodel import Model, ModelInfo
from modelyard.models.signature import ModelSignature

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
    signature: ModelSignature | None = None,
    input_example: Any = None,
    code_paths: list[str] | None = None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    model_format: str = "ubj",
    metadata: dict[str, Any] | None = None,
    mlflow_model: Model | None = None,
) -> Model:
    import xgboost

    if model_format not in _FORMATS:
        raise ModelyardException.invalid_parameter(
            f"Unknown XGBoost model format {model_format!r}: use one of {_FORMATS}"
        )
    directory = _model_dir.start(path)
    try:
        model = mlflow_model or Model()
        if metadata is not None:
            model.metadata = metadata
        code = _model_dir.copy_code_paths(directory, code_paths)
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
        signature = _model_dir.resolve_signature(signature, input_example, _PyfuncModel(xgb_model).predict)
        requirements = pip_requirements or [*get_default_pip_requirements(), *(extra_pip_requirements or [])]
        conf = {"loader_module": PYFUNC_LOADER_MODULE, "data": data, "code": code}
        return _model_dir.finish(directory, model, signature, input_example, requirements, conf)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def log_model(
    xgb_model: Any,
    name: str | None = None,
    artifact_path: str | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    code_paths: list[str] | None = None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    model_format: str = "ubj",
    metadata: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    run_id: str | None = None,
) -> ModelInfo:
    from modelyard.models.publish import log_model as publish

    def save(path: Path, model: Model) -> Model:
        return save_model(
            xgb_model,
            path,
            signature=signature,
            input_example=input_example,
            code_paths=code_paths,
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            model_format=model_format,
            metadata=metadata,
            mlflow_model=model,
        )

    return publish(
        save,
        name=name or artifact_path,
        registered_model_name=registered_model_name,
        params=params,
        tags=tags,
        model_type=model_type,
        step=step,
        run_id=run_id,
    )


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
    from modelyard.models.uri import download_model
    from modelyard.pyfunc.loader import add_code_to_path

    local = Path(download_model(model_uri, dst_path))
    conf = Model.load(local).flavor(FLAVOR_NAME)
    add_code_to_path(local, conf.get("code"))
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
    """XGBoost autologging (`modelyard.autologging.xgboost.autolog` has the options)."""
    from modelyard.autologging.xgboost import autolog as enable

    enable(**options)
