"""The scoring fast path (`modelyard.serving.fast_path`) answers exactly as the general path does.

Each model is served twice in process, with and without the fast path, and every payload of a table
(good and bad ones) must get byte-identical answers from both: status, content type and body. Each
case also says whether the fast path takes it, so the comparison cannot pass by both apps taking the
general path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from modelyard import pyfunc
from modelyard import sklearn as my_sklearn
from modelyard.models import infer_signature
from modelyard.serving import app as serving_app
from modelyard.serving.fast_path import INLINE_MAX_ROWS, InlineGate, compile_fast_path, takes_numpy
from modelyard.settings import Settings

COLUMNS = ["a", "b", "c"]
JSON = "application/json"


class FrameEcho(pyfunc.PythonModel):
    """Shows what the model was given: columns, dtypes, index and values."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "total": model_input.sum(axis=1),
                "seen": repr((list(model_input.columns), model_input.dtypes.astype(str).tolist(), model_input.index.tolist())),
            }
        )


def training_frame(dtype: str = "float64") -> pd.DataFrame:
    rng = np.random.default_rng(7)
    values = rng.normal(size=(60, 3)) * (10 if dtype == "int64" else 1)
    return pd.DataFrame(values.astype(dtype), columns=COLUMNS)


def save_sklearn(path: Path, estimator: Any, dtype: str = "float64") -> Any:
    x = training_frame(dtype)
    y = (x["a"] + x["b"] > 0).astype(int)
    estimator.fit(x, y)
    my_sklearn.save_model(estimator, str(path), signature=infer_signature(x, estimator.predict(x)))
    return pyfunc.load_local_model(path)


def classifier(path: Path) -> Any:
    from sklearn.linear_model import LogisticRegression

    return save_sklearn(path, LogisticRegression())


def regressor(path: Path) -> Any:
    from sklearn.linear_model import LinearRegression

    return save_sklearn(path, LinearRegression())


def pipeline(path: Path) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return save_sklearn(path, make_pipeline(StandardScaler(), LogisticRegression()))


def long_regressor(path: Path) -> Any:
    from sklearn.linear_model import LinearRegression

    return save_sklearn(path, LinearRegression(), dtype="int64")


def frame_echo(path: Path) -> Any:
    x = training_frame()
    pyfunc.save_model(str(path), python_model=FrameEcho(), signature=infer_signature(x))
    return pyfunc.load_local_model(path)


MODELS = {
    "classifier": classifier,
    "regressor": regressor,
    "pipeline": pipeline,
    "long": long_regressor,
    "frame": frame_echo,
}


def split(data: Any, columns: Any = COLUMNS, **extra: Any) -> dict[str, Any]:
    return {"dataframe_split": {"columns": columns, "data": data, **extra}}


ROWS = [[0.5, -1.25, 2.0], [1.0, 0.0, -3.5]]
INT_ROWS = [[1, -2, 3], [4, 5, -6]]
RECORDS = [dict(zip(COLUMNS, row, strict=True)) for row in ROWS]
BIG = [[(r * 7 + c) % 11 / 5 - 1 for c in range(3)] for r in range(300)]

