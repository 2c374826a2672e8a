"""Dataset inputs built by modelyard equal the real mlflow's for the same data: digest, source,
schema and profile (the `dataset` object of a log-inputs request)."""

from __future__ import annotations

import json

import mlflow.data
import numpy as np
import pandas as pd
import pytest

import modelyard.data
from modelyard.data.inputs import CONTEXT_TAG, dataset_input
from modelyard.exceptions import ModelyardException

pytestmark = pytest.mark.compat

FRAMES = {
    "mixed": pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None], "c": [0.5, np.nan, 2.0]}),
    "strings": pd.DataFrame({"s": ["p", "q"], "n": [1.5, 2.5]}),
    "wide": pd.DataFrame(np.random.default_rng(3).normal(size=(50, 6)), columns=list("fedcba")),
}


def _without_code_source(d: dict) -> dict:
    # a "code" source records the running program, which each client names its own way
    return {k: v for k, v in d.items() if not (k == "source" and d.get("source_type") == "code")}


@pytest.mark.parametrize("frame", list(FRAMES))
@pytest.mark.parametrize(
    "source", [None, "/data/train.csv", "https://example.com/t.csv", "s3://bucket/t.parquet"]
)
def test_pandas_datasets_equal_mlflows(frame: str, source: str | None) -> None:
    df = FRAMES[frame]
    ours = modelyard.data.from_pandas(df, source=source, name="train", targets=df.columns[0]).to_dict()
    theirs = mlflow.data.from_pandas(df, source=source, name="train", targets=df.columns[0]).to_dict()
    assert _without_code_source(ours) == _without_code_source(theirs)


@pytest.mark.parametrize("with_targets", [False, True])
def test_numpy_datasets_equal_mlflows(with_targets: bool) -> None:
    rng = np.random.default_rng(5)
    features = rng.normal(size=(30, 4)).astype(np.float32)
    targets = rng.integers(0, 3, size=30) if with_targets else None
    ours = modelyard.data.from_numpy(features, targets=targets, source="s3://b/k").to_dict()
    theirs = mlflow.data.from_numpy(features, targets=targets, source="s3://b/k").to_dict()
    assert ours == theirs


def test_dataset_input_carries_the_context_tag() -> None:
    dataset = modelyard.data.from_pandas(FRAMES["strings"], name="small")
    entry = dataset_input(dataset, "training", {"split": "a"})
    assert entry["tags"] == [{"key": "split", "value": "a"}, {"key": CONTEXT_TAG, "value": "training"}]
    assert json.loads(entry["dataset"]["profile"]) == {"num_rows": 2, "num_elements": 4}


def test_unknown_targets_column_is_refused() -> None:
    with pytest.raises(ModelyardException, match="targets column 'nope'"):
        modelyard.data.from_pandas(FRAMES["strings"], targets="nope")
