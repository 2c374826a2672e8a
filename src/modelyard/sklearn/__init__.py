"""The scikit-learn flavor: save, log and load estimators in MLflow's `sklearn` flavor layout.

We write `loader_module: mlflow.sklearn`, so a model saved here loads with `mlflow.pyfunc.load_model`
in an environment that has only MLflow; modelyard maps that loader name back to `_load_pyfunc` below.
Formats: cloudpickle (default; handles estimators defined in `__main__`), pickle, and reading MLflow's
`skops` format (mlflow 3.17's default; the `sklearn` extra installs skops). Loading a pickle runs code
from the model file: load only models you trust.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.exceptions import ModelyardException
from modelyard.models import flavor
from modelyard.models.environment import default_requirements
from modelyard.models.mlmodel import Model, ModelInfo
from modelyard.sklearn.skops_import import import_skops_io

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "FLAVOR_NAME",
    "autolog",
    "SERIALIZATION_FORMAT_CLOUDPICKLE",
    "SERIALIZATION_FORMAT_PICKLE",
    "SERIALIZATION_FORMAT_SKOPS",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
]

FLAVOR_NAME = "sklearn"
PYFUNC_LOADER_MODULE = "mlflow.sklearn"
SERIALIZATION_FORMAT_PICKLE = "pickle"
SERIALIZATION_FORMAT_CLOUDPICKLE = "cloudpickle"
SERIALIZATION_FORMAT_SKOPS = "skops"
_WRITABLE_FORMATS = (SERIALIZATION_FORMAT_CLOUDPICKLE, SERIALIZATION_FORMAT_PICKLE)
_READABLE_FORMATS = (*_WRITABLE_FORMATS, SERIALIZATION_FORMAT_SKOPS)
_PICKLE_FILE = "model.pkl"
_PREDICT_FNS = ("predict", "predict_proba", "predict_log_proba", "predict_joint_log_proba", "score")


def get_default_pip_requirements(serialization_format: str = SERIALIZATION_FORMAT_CLOUDPICKLE) -> list[str]:
    names = ["scikit-learn", "numpy", "pandas"]
    if serialization_format == SERIALIZATION_FORMAT_CLOUDPICKLE:
        names.append("cloudpickle")
    return default_requirements(names)


def save_model(
    sk_model: Any,
    path: str | os.PathLike[str],
    serialization_format: str = SERIALIZATION_FORMAT_CLOUDPICKLE,
    pyfunc_predict_fn: str = "predict",
    **options: Unpack[flavor.SaveOptions],
) -> Model:
    """Save `sk_model` to a new folder `path` (the shared keywords: `models/flavor.py`)."""
    if serialization_format not in _WRITABLE_FORMATS:
        raise ModelyardException.invalid_parameter(
            f"Unrecognized serialization format: {serialization_format}. Use one of {list(_WRITABLE_FORMATS)}."
        )
    if pyfunc_predict_fn not in _PREDICT_FNS or (
        # A transformer (PCA, ...) saves without a pyfunc flavor, as MLflow saves it; only an explicit
        # choice of a method the model lacks is an error.
        pyfunc_predict_fn != "predict" and not callable(getattr(sk_model, pyfunc_predict_fn, None))
    ):
        raise ModelyardException.invalid_parameter(
            f"pyfunc_predict_fn must be one of {list(_PREDICT_FNS)} and exist on the model, got {pyfunc_predict_fn!r}"
        )

    def write(directory: Path, model: Model, code: str | None) -> flavor.Written:
        with open(directory / _PICKLE_FILE, "wb") as out:
            if serialization_format == SERIALIZATION_FORMAT_CLOUDPICKLE:
                import cloudpickle

                cloudpickle.dump(sk_model, out)
            else:
                pickle.dump(sk_model, out, protocol=pickle.DEFAULT_PROTOCOL)
        import sklearn

        model.add_flavor(
            FLAVOR_NAME,
            pickled_model=_PICKLE_FILE,
            sklearn_version=sklearn.__version__,
            serialization_format=serialization_format,
            code=code,
        )
        predict = getattr(sk_model, pyfunc_predict_fn, None)
        pyfunc_conf = None
        if callable(predict):
            pyfunc_conf = {
                "loader_module": PYFUNC_LOADER_MODULE,
                "model_path": _PICKLE_FILE,
                "predict_fn": pyfunc_predict_fn,
                "code": code,
            }
        return flavor.Written(
            get_default_pip_requirements(serialization_format), pyfunc_conf, predict if callable(predict) else None
        )

    return flavor.save(path, write, options)


def log_model(
    sk_model: Any,
    name: str | None = None,
    serialization_format: str = SERIALIZATION_FORMAT_CLOUDPICKLE,
    pyfunc_predict_fn: str = "predict",
    **options: Unpack[flavor.LogOptions],
) -> ModelInfo:
    """Save to a temporary folder and publish it as a logged model of the active run (MLflow 3's flow)."""
    own = {"sk_model": sk_model, "serialization_format": serialization_format, "pyfunc_predict_fn": pyfunc_predict_fn}
    return flavor.log(save_model, name, own, options)


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """The estimator itself (not a pyfunc wrapper)."""
    local, conf = flavor.local_model(model_uri, dst_path, FLAVOR_NAME)
    return _load_estimator(local, conf)


def _load_estimator(model_dir: Path, conf: dict[str, Any]) -> Any:
    fmt = conf.get("serialization_format", SERIALIZATION_FORMAT_PICKLE)
    if fmt not in _READABLE_FORMATS:
        raise ModelyardException.invalid_parameter(f"Unrecognized serialization format: {fmt}")
    path = model_dir / conf.get("pickled_model", _PICKLE_FILE)
    if fmt == SERIALIZATION_FORMAT_SKOPS:
        try:
            skops_io = import_skops_io()
        except ImportError:
            raise ModelyardException.invalid_parameter(
                "This model was saved in the skops format; install `skops` to load it"
            ) from None
        # Only the types the saver listed are trusted beyond skops' defaults, as MLflow does.
        return skops_io.load(path, trusted=conf.get("skops_trusted_types"))
    with open(path, "rb") as source:
        if fmt == SERIALIZATION_FORMAT_CLOUDPICKLE:
            import cloudpickle

            return cloudpickle.load(source)
        return pickle.load(source)


class SklearnPyfuncWrapper:
    """The pyfunc view of an estimator: `predict` plus the other scoring methods `predict_fn` may name."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        for name in _PREDICT_FNS[1:]:
            method = getattr(estimator, name, None)
            if callable(method):
                setattr(self, name, method)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return self.estimator.predict(data)

    def get_raw_model(self) -> Any:
        return self.estimator


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> SklearnPyfuncWrapper:
    """The pyfunc loader contract; `path` is the model directory or the pickle inside it.
    Estimators take no load-time config, so `model_config` is accepted and ignored, as in MLflow."""
    model_dir = Path(path) if os.path.isdir(path) else Path(path).parent
    try:
        conf = Model.load(model_dir).flavor(FLAVOR_NAME)
    except ModelyardException:
        # A pyfunc-only model whose model_path is a pickle: MLflow assumes the pickle format too.
        pyfunc_conf = Model.load(model_dir).flavor("python_function")
        conf = {
            "serialization_format": SERIALIZATION_FORMAT_PICKLE,
            "pickled_model": pyfunc_conf.get("model_path", _PICKLE_FILE),
        }
    return SklearnPyfuncWrapper(_load_estimator(model_dir, conf))


def autolog(**options: Any) -> None:
    """scikit-learn autologging (`modelyard.sklearn.autologging.autolog` has the options)."""
    from modelyard.sklearn.autologging import autolog as enable

    enable(**options)
