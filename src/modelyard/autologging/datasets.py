"""The dataset inputs autologging records: the training data of a fit, the data a model scored.

pandas features become a `PandasDataset` (features only, as MLflow logs them), anything array-like a
`NumpyDataset` of features and targets. Data that is neither (sparse matrices, lists of strings)
is simply not logged.
"""

from __future__ import annotations

from typing import Any

from modelyard.data.dataset import Dataset


def dataset_of(X: Any, y: Any = None, name: str | None = None) -> Dataset | None:
    import numpy as np
    import pandas as pd

    from modelyard.data import from_numpy, from_pandas

    if isinstance(X, pd.DataFrame):
        return from_pandas(X, name=name)
    try:
        features = np.asarray(X)
        if features.dtype == object:
            return None
        targets = None if y is None else np.asarray(y)
    except Exception:
        return None
    return from_numpy(features, targets=targets, name=name)


def log_dataset(run_id: str, dataset: Dataset, context: str) -> None:
    from modelyard.client import Client
    from modelyard.data.inputs import dataset_input

    Client().log_inputs(run_id, [dataset_input(dataset, context)])
