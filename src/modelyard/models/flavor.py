"""A flavor's `save_model`, `log_model` and `load_model` steps, written once for every flavor.

Each flavor (sklearn, xgboost, pytorch, pyfunc) says only what is its own: its arguments' checks, the
files it writes, its `python_function` block, its default requirements and how it scores an input
example. Everything else is here: the new empty folder, `code_paths`, `metadata`, the signature
(explicit, or inferred from the example), the environment files, the MLmodel file written last, the
folder removed when anything fails, and `log_model` as save-to-a-temporary-folder-then-publish.

MLflow's keyword names are the public contract (`mlflow.sklearn.log_model(model, name=...,
input_example=...)`). The keywords all flavors share are declared once, as TypedDicts, and each flavor
takes them as `**options: Unpack[...]`, so editors and type checkers still see them; an unknown keyword
is a TypeError here, as Python raises for an undeclared parameter.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from modelyard.models import model_dir
from modelyard.models.mlmodel import Model, ModelInfo
from modelyard.models.signature import ModelSignature

if TYPE_CHECKING:
    import os


class _SharedOptions(TypedDict, total=False):
    #: None: inferred from the input example when there is one; False (as MLflow): none, never inferred.
    signature: ModelSignature | Literal[False] | None
    input_example: Any
    code_paths: list[str] | None
    pip_requirements: list[str] | None
    extra_pip_requirements: list[str] | None
    metadata: dict[str, Any] | None


class SaveOptions(_SharedOptions, total=False):
    """The keywords every flavor's `save_model` takes besides its own."""

    #: The Model to fill (log_model passes one that carries the logged model's ids).
    mlflow_model: Model | None


class LogOptions(_SharedOptions, total=False):
    """The keywords every flavor's `log_model` takes besides its own and `name`."""

    artifact_path: str | None  # MLflow 2's name for `name`
    registered_model_name: str | None
    params: dict[str, Any] | None
    tags: dict[str, Any] | None
    model_type: str | None
    step: int
    run_id: str | None


#: `log_model`'s own keywords: they go to publishing, the rest to `save_model`.
_PUBLISH_KEYS = ("registered_model_name", "params", "tags", "model_type", "step", "run_id")


@dataclass(frozen=True)
class Written:
    """What a flavor's writer reports once its files are in the folder."""

    #: The flavor's default pip requirements (used unless the caller gave `pip_requirements`).
    requirements: list[str]
    #: The `python_function` block (loader_module, data, ...); None: the model has no pyfunc flavor.
    pyfunc: dict[str, Any] | None
    #: Scores the input example as the loaded model will, to infer the signature's outputs.
    predict: Callable[[Any], Any] | None = None
    #: A signature the flavor knows itself (a PythonModel's type hints), when the caller gave none.
    signature: ModelSignature | None = None


#: A flavor's writer: (the new model folder, the Model to add its flavor to, the `code` folder or None).
Writer = Callable[[Path, Model, "str | None"], Written]


def save(path: str | os.PathLike[str], write: Writer, options: Mapping[str, Any]) -> Model:
    """Write a model folder at `path`: the shared steps around the flavor's `write`."""
    _refuse_unknown("save_model", options, SaveOptions)
    directory = model_dir.start(path)
    try:
        model = options.get("mlflow_model") or Model()
        if options.get("metadata") is not None:
            model.metadata = options["metadata"]
        code = model_dir.copy_code_paths(directory, options.get("code_paths"))
        written = write(directory, model, code)
        example = options.get("input_example")
        signature = options.get("signature")
        if signature is False:
            signature = None
        else:
            signature = model_dir.resolve_signature(signature or written.signature, example, written.predict)
        extra = options.get("extra_pip_requirements") or []
        requirements = options.get("pip_requirements") or [*written.requirements, *extra]
        return model_dir.finish(directory, model, signature, example, requirements, written.pyfunc)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def log(
    save_model: Callable[..., Model],
    name: str | None,
    model_args: Mapping[str, Any],
    options: Mapping[str, Any],
) -> ModelInfo:
    """Save with the flavor's `save_model(path=..., mlflow_model=..., **model_args, **save options)` into a
    temporary folder and publish it as a logged model of the active run (`models/publish.py`)."""
    from modelyard.models.publish import log_model as publish

    _refuse_unknown("log_model", options, LogOptions)
    save_options = {k: v for k, v in options.items() if k not in (*_PUBLISH_KEYS, "artifact_path")}

    def save_to(path: Path, model: Model) -> Model:
        return save_model(path=path, mlflow_model=model, **model_args, **save_options)

    publish_options = {k: options[k] for k in _PUBLISH_KEYS if k in options}
    return publish(save_to, name=name or options.get("artifact_path"), **publish_options)


def split_options(kwargs: Mapping[str, Any], shared: type) -> tuple[dict[str, Any], dict[str, Any]]:
    """For a flavor whose own `**kwargs` pass through to its library (pytorch's `torch.save`): the
    shared options, and the rest."""
    keys = _keys(shared)
    return {k: v for k, v in kwargs.items() if k in keys}, {k: v for k, v in kwargs.items() if k not in keys}


def add_code_to_path(model_dir: Path, code_dir: str | None) -> None:
    """A model's `code/` folder goes first on sys.path so its modules win over same-named installed ones."""
    if not code_dir:
        return
    code_path = str((model_dir / code_dir).resolve())
    if Path(code_path).is_dir() and code_path not in sys.path:
        sys.path.insert(0, code_path)


def local_model(model_uri: str, dst_path: str | None, flavor_name: str) -> tuple[Path, dict[str, Any]]:
    """A model's local folder (downloaded when remote) and its flavor's block, its code on sys.path."""
    from modelyard.models.uri import download_model

    local = Path(download_model(model_uri, dst_path))
    conf = Model.load(local).flavor(flavor_name)
    add_code_to_path(local, conf.get("code"))
    return local, conf


def _keys(options: Any) -> frozenset[str]:
    """A TypedDict's keys, its bases' included."""
    return frozenset(options.__required_keys__ | options.__optional_keys__)


def _refuse_unknown(function: str, options: Mapping[str, Any], allowed: type) -> None:
    unknown = sorted(set(options) - _keys(allowed))
    if unknown:
        raise TypeError(f"{function}() got an unexpected keyword argument {unknown[0]!r}")
