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
