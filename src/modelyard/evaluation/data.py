"""The evaluation data, checked whole before any run exists: features, targets, dataset.

Accepts a pandas DataFrame (targets name a column), numpy arrays (targets an array of the same length)
or a `PandasDataset` with targets. Every mistake (unknown column, mismatched lengths, no targets) is a
clear `ModelyardException` raised here, so `evaluate` never leaves a half-made run behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelyard.data.dataset import Dataset, PandasDataset
from modelyard.exceptions import ModelyardException


@dataclass
class EvalData:
    features: Any  # a DataFrame (numpy input gets feature_1..n column names)
    targets: Any  # a 1-D numpy array
    predictions: Any  # precomputed predictions (numpy) or None
    dataset: Dataset


def prepare(data: Any, targets: Any, predictions: str | None, feature_names: list[str] | None) -> EvalData:
    import numpy as np
    import pandas as pd

    from modelyard.data import from_numpy, from_pandas

    if isinstance(data, PandasDataset):
        targets = targets if targets is not None else data.targets
        predictions = predictions if predictions is not None else data.predictions
        dataset: Dataset | None = data
        data = data.df
    else:
        dataset = None
    if targets is None:
        raise ModelyardException.invalid_parameter(
            "evaluate needs `targets`: a column name or an array of labels"
        )
    if isinstance(data, pd.DataFrame):
        if not isinstance(targets, str):
            raise ModelyardException.invalid_parameter(
                "With a DataFrame, `targets` must name its label column, got " + type(targets).__name__
            )
        for column, what in ((targets, "targets"), (predictions, "predictions")):
            if column is not None and column not in data.columns:
                raise ModelyardException.invalid_parameter(
                    f"The {what} column {column!r} is not in the data (columns: {list(data.columns)})"
                )
        drop = [c for c in (targets, predictions) if c is not None]
        features = data.drop(columns=drop)
        if feature_names is not None:
            missing = [f for f in feature_names if f not in features.columns]
            if missing:
                raise ModelyardException.invalid_parameter(f"feature_names not in the data: {missing}")
            features = features[list(feature_names)]
        y = data[targets].to_numpy()
        preds = None if predictions is None else data[predictions].to_numpy()
        dataset = dataset or from_pandas(data, targets=targets, predictions=predictions)
    else:
        if predictions is not None:
            raise ModelyardException.invalid_parameter(
                "`predictions` names a column: it needs DataFrame data"
            )
        try:
            array = np.asarray(data)
            y = np.asarray(targets)
        except Exception as error:
            raise ModelyardException.invalid_parameter(
                f"evaluate data must be a DataFrame or arrays: {error}"
            ) from None
        if array.ndim != 2:
            raise ModelyardException.invalid_parameter(
                f"Array data must be 2-dimensional (rows x features), got shape {array.shape}"
            )
        if y.ndim != 1:
            raise ModelyardException.invalid_parameter(f"targets must be 1-dimensional, got shape {y.shape}")
        names = (
            list(feature_names)
            if feature_names is not None
            else [f"feature_{i + 1}" for i in range(array.shape[1])]
        )
        if len(names) != array.shape[1]:
            raise ModelyardException.invalid_parameter(
                f"{len(names)} feature_names for {array.shape[1]} feature columns"
            )
        features = pd.DataFrame(array, columns=names)
        preds = None
        dataset = from_numpy(array, targets=y)
    if len(y) != len(features):
        raise ModelyardException.invalid_parameter(
            f"The targets have {len(y)} rows but the data has {len(features)}: they must be the same length"
        )
    if len(y) == 0:
        raise ModelyardException.invalid_parameter("The evaluation data is empty")
    return EvalData(features, y, preds, dataset)
