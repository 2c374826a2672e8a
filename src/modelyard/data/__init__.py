"""Datasets as run inputs (`from_pandas`, `from_numpy`, `log_input`), MLflow's `mlflow.data` names."""

from __future__ import annotations

from modelyard.data.dataset import Dataset, NumpyDataset, PandasDataset, from_numpy, from_pandas
from modelyard.data.sources import DatasetSource

__all__ = ["Dataset", "DatasetSource", "NumpyDataset", "PandasDataset", "from_numpy", "from_pandas"]
