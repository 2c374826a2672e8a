"""Writing a model directory: the steps every flavor's `save_model` shares, in one place.

A flavor writes its own files (a pickle, a python_model.pkl) between `start` and `finish`; `finish`
adds what makes the folder a model anyone can load: signature, input example, environment files and
the MLmodel file last, so a directory with an MLmodel is always complete.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from modelyard.exceptions import ModelyardException
from modelyard.models.environment import write_environment
from modelyard.models.mlmodel import Model, save_input_example, split_example
from modelyard.models.signature import ModelSignature, infer_signature

CODE_DIR = "code"


def start(path: str | os.PathLike[str]) -> Path:
    """A new, empty directory: saving over an existing model would mix two models' files."""
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ModelyardException.already_exists(f"Path '{target}' already exists and is not empty")
    target.mkdir(parents=True, exist_ok=True)
    return target


def copy_code_paths(model_dir: Path, code_paths: Iterable[str] | None) -> str | None:
    """Copy files/folders into `code/`; they go on sys.path at load time. Returns the flavor's `code` value."""
    paths = list(code_paths or [])
    if not paths:
        return None
    code_root = model_dir / CODE_DIR
    code_root.mkdir()
    for raw in paths:
        source = Path(raw)
        if not source.exists():
            raise ModelyardException.invalid_parameter(f"code path '{raw}' does not exist")
        target = code_root / source.resolve().name
        if target.exists():
            raise ModelyardException.invalid_parameter(f"Two code paths are both named '{source.name}'")
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target)
    return CODE_DIR


def resolve_signature(
    signature: ModelSignature | None,
    input_example: Any,
    predict: Callable[[Any], Any] | None,
) -> ModelSignature | None:
    """An explicit signature wins; else one is inferred from the example and the model's output on it."""
    if signature is not None or input_example is None:
        return signature
    data, params = split_example(input_example)
    output = None
    if predict is not None:
        try:
            output = predict(data)
        except Exception:  # a model that cannot score its own example still saves; only outputs go unknown
            output = None
    output = _row_predictions_as_series(data, output)
    try:
        return infer_signature(data, output, params)
    except ModelyardException:
        return infer_signature(data, None, params) if output is not None else None


def finish(
    model_dir: Path,
    model: Model,
    signature: ModelSignature | None,
    input_example: Any,
    requirements: Iterable[str],
    pyfunc_conf: dict[str, Any] | None,
) -> Model:
    """`pyfunc_conf` None: a model without a python_function flavor (nothing to predict with)."""
    if signature is not None and not isinstance(signature, ModelSignature):
        raise ModelyardException.invalid_parameter("signature must be a ModelSignature (see infer_signature)")
    model.signature = signature
    if input_example is not None:
        save_input_example(model, model_dir, input_example)
    env = write_environment(model_dir, requirements)
    if pyfunc_conf is not None:
        model.flavors = {
            "python_function": {**pyfunc_conf, "env": env, "python_version": _python_version()},
            **{k: v for k, v in model.flavors.items() if k != "python_function"},
        }
    model.model_size_bytes = sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file())
    model.save(model_dir)
    return model


def _python_version() -> str:
    import platform

    return platform.python_version()


def _row_predictions_as_series(data: Any, output: Any) -> Any:
    """MLflow's rule when it infers from an example: a column-based input with a 1-D array of
    predictions means one prediction per row, so the output is a column, not a tensor."""
    try:
        import numpy as np
        import pandas as pd
    except ImportError:
        return output
    if isinstance(output, np.ndarray) and output.ndim == 1 and not isinstance(data, np.ndarray):
        try:
            if not infer_signature(data).inputs.is_tensor_spec:
                return pd.Series(output)
        except ModelyardException:
            return output
    return output