#: name -> (body, content type, fast path takes it for a double schema, ... for a long schema)
CASES: dict[str, tuple[Any, str, bool, bool]] = {
    "split": (split(ROWS), JSON, True, False),
    "split with index": (split(ROWS, index=[10, 11]), JSON, True, False),
    "split with string index": (split(ROWS, index=["x", "y"]), JSON, True, False),
    "split, columns permuted": (split([[2.0, 0.5, -1.25]], ["c", "a", "b"]), JSON, True, False),
    "split, extra column": (split([[0.5, -1.25, 2.0, 9.0]], [*COLUMNS, "d"]), JSON, True, False),
    "split, extra string column": (split([[0.5, -1.25, 2.0, "x"]], [*COLUMNS, "d"]), JSON, False, False),
    "split of ints": (split(INT_ROWS), JSON, True, True),
    "split, ints and floats": (split([[1, 2.5, -3], [0.25, 4, 5]]), JSON, True, False),
    "split, int beyond 64 bits": (split([[2**63, 1.0, 2.0]]), JSON, False, False),
    "split, bool": (split([[True, 1.0, 2.0]]), JSON, False, False),
    "split, string": (split([["1.0", 1.0, 2.0]]), JSON, False, False),
    "split, null": (split([[None, 1.0, 2.0]]), JSON, False, False),
    "split, nested": (split([[[1.0], 1.0, 2.0]]), JSON, False, False),
    "split, ragged": (split([[1.0, 2.0]]), JSON, False, False),
    "split, missing column": (split([[1.0, 2.0]], ["a", "b"]), JSON, False, False),
    "split, duplicate column": (split([[1.0, 2.0, 3.0, 4.0]], ["a", "b", "c", "a"]), JSON, False, False),
    "split, no columns": ({"dataframe_split": {"data": ROWS}}, JSON, False, False),
    "split, no rows": (split([]), JSON, False, False),
    "split, short index": (split(ROWS, index=[1]), JSON, False, False),
    "split, nested index": (split(ROWS, index=[[1, 2], [3, 4]]), JSON, False, False),
    "split of objects": (split(RECORDS), JSON, False, False),
    "split, 300 rows": (split(BIG), JSON, True, False),
    "records": ({"dataframe_records": RECORDS}, JSON, True, False),
    "records of ints": ({"dataframe_records": [dict(zip(COLUMNS, r, strict=True)) for r in INT_ROWS]}, JSON, True, True),
    "records, extra key": ({"dataframe_records": [{**RECORDS[0], "z": "text"}]}, JSON, True, False),
    "records, missing key": ({"dataframe_records": [{"a": 1.0, "b": 2.0}]}, JSON, False, False),
    "records, not objects": ({"dataframe_records": [1, 2]}, JSON, False, False),
    "instances as records": ({"instances": RECORDS}, JSON, True, False),
    "instances as rows": ({"instances": ROWS}, JSON, True, False),
    "inputs as int rows": ({"inputs": INT_ROWS}, JSON, True, True),
    "inputs, bool among floats": ({"inputs": [[True, 1.5, 2.0]]}, JSON, True, False),
    "inputs, all bools": ({"inputs": [[True, False, True]]}, JSON, False, False),
    "inputs, wrong width": ({"inputs": [[1.0, 2.0]]}, JSON, False, False),
    "inputs, one row flat": ({"inputs": [1.0, 2.0, 3.0]}, JSON, False, False),
    "inputs as columns": ({"inputs": {"a": [1.0], "b": [2.0], "c": [3.0]}}, JSON, False, False),
    "with params": ({**split(ROWS), "params": {"k": 1}}, JSON, False, False),
    "with an extra key": ({**split(ROWS), "other": 1}, JSON, False, False),
    "two formats": ({**split(ROWS), "instances": ROWS}, JSON, False, False),
    "a list": ([1, 2], JSON, False, False),
    "malformed": ("{nope", JSON, False, False),
    "empty": ("", JSON, False, False),
    "charset": (split(ROWS), "application/json; charset=utf-8", False, False),
    "csv": ("a,b,c\n1.0,2.0,3.0\n", "text/csv", False, False),
    "xml": ("<a/>", "application/xml", False, False),
}


def encode(body: Any) -> bytes:
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


@pytest.fixture(scope="module", params=sorted(MODELS))
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any, TestClient, TestClient]]:
    model = MODELS[request.param](tmp_path_factory.mktemp(request.param) / "model")
    settings = Settings(model_uri="unused")
    fast_app = serving_app.create_app(settings, model=model)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(serving_app, "compile_fast_path", lambda _model: None)
        slow_app = serving_app.create_app(settings, model=model)
    with TestClient(fast_app, base_url="http://localhost") as fast, TestClient(slow_app, base_url="http://localhost") as slow:
        yield request.param, model, fast, slow


