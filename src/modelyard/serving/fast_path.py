"""The scoring fast path: rows of plain numbers straight into a numpy matrix, no DataFrame on the way.

Through the general path a 1-row request builds a DataFrame from JSON rows, checks it column by column
against the signature (`models.enforcement`), and a scikit-learn model then validates the DataFrame
again (feature names, per-column dtypes) before it turns it back into the numpy array it computes on:
~2 ms of CPU for a prediction that itself takes microseconds.

`compile_fast_path(model)` looks at the model once. It applies to a `PyFuncModel` whose input schema is
named, required columns all of `double` or all of `long`, and to JSON requests (no `params`) whose input
is rows of plain numbers: `dataframe_split` (any column order, extra columns), `dataframe_records`,
`instances`/`inputs` as records or as positional rows. For such a request it builds the matrix the
general path's DataFrame plus schema enforcement amount to (same values, same dtype, the same
column-major layout a one-dtype DataFrame hands to numpy), with the columns in the schema's order, and:

- hands the matrix itself to a scikit-learn estimator that computes on numpy anyway (`takes_numpy`:
  scikit-learn's own estimators, alone or in a Pipeline, no ColumnTransformer or FunctionTransformer,
  no pandas output configured, fitted on these column names in this order or on none); a linear model
  alone is scored by its own arithmetic, without scikit-learn's per-call checks (`serving/linear.py`);
- wraps it in a DataFrame with the schema's columns (and the request's index) for any other model.

Anything else - another content type, `params`, a value that is not an int or float (a bool, a string,
null, an int beyond 64 bits), ragged rows, a missing or duplicate column, an index pandas might read
differently - returns None from `parse`, and the request takes the general path, which also writes
every error message: the fast path never answers an error of its own.

Small requests (up to `INLINE_MAX_ROWS` rows) are scored on the event loop rather than in a thread (a
thread hop is ~60 us of CPU) once the model has been seen to predict quickly (`InlineGate`); a model
whose predictions take longer goes back to the thread, so `/ping` never waits behind it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelyard.models.schema import ColSpec, DataType
from modelyard.serving.linear import compile_linear

INLINE_MAX_ROWS = 64
#: CPU a prediction may take and still be run on the event loop.
INLINE_BUDGET_SECONDS = 0.002
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NUMPY_TYPES = {DataType.double: np.dtype("float64"), DataType.long: np.dtype("int64")}
#: The warning scikit-learn gives for a numpy input to an estimator fitted on a DataFrame; the fast path
#: passes numpy only after checking the columns are exactly the ones it was fitted on, in that order.
_NO_FEATURE_NAMES = r"X does not have valid feature names, but \w+ was fitted with feature names"


@dataclass(frozen=True)
class Rows:
    """A request's input in the schema's column order."""

    matrix: Any
    index: list[Any] | None

    def __len__(self) -> int:
        return int(self.matrix.shape[0])


class InlineGate:
    """Whether a small request may be scored on the event loop: after `warmup` consecutive quick
    predictions of this model, and until one is not quick."""

    def __init__(self, budget: float = INLINE_BUDGET_SECONDS, warmup: int = 3) -> None:
        self.budget = budget
        self.warmup = warmup
        self.quick = 0

    @property
    def open(self) -> bool:
        return self.quick >= self.warmup

    def record(self, cpu_seconds: float) -> None:
        self.quick = self.quick + 1 if cpu_seconds <= self.budget else 0


class FastPath:
    """The compiled checks for one model's schema, and how to score their result."""

    def __init__(self, names: list[str], dtype: Any, predict: Callable[[Any], Any], numpy_input: bool) -> None:
        self.names = names
        self.dtype = dtype
        self.numpy_input = numpy_input
        self.gate = InlineGate()
        self._predict = predict
        self._name_set = frozenset(names)
        self._positions: dict[tuple[str, ...], list[int] | None] = {}
        self._columns: Any = None

    # --- requests -------------------------------------------------------------------------------
    def parse(self, payload: Any) -> Rows | None:
        """The input of a decoded JSON body, or None when the general path must take the request."""
        try:
            return self._parse(payload)
        except (ValueError, TypeError, OverflowError):  # whatever it is, the general path says what is wrong
            return None

    def _parse(self, payload: Any) -> Rows | None:
        if not isinstance(payload, dict) or "params" in payload or len(payload) != 1:
            return None
        (fmt, value), = payload.items()
        if fmt == "dataframe_split":
            return self._split(value)
        if fmt == "dataframe_records":
            return self._records(value)
        if fmt in ("instances", "inputs") and isinstance(value, list) and value:
            return self._records(value) if type(value[0]) is dict else self._positional(value)
        return None

    def _split(self, value: Any) -> Rows | None:
        if type(value) is not dict:
            return None
        data, columns, index = value.get("data"), value.get("columns"), value.get("index")
        if type(data) is not list or not data or type(columns) is not list:
            return None
        positions = self._positions_of(columns)
        if positions is None or not _uniform_rows(data, len(columns)):
            return None
        if index is not None and not _plain_index(index, len(data)):
            return None
        matrix = self._matrix(data)
        if matrix is None:
            return None
        if positions is not _IDENTITY:
            matrix = np.asfortranarray(matrix[:, positions])
        return Rows(matrix, index)

    def _records(self, value: Any) -> Rows | None:
        if type(value) is not list or not value:
            return None
        names = self.names
        try:
            rows = [[record[name] for name in names] for record in value]
        except (KeyError, TypeError):  # a missing column, or a row that is not an object
            return None
        if not all(type(record) is dict for record in value):
            return None
        matrix = self._matrix(rows)
        return None if matrix is None else Rows(matrix, None)

    def _positional(self, value: list[Any]) -> Rows | None:
        """Positional rows become what the general path's `np.asarray` makes of them, with the model's
        column names (`serving.protocol._tensor_input`)."""
        if not _uniform_rows(value, len(self.names)):
            return None
        array = np.asarray(value)
        if array.dtype.kind == "i" or (array.dtype.kind == "f" and self.dtype.kind == "f"):
            return Rows(np.asfortranarray(array, dtype=self.dtype), None)
        return None

    def _positions_of(self, columns: list[Any]) -> list[int] | None:
        """Where each schema column sits in the request's columns; `_IDENTITY` when they are the schema's."""
        key = tuple(columns)
        if key in self._positions:
            return self._positions[key]
        positions: list[int] | None = None
        if all(type(c) is str for c in key) and len(set(key)) == len(key) and self._name_set <= set(key):
            positions = _IDENTITY if list(key) == self.names else [key.index(n) for n in self.names]
        if len(self._positions) < 256:
            self._positions[key] = positions
        return positions

    def _matrix(self, rows: list[list[Any]]) -> Any:
        """Column-major, as numpy sees a DataFrame of one dtype; None when a value is not a plain number
        of the schema's type (the general path refuses it or converts it differently)."""
        kinds = {type(v) for row in rows for v in row}
        if self.dtype.kind == "f":
            if not kinds <= {float, int}:
                return None
        elif kinds != {int}:
            return None
        if int in kinds and not all(
            _INT64_MIN <= v <= _INT64_MAX for row in rows for v in row if type(v) is int
        ):
            return None
        return np.array(rows, dtype=self.dtype, order="F")

    # --- scoring --------------------------------------------------------------------------------
    def predict(self, rows: Rows) -> Any:
        """Score `rows`; records the prediction's CPU time for `gate`."""
        data = rows.matrix if self.numpy_input else self._frame(rows)
        started = time.thread_time()
        try:
            return self._predict(data)
        finally:
            self.gate.record(time.thread_time() - started)

    def inline(self, rows: Rows) -> bool:
        return len(rows) <= INLINE_MAX_ROWS and self.gate.open

    def _frame(self, rows: Rows) -> Any:
        import pandas as pd

        if self._columns is None:
            self._columns = pd.Index(self.names)
        return pd.DataFrame(rows.matrix, columns=self._columns, index=rows.index, copy=False)


