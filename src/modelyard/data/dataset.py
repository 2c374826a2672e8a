"""Datasets as MLflow's run inputs describe them: name, digest, source, schema and profile.

`PandasDataset` and `NumpyDataset` keep the data (for evaluate and autologging) and render the
`dataset` object of a log-inputs request (`to_dict`), the same fields the mlflow client sends, so
both clients' inputs look alike on the run page.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any

from modelyard.data.digest import array_digest, frame_digest
from modelyard.data.sources import DatasetSource

DEFAULT_NAME = "dataset"


class Dataset(ABC):
    """Base class: subclasses provide `_digest`, `schema_json` and `profile`."""

    def __init__(self, source: DatasetSource, name: str | None = None, digest: str | None = None) -> None:
        self._source = source
        self._name = name or DEFAULT_NAME
        self._digest = digest or self._compute_digest()

    @abstractmethod
    def _compute_digest(self) -> str:
        """The content digest MLflow records for this kind of data (frames and arrays hash differently)."""

    @property
    def name(self) -> str:
        return self._name

    @property
    def digest(self) -> str:
        return self._digest

    @property
    def source(self) -> DatasetSource:
        return self._source

    @property
    def profile(self) -> dict[str, Any] | None:
        return None

    def schema_json(self) -> str | None:
        return None

    def to_dict(self) -> dict[str, str]:
        """The log-inputs `dataset` object (source, schema and profile are JSON strings)."""
        out = {
            "name": self.name,
            "digest": self.digest,
            "source": self.source.to_json(),
            "source_type": self.source.source_type,
        }
        schema = self.schema_json()
        if schema is not None:
            out["schema"] = schema
        if self.profile is not None:
            out["profile"] = json.dumps(self.profile)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, digest={self.digest!r})"


class PandasDataset(Dataset):
    """A DataFrame, optionally naming its target and predictions columns."""

    def __init__(
        self,
        df: Any,
        source: DatasetSource,
        targets: str | None = None,
        name: str | None = None,
        digest: str | None = None,
        predictions: str | None = None,
    ) -> None:
        for column, what in ((targets, "targets"), (predictions, "predictions")):
            if column is not None and column not in df.columns:
                from modelyard.exceptions import ModelyardException

                raise ModelyardException.invalid_parameter(
                    f"The {what} column {column!r} is not a column of the DataFrame"
                )
        self._df = df
        self._targets = targets
        self._predictions = predictions
        super().__init__(source, name, digest)

    def _compute_digest(self) -> str:
        return frame_digest(self._df)

    @property
    def df(self) -> Any:
        return self._df

    @property
    def targets(self) -> str | None:
        return self._targets

    @property
    def predictions(self) -> str | None:
        return self._predictions

    @property
    def features(self) -> Any:
        drop = [c for c in (self._targets, self._predictions) if c is not None]
        return self._df.drop(columns=drop) if drop else self._df

    @property
    def profile(self) -> dict[str, Any]:
        return {"num_rows": len(self._df), "num_elements": int(self._df.size)}

    def schema_json(self) -> str | None:
        from modelyard.exceptions import ModelyardException
        from modelyard.models.signature import infer_schema

        try:
            return json.dumps({"mlflow_colspec": infer_schema(self._df).to_list()})
        except ModelyardException:
            return None  # a column of a type schemas cannot describe: the input still logs


class NumpyDataset(Dataset):
    """Feature and target arrays (or dicts of arrays)."""

    def __init__(
        self,
        features: Any,
        source: DatasetSource,
        targets: Any = None,
        name: str | None = None,
        digest: str | None = None,
    ) -> None:
        self._features = features
        self._targets = targets
        super().__init__(source, name, digest)

    def _compute_digest(self) -> str:
        return array_digest(self._features, self._targets)

    @property
    def features(self) -> Any:
        return self._features

    @property
    def targets(self) -> Any:
        return self._targets

    @property
    def profile(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for prefix, value in (("features", self._features), ("targets", self._targets)):
            if value is None:
                continue
            if isinstance(value, dict):
                out[f"{prefix}_shape"] = {k: list(v.shape) for k, v in value.items()}
                out[f"{prefix}_size"] = {k: int(v.size) for k, v in value.items()}
                out[f"{prefix}_nbytes"] = {k: int(v.nbytes) for k, v in value.items()}
            else:
                out[f"{prefix}_shape"] = list(value.shape)
                out[f"{prefix}_size"] = int(value.size)
                out[f"{prefix}_nbytes"] = int(value.nbytes)
        return out

    def schema_json(self) -> str:
        from modelyard.models.signature import infer_schema

        tensors: dict[str, str | None] = {
            "features": infer_schema(self._features).to_json(),
            "targets": None if self._targets is None else infer_schema(self._targets).to_json(),
        }
        return json.dumps({"mlflow_tensorspec": tensors})


def from_pandas(
    df: Any,
    source: Any = None,
    targets: str | None = None,
    name: str | None = None,
    digest: str | None = None,
    predictions: str | None = None,
) -> PandasDataset:
    """A dataset of a DataFrame; `source` is a path/URI (or a DatasetSource), else the calling code."""
    from modelyard.data.sources import code_source, resolve_source

    resolved = code_source() if source is None else resolve_source(source)
    return PandasDataset(df, resolved, targets, name, digest, predictions)


def from_numpy(
    features: Any, source: Any = None, targets: Any = None, name: str | None = None, digest: str | None = None
) -> NumpyDataset:
    """A dataset of numpy arrays (or dicts of arrays)."""
    import numpy as np

    from modelyard.data.sources import code_source, resolve_source

    def as_array(value: Any) -> Any:
        if value is None or isinstance(value, dict):
            return value
        return np.asarray(value)

    resolved = code_source() if source is None else resolve_source(source)
    return NumpyDataset(as_array(features), resolved, as_array(targets), name, digest)
