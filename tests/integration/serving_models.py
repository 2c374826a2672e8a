"""Models and process helpers shared by the serving, endpoints and deploy tests.

Custom pyfunc classes live in small modules written to a temp folder and shipped in the model's
`code/` folder, so the pickles name an importable module (not `__main__` or a test module) and load in
any serving worker.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelyard.devstack.services import ServiceSpec

#: The scoring service as the dev stack and the serving image run it (its config downloads the model once).
SERVING = ServiceSpec("serving", "modelyard.serving.asgi:app", health_path="/ping")

FEATURES = ["a", "b", "c"]

SCALE_MODEL_SOURCE = '''
import pandas as pd
from modelyard.pyfunc import PythonModel


class ScaleModel(PythonModel):
    """Predicts a * scale + offset; `scale` is an inference parameter."""

    def __init__(self, offset):
        self.offset = offset

    def predict(self, context, model_input, params=None):
        scale = (params or {}).get("scale", 1.0)
        return pd.DataFrame({"y": model_input["a"] * scale + self.offset, "label": "ok"})
'''

BROKEN_MODEL_SOURCE = """
from modelyard.pyfunc import PythonModel


class BrokenModel(PythonModel):
    def load_context(self, context):
        raise RuntimeError("weights file is corrupt: refusing to serve")

    def predict(self, context, model_input, params=None):
        return model_input
"""


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)


def train_classifier(seed: int = 0) -> tuple[Any, pd.DataFrame]:
    from sklearn.linear_model import LogisticRegression

    x = frame(60, seed)
    y = (x["a"] + x["b"] * seed > 0).astype(int)
    return LogisticRegression().fit(x, y), x


def save_classifier(path: Path, seed: int = 0) -> tuple[Any, pd.DataFrame]:
    """A scikit-learn classifier saved with modelyard, with a column signature (a, b, c: double)."""
    from modelyard import sklearn as my_sklearn
    from modelyard.models import infer_signature

    model, x = train_classifier(seed)
    my_sklearn.save_model(model, str(path), signature=infer_signature(x, model.predict(x)))
    return model, x


def import_source(folder: Path, module: str, source: str) -> tuple[Any, Path]:
    """Write `source` as `folder/module.py`, import it, and return (module, file)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{module}.py"
    path.write_text(source)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    sys.modules.pop(module, None)
    return importlib.import_module(module), path


def save_scale_model(path: Path, code_dir: Path, offset: float = 0.5) -> None:
    """A custom pyfunc with a `scale` parameter (double, default 1.0) and a DataFrame output."""
    from modelyard import pyfunc
    from modelyard.models import infer_signature

    module, source = import_source(code_dir, "scale_model", SCALE_MODEL_SOURCE)
    example = frame(3)
    python_model = module.ScaleModel(offset)
    pyfunc.save_model(
        str(path),
        python_model=python_model,
        code_paths=[str(source)],
        signature=infer_signature(example, python_model.predict(None, example), params={"scale": 1.0}),
    )


def save_broken_model(path: Path, code_dir: Path) -> None:
    """A custom pyfunc whose load_context raises: it saves fine and never loads."""
    from modelyard import pyfunc

    module, source = import_source(code_dir, "broken_model", BROKEN_MODEL_SOURCE)
    pyfunc.save_model(str(path), python_model=module.BrokenModel(), code_paths=[str(source)])


def child_pids(parent: int) -> set[int]:
    """Live processes whose parent is `parent` (gunicorn's workers), read from /proc."""
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # The command name in parentheses may hold spaces; the fields after it are fixed.
        fields = text.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found