_IDENTITY: list[int] = []


def _uniform_rows(rows: list[Any], width: int) -> bool:
    return all(type(row) is list and len(row) == width for row in rows)


def _plain_index(index: Any, length: int) -> bool:
    return type(index) is list and len(index) == length and all(type(i) in (int, str) for i in index)


def compile_fast_path(model: Any) -> FastPath | None:
    """The fast path for `model`, or None when its schema or type is not one it serves."""
    from modelyard.pyfunc.loader import PyFuncModel

    if not isinstance(model, PyFuncModel):
        return None
    if model.metadata.extra.get("is_signature_from_type_hint"):  # the model's own hints convert its input
        return None
    schema = model.input_schema
    if schema is None or not schema.specs or schema.is_tensor_spec or not schema.has_names:
        return None
    specs = schema.specs
    if not all(isinstance(s, ColSpec) and s.required for s in specs):
        return None
    types = {s.type for s in specs if isinstance(s, ColSpec)}
    if len(types) != 1 or next(iter(types)) not in _NUMPY_TYPES:
        return None
    names = [str(s.name) for s in specs]
    if len(set(names)) != len(names):
        return None
    estimator = _sklearn_estimator(model)
    numpy_input = estimator is not None and takes_numpy(estimator, names)
    if numpy_input:
        warnings.filterwarnings("ignore", message=_NO_FEATURE_NAMES, category=UserWarning)
    predict = numpy_input and _scores_by_predict(model) and compile_linear(estimator, len(names))
    return FastPath(names, _NUMPY_TYPES[next(iter(types))], predict or model.predict_conformed, numpy_input)


