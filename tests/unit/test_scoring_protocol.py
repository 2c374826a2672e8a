"""MLflow's scoring protocol: request decoding and response encoding (pure logic)."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

from modelyard.exceptions import ModelyardException
from modelyard.serving.protocol import UnsupportedContentType, parse_request, predictions_to_json


def _json(payload: object) -> bytes:
    return orjson.dumps(payload)


def test_dataframe_split_builds_columns_in_order() -> None:
    req = parse_request(
        _json({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2.5], [3, 4.5]]}}), "application/json"
    )
    assert list(req.data.columns) == ["a", "b"]
    assert req.data["b"].tolist() == [2.5, 4.5]
    assert req.params is None


def test_dataframe_records_and_params() -> None:
    req = parse_request(
        _json({"dataframe_records": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], "params": {"k": 3}}),
        "application/json; charset=utf-8",
    )
    assert req.data.to_dict(orient="list") == {"a": [1, 2], "b": ["x", "y"]}
    assert req.params == {"k": 3}


def test_instances_rows_take_the_model_column_names() -> None:
    req = parse_request(_json({"instances": [[1, 2], [3, 4]]}), "application/json", column_names=["x", "y"])
    assert isinstance(req.data, pd.DataFrame)
    assert list(req.data.columns) == ["x", "y"]


def test_inputs_without_schema_is_a_numpy_array() -> None:
    req = parse_request(_json({"inputs": [[1.0, 2.0], [3.0, 4.0]]}), "application/json")
    assert isinstance(req.data, np.ndarray) and req.data.shape == (2, 2)


def test_inputs_as_columns_object() -> None:
    req = parse_request(_json({"inputs": {"a": [1, 2], "b": [3, 4]}}), "application/json")
    assert req.data.shape == (2, 2)


def test_csv_body() -> None:
    req = parse_request(b"a,b\n1,2\n3,4\n", "text/csv")
    assert req.data["a"].tolist() == [1, 3]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        _json({"data": [[1]]}),
        _json({"instances": [[1]], "inputs": [[1]]}),
        _json({"dataframe_split": {"columns": ["a"]}}),
        _json({"dataframe_records": [1, 2]}),
        _json({"instances": [[1, 2], [3]]}),
        _json({"dataframe_split": {"columns": ["a"], "data": [[1]]}, "params": [1]}),
    ],
)
def test_malformed_payloads_are_bad_requests(body: bytes) -> None:
    with pytest.raises(ModelyardException) as info:
        parse_request(body, "application/json")
    assert info.value.error_code == "BAD_REQUEST"
    assert info.value.http_status == 400
    assert info.value.message


@pytest.mark.parametrize(
    "content_type", ["application/xml", "application/json; charset=latin-1", "text/csv; foo=bar"]
)
def test_unsupported_content_types_are_415(content_type: str) -> None:
    with pytest.raises(UnsupportedContentType):
        parse_request(b"a", content_type)


def test_predictions_json_shapes() -> None:
    assert orjson.loads(predictions_to_json(np.array([1, 2]))) == {"predictions": [1, 2]}
    assert orjson.loads(predictions_to_json(pd.Series([0.5]))) == {"predictions": [0.5]}
    frame = pd.DataFrame({"p": [1, 2], "label": ["a", "b"]})
    assert orjson.loads(predictions_to_json(frame)) == {
        "predictions": [{"p": 1, "label": "a"}, {"p": 2, "label": "b"}]
    }
    assert orjson.loads(predictions_to_json(np.array(["x", "y"], dtype=object))) == {
        "predictions": ["x", "y"]
    }


def test_numbers_are_read_as_the_schema_types_them_and_float32_written_back_as_mlflow_writes_it() -> None:
    from modelyard.models.schema import ColSpec, DataType, Schema, TensorSpec
    from modelyard.serving.protocol import input_tensor_dtype

    tensor = Schema.of(TensorSpec("float32", (-1, 3)))
    assert input_tensor_dtype(tensor) == "float32"
    assert input_tensor_dtype(Schema.of(TensorSpec("float32", (-1,), "x"), TensorSpec("float32", (-1,), "y"))) is None
    assert input_tensor_dtype(Schema.of(TensorSpec("object", (-1,)))) is None  # strings stay as they come
    assert input_tensor_dtype(Schema.of(ColSpec(DataType.float, "a"))) is None
    assert input_tensor_dtype(None) is None
    req = parse_request(_json({"inputs": [[0.1, 2, 3], [4, 5, 6]]}), "application/json", schema=tensor)
    assert req.data.dtype == np.float32 and req.data.shape == (2, 3)
    strings = parse_request(_json({"inputs": [["a", "b", "c"]]}), "application/json", schema=tensor)
    assert strings.data.dtype.kind == "U"  # left as sent: enforcement answers its own error

    columns = Schema.of(ColSpec(DataType.float, "a"), ColSpec(DataType.integer, "b"), ColSpec(DataType.string, "c"))
    body = {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[0.5, 1, "x"], [1, 2, "y"]]}}
    frame = parse_request(_json(body), "application/json", schema=columns).data
    assert [str(t) for t in frame.dtypes[:2]] == ["float32", "int32"] and frame["c"].tolist() == ["x", "y"]
    no_truncation = {"dataframe_records": [{"a": 1.0, "b": 1.5, "c": "x"}]}
    assert str(parse_request(_json(no_truncation), "application/json", schema=columns).data["b"].dtype) == "float64"
    csv = parse_request(b"a,b,c\n0.5,1,x\n", "text/csv", schema=columns).data
    assert [str(t) for t in csv.dtypes[:2]] == ["float32", "int32"]
    # A float32 is written as the float64 it widens to (Python's json of float(np.float32(x))).
    assert predictions_to_json(np.array([[0.1]], dtype=np.float32)) == b'{"predictions":[[0.10000000149011612]]}'
    numbered = pd.DataFrame(np.array([[0.5, 1.5]], dtype=np.float32))  # a tensor model's frame: columns 0, 1
    assert predictions_to_json(numbered) == b'{"predictions":[{"0":0.5,"1":1.5}]}'