@pytest.mark.parametrize("case", list(CASES))
def test_fast_and_general_paths_answer_alike(served: tuple[str, Any, TestClient, TestClient], case: str) -> None:
    name, model, fast, slow = served
    body, content_type, fast_double, fast_long = CASES[case]
    path = compile_fast_path(model)
    assert path is not None
    takes = content_type == JSON and body not in ("{nope", "") and path.parse(orjson.loads(encode(body))) is not None
    assert takes == (fast_long if name == "long" else fast_double)
    answers = []
    for client in (fast, slow):
        for _ in range(2 if takes else 1):  # the second request of a fast case is scored inline
            response = client.post("/invocations", content=encode(body), headers={"content-type": content_type})
            answers.append((response.status_code, response.headers.get("content-type"), response.content))
    assert all(a == answers[0] for a in answers), answers
    if takes and name != "frame" and answers[0][0] != 200:
        pytest.fail(f"a case the fast path takes failed on the general path: {answers[0]}")


def test_which_models_get_numpy(tmp_path: Path) -> None:
    assert compile_fast_path(classifier(tmp_path / "c")).numpy_input  # type: ignore[union-attr]
    assert compile_fast_path(pipeline(tmp_path / "p")).numpy_input  # type: ignore[union-attr]
    assert not compile_fast_path(frame_echo(tmp_path / "f")).numpy_input  # type: ignore[union-attr]


def test_linear_models_alone_are_scored_by_their_own_arithmetic(tmp_path: Path) -> None:
    """So the table above compares `serving.linear` with the general path for them."""
    scorers = {name: compile_fast_path(MODELS[name](tmp_path / name))._predict for name in MODELS}  # type: ignore[union-attr]
    assert {name: getattr(f, "__name__", "") for name, f in scorers.items()} == {
        "classifier": "classify", "regressor": "regress", "long": "regress",
        "pipeline": "predict_conformed", "frame": "predict_conformed",
    }  # fmt: skip


def test_estimators_that_read_column_names_keep_their_dataframe() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    x, y = training_frame(), np.arange(60) % 2
    plain = LogisticRegression().fit(x, y)
    assert takes_numpy(plain, COLUMNS)
    assert not takes_numpy(plain, ["c", "b", "a"])  # fitted on another column order: sklearn refuses that
    assert takes_numpy(LogisticRegression().fit(x.to_numpy(), y), COLUMNS)
    pandas_out = make_pipeline(StandardScaler().set_output(transform="pandas"), LogisticRegression()).fit(x, y)
    assert not takes_numpy(pandas_out, COLUMNS)
    by_name = make_pipeline(ColumnTransformer([("s", StandardScaler(), ["a", "b"])]), LogisticRegression()).fit(x, y)
    assert not takes_numpy(by_name, COLUMNS)
    user_code = make_pipeline(FunctionTransformer(lambda frame: frame), LogisticRegression()).fit(x, y)
    assert not takes_numpy(user_code, COLUMNS)


def test_schemas_the_fast_path_does_not_serve(tmp_path: Path) -> None:
    mixed = pd.DataFrame({"a": [1.0, 2.0], "b": [1, 2]})
    pyfunc.save_model(str(tmp_path / "mixed"), python_model=FrameEcho(), signature=infer_signature(mixed))
    assert compile_fast_path(pyfunc.load_local_model(tmp_path / "mixed")) is None
    pyfunc.save_model(str(tmp_path / "none"), python_model=FrameEcho())
    assert compile_fast_path(pyfunc.load_local_model(tmp_path / "none")) is None
    assert compile_fast_path(object()) is None


def test_the_inline_gate_opens_after_quick_predictions_and_closes_on_a_slow_one() -> None:
    gate = InlineGate(budget=0.002, warmup=3)
    for _ in range(3):
        assert not gate.open
        gate.record(0.0005)
    assert gate.open
    gate.record(0.01)
    assert not gate.open


def test_only_small_requests_are_scored_inline(tmp_path: Path) -> None:
    path = compile_fast_path(classifier(tmp_path / "m"))
    assert path is not None
    small = path.parse(split(ROWS))
    large = path.parse(split([ROWS[0]] * (INLINE_MAX_ROWS + 1)))
    assert small is not None and large is not None
    for _ in range(3):
        path.predict(small)
    assert path.inline(small) and not path.inline(large)