def _sklearn_estimator(model: Any) -> Any:
    from modelyard.sklearn import SklearnPyfuncWrapper

    impl = getattr(model, "_impl", None)
    return impl.estimator if isinstance(impl, SklearnPyfuncWrapper) else None


def _scores_by_predict(model: Any) -> bool:
    """Whether the model's pyfunc predict is its estimator's `predict` and nothing else (the flavor's
    `predict_fn` may name `predict_proba`, ...; the wrapper ignores `params`, which requests on the fast
    path do not carry)."""
    from modelyard.sklearn import SklearnPyfuncWrapper

    return model._predict_fn == "predict" and type(model._impl).predict is SklearnPyfuncWrapper.predict


def takes_numpy(estimator: Any, names: list[str]) -> bool:
    """Whether `estimator` scores a numpy matrix of `names` (in order) exactly as it scores a DataFrame
    of those columns: it converts the frame to that matrix itself and nothing in it reads column names."""
    try:
        import sklearn
        from sklearn.pipeline import Pipeline
    except ImportError:  # pragma: no cover - the model was unpickled, so scikit-learn is there
        return False
    if sklearn.get_config().get("transform_output", "default") != "default":
        return False
    fitted_names = getattr(estimator, "feature_names_in_", None)
    if fitted_names is not None and [str(n) for n in fitted_names] != names:
        return False
    if isinstance(estimator, Pipeline):
        steps = [step for _, step in estimator.steps if step is not None and step != "passthrough"]
        return bool(steps) and all(_plain_estimator(step) for step in steps)
    return _plain_estimator(estimator)


def _plain_estimator(estimator: Any) -> bool:
    """One of scikit-learn's own estimators with no estimator inside it (no meta-estimator), no user
    function (FunctionTransformer) and no pandas/polars output configured."""
    kind = type(estimator)
    if not kind.__module__.startswith("sklearn.") or kind.__name__ == "FunctionTransformer":
        return False
    output = getattr(estimator, "_sklearn_output_config", None) or {}
    if output.get("transform", "default") != "default":
        return False
    try:
        params = estimator.get_params(deep=False)
    except Exception:  # noqa: BLE001 - not an estimator as scikit-learn defines one
        return False
    return not any(_holds_code(value) for value in params.values())


def _holds_code(value: Any) -> bool:
    """An estimator or a function, or a list/tuple/dict holding one (ColumnTransformer's
    `transformers`, VotingClassifier's `estimators`)."""
    if isinstance(value, (list, tuple)):
        return any(_holds_code(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_code(item) for item in value.values())
    return hasattr(value, "get_params") or callable(value)
