"""Signature inference (MLflow's JSON shapes) and predict-time enforcement."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelyard import errors
from modelyard.exceptions import ModelyardException
from modelyard.models import (
    Array,
    ColSpec,
    DataType,
    ModelSignature,
    ParamSchema,
    ParamSpec,
    Schema,
    TensorSpec,
    enforce_params,
    enforce_schema,
    infer_signature,
)


def test_dataframe_columns_infer_mlflow_column_specs():
    frame = pd.DataFrame(
        {
            "a": [1, 2],
            "b": ["x", "y"],
            "c": [True, False],
            "d": np.array([1, 2], dtype=np.int32),
            "e": np.array([1, 2], dtype=np.float32),
            "t": pd.to_datetime(["2020-01-01", "2020-01-02"]),
        }
    )
    signature = infer_signature(frame, pd.Series([1.0, 2.0]))
    assert json.loads(signature.to_dict()["inputs"]) == [
        {"type": "long", "name": "a", "required": True},
        {"type": "string", "name": "b", "required": True},
        {"type": "boolean", "name": "c", "required": True},
        {"type": "integer", "name": "d", "required": True},
        {"type": "float", "name": "e", "required": True},
        {"type": "datetime", "name": "t", "required": True},
    ]
    assert json.loads(signature.to_dict()["outputs"]) == [{"type": "double", "required": True}]
    assert signature.to_dict()["params"] is None


def test_numpy_array_infers_tensor_with_free_batch_axis():
    signature = infer_signature(np.zeros((3, 2)), np.zeros(3, dtype=np.int64))
    assert json.loads(signature.to_dict()["inputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 2]}}
    ]
    assert json.loads(signature.to_dict()["outputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}
    ]


def test_dicts_and_lists_infer_named_and_unnamed_columns():
    assert infer_signature({"a": 1, "b": "x"}).inputs == Schema.of(
        ColSpec(DataType.long, "a"), ColSpec(DataType.string, "b")
    )
    assert infer_signature(["a", "b"]).inputs == Schema.of(ColSpec(DataType.string))
    assert infer_signature([{"a": 1}, {"a": 2, "b": 1.5}]).inputs == Schema.of(
        ColSpec(DataType.long, "a"), ColSpec(DataType.double, "b", required=False)
    )
    assert infer_signature({"x": [1, 2]}).inputs == Schema.of(ColSpec(Array(DataType.long), "x"))
    assert infer_signature({"a": np.array([1, 2])}).inputs == Schema.of(TensorSpec("int64", (-1,), "a"))


def test_params_infer_types_defaults_and_list_shape():
    params = infer_signature(
        pd.DataFrame({"a": [1]}), params={"s": "x", "f": 1.5, "b": True, "l": [1, 2]}
    ).params
    assert json.loads(params.to_json()) == [
        {"name": "s", "default": "x", "shape": None, "type": "string"},
        {"name": "f", "default": 1.5, "shape": None, "type": "double"},
        {"name": "b", "default": True, "shape": None, "type": "boolean"},
        {"name": "l", "default": [1, 2], "shape": [-1], "type": "long"},
    ]


def test_signature_json_round_trips_including_nested_types():
    original = {
        "inputs": json.dumps(
            [
                {"type": "array", "items": {"type": "long"}, "name": "x", "required": True},
                {
                    "type": "object",
                    "properties": {"k": {"type": "string", "required": False}},
                    "name": "o",
                    "required": True,
                },
                {"type": "map", "values": {"type": "double"}, "name": "m", "required": False},
            ]
        ),
        "outputs": json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}]),
        "params": json.dumps([{"name": "k", "default": 1, "shape": None, "type": "long"}]),
    }
    parsed = ModelSignature.from_dict(original)
    assert {k: json.loads(v) for k, v in parsed.to_dict().items()} == {
        k: json.loads(v) for k, v in original.items()
    }


def test_mixed_column_and_tensor_specs_are_rejected():
    with pytest.raises(ModelyardException):
        Schema.of(ColSpec(DataType.long, "a"), TensorSpec("int64", (-1,), "b"))


# --- enforcement -------------------------------------------------------------------------------------

SCHEMA = Schema.of(ColSpec(DataType.double, "a"), ColSpec(DataType.long, "b"))


def _error(call) -> ModelyardException:
    with pytest.raises(ModelyardException) as info:
        call()
    assert info.value.error_code == errors.INVALID_PARAMETER_VALUE
    assert info.value.http_status == 400
    return info.value


def test_missing_column_is_invalid_parameter_naming_it():
    error = _error(lambda: enforce_schema(pd.DataFrame({"a": [1.0]}), SCHEMA))
    assert "['b']" in error.message


def test_int_to_double_converts_and_columns_are_reordered_and_trimmed():
    out = enforce_schema(pd.DataFrame({"extra": ["z"], "b": [2], "a": [1]}), SCHEMA)
    assert list(out.columns) == ["a", "b"]
    assert out["a"].dtype == np.float64
    assert out["b"].dtype == np.int64


def test_int32_widens_to_long():
    out = enforce_schema(pd.DataFrame({"a": [1.0], "b": np.array([3], dtype=np.int32)}), SCHEMA)
    assert out["b"].dtype == np.int64


def test_float_into_long_column_is_an_error_naming_the_column():
    error = _error(lambda: enforce_schema(pd.DataFrame({"a": [1.0], "b": [1.5]}), SCHEMA))
    assert "column b" in error.message


def test_string_into_double_column_is_an_error_naming_the_column():
    error = _error(lambda: enforce_schema([{"a": "oops", "b": 1}], SCHEMA))
    assert "column a" in error.message


def test_records_and_dict_inputs_become_frames():
    assert enforce_schema([{"a": 1, "b": 2}], SCHEMA).to_dict("records") == [{"a": 1.0, "b": 2}]
    assert enforce_schema({"a": [1.0, 2.0], "b": [3, 4]}, SCHEMA)["b"].tolist() == [3, 4]
    assert enforce_schema({"a": 1.0, "b": 3}, SCHEMA).shape == (1, 2)


def test_positional_rows_get_schema_column_names():
    out = enforce_schema(
        np.array([[1.0, 2.0]]), Schema.of(ColSpec(DataType.double, "a"), ColSpec(DataType.double, "b"))
    )
    assert list(out.columns) == ["a", "b"]


def test_optional_column_may_be_missing_or_null():
    schema = Schema.of(ColSpec(DataType.long, "a"), ColSpec(DataType.string, "s", required=False))
    assert list(enforce_schema(pd.DataFrame({"a": [1]}), schema).columns) == ["a"]
    out = enforce_schema(pd.DataFrame({"a": [1, 2], "s": ["x", None]}), schema)
    assert out["s"].tolist() == ["x", None]


def test_required_column_with_missing_values_is_rejected():
    schema = Schema.of(ColSpec(DataType.long, "a"))
    error = _error(lambda: enforce_schema(pd.DataFrame({"a": [1.0, None]}), schema))
    assert "a" in error.message


def test_array_column_items_are_checked():
    schema = Schema.of(ColSpec(Array(DataType.long), "x"))
    assert enforce_schema({"x": [1, 2]}, schema)["x"].tolist() == [[1, 2]]
    error = _error(lambda: enforce_schema({"x": ["a"]}, schema))
    assert "x" in error.message


def test_unnamed_single_column_accepts_a_list():
    schema = Schema.of(ColSpec(DataType.string))
    assert enforce_schema(["a", "b"], schema) == ["a", "b"]
    _error(lambda: enforce_schema([1, 2], schema))


def test_tensor_shape_and_dtype_are_enforced():
    schema = Schema.of(TensorSpec("float64", (-1, 2)))
    assert enforce_schema(np.ones((4, 2), dtype=np.float32), schema).dtype == np.float64
    assert "shape" in _error(lambda: enforce_schema(np.ones((4, 3)), schema)).message
    assert "dtype" in _error(lambda: enforce_schema(np.array([["a", "b"]]), schema)).message


def test_params_fill_defaults_convert_and_drop_unknown():
    schema = ParamSchema(
        (
            ParamSpec("k", DataType.long, 1),
            ParamSpec("t", DataType.double, 0.5),
            ParamSpec("l", DataType.string, ["a"], (-1,)),
        )
    )
    assert enforce_params({"t": 2, "zzz": 1}, schema) == {"k": 1, "t": 2.0, "l": ["a"]}
    assert "'k'" in _error(lambda: enforce_params({"k": "many"}, schema)).message
    assert "'l'" in _error(lambda: enforce_params({"l": "a"}, schema)).message
    assert enforce_params({"x": 1}, None) is None


def test_enforcement_never_modifies_the_callers_frame():
    frame = pd.DataFrame({1: [1], "b": np.array([2], dtype=np.int32), "a": [3]})
    schema = Schema.of(
        ColSpec(DataType.double, "a"), ColSpec(DataType.long, "b"), ColSpec(DataType.long, "1")
    )
    out = enforce_schema(frame, schema)
    assert list(out.columns) == ["a", "b", "1"] and out["a"].dtype == np.float64
    assert (
        list(frame.columns) == [1, "b", "a"] and frame["a"].dtype == np.int64 and frame["b"].dtype == np.int32
    )


def test_required_means_present_missing_values_fail_only_where_the_type_cannot_hold_them():
    # MLflow's meaning of "required": the column must be there. NaN is a double; None passes in a
    # string column; an integer or boolean column cannot hold a missing value.
    schema = Schema.of(ColSpec(DataType.double, "x"), ColSpec(DataType.string, "s"))
    out = enforce_schema(pd.DataFrame({"x": [1.0, np.nan], "s": ["a", None]}), schema)
    assert out["x"].isna().tolist() == [False, True] and out["s"].tolist() == ["a", None]
    longs = Schema.of(ColSpec(DataType.long, "n"))
    assert (
        "'n'"
        in _error(
            lambda: enforce_schema(pd.DataFrame({"n": pd.Series([1, None], dtype="Int64")}), longs)
        ).message
    )


def test_int_to_float32_only_when_lossless():
    schema = Schema.of(ColSpec(DataType.float, "x"))
    assert (
        enforce_schema(pd.DataFrame({"x": np.array([1, 2], dtype=np.int8)}), schema)["x"].dtype == np.float32
    )
    assert "column x" in _error(lambda: enforce_schema(pd.DataFrame({"x": [1, 2]}), schema)).message


def test_optional_nullable_integer_column_keeps_its_missing_values():
    schema = infer_signature(pd.DataFrame({"i": pd.Series([1, None], dtype="Int64")})).inputs
    assert schema == Schema.of(ColSpec(DataType.long, "i", required=False))
    out = enforce_schema(pd.DataFrame({"i": pd.Series([3, None], dtype="Int64")}), schema)
    assert out["i"].tolist() == [3, None]
    with pytest.raises(ModelyardException):
        enforce_schema(
            pd.DataFrame({"i": pd.Series([3, None], dtype="Int64")}), Schema.of(ColSpec(DataType.long, "i"))
        )
