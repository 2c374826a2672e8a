"""The `MLmodel` file: the YAML at the root of a model directory that says how to load it.

Keys match MLflow's so either library reads the other's directories. Keys we do not know are kept and
written back unchanged (MLflow adds fields between releases; dropping them would corrupt a round trip).
We write `modelyard_version` rather than claim an `mlflow_version`: MLflow's loader treats a missing
`mlflow_version` as unknown and needs nothing from it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelyard.exceptions import ModelyardException
from modelyard.models.environment import SAFE_DUMPER
from modelyard.models.schema import ParamSchema, Schema
from modelyard.models.signature import ModelSignature
from modelyard.protocol import text_parsing
from modelyard.version import __version__

MLMODEL_FILE_NAME = "MLmodel"
INPUT_EXAMPLE_FILE = "input_example.json"
SERVING_INPUT_EXAMPLE_FILE = "serving_input_example.json"

_KNOWN_KEYS = (
    "artifact_path",
    "run_id",
    "utc_time_created",
    "flavors",
    "signature",
    "saved_input_example_info",
    "model_uuid",
    "model_id",
    "model_size_bytes",
    "metadata",
)


@dataclass
class Model:
    flavors: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifact_path: str | None = None
    run_id: str | None = None
    utc_time_created: str = field(
        default_factory=lambda: str(_dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None))
    )
    signature: ModelSignature | None = None
    saved_input_example_info: dict[str, Any] | None = None
    model_uuid: str = field(default_factory=lambda: uuid.uuid4().hex)
    model_id: str | None = None
    model_size_bytes: int | None = None
    metadata: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def add_flavor(self, name: str, **params: Any) -> Model:
        self.flavors[name] = params
        return self

    def flavor(self, name: str) -> dict[str, Any]:
        conf = self.flavors.get(name)
        if conf is None:
            raise ModelyardException.not_found(
                f'Model does not have the "{name}" flavor (it has: {", ".join(sorted(self.flavors)) or "none"})'
            )
        return conf

    # MLflow's accessor names: the serving app and user code call these on `PyFuncModel.metadata`.
    def get_input_schema(self) -> Schema | None:
        return self.signature.inputs if self.signature is not None else None

    def get_output_schema(self) -> Schema | None:
        return self.signature.outputs if self.signature is not None else None

    def get_params_schema(self) -> ParamSchema | None:
        return self.signature.params if self.signature is not None else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.extra}
        out.update(
            artifact_path=self.artifact_path,
            flavors=self.flavors,
            model_id=self.model_id,
            model_size_bytes=self.model_size_bytes,
            model_uuid=self.model_uuid,
            modelyard_version=self.extra.get("modelyard_version", __version__),
            run_id=self.run_id,
            utc_time_created=self.utc_time_created,
        )
        if self.artifact_path is None:
            del out["artifact_path"]
        if self.run_id is None:
            del out["run_id"]
        if self.signature is not None:
            out["signature"] = self.signature.to_dict()
        if self.saved_input_example_info is not None:
            out["saved_input_example_info"] = self.saved_input_example_info
        if self.metadata is not None:
            out["metadata"] = self.metadata
        return out

    def to_yaml(self) -> str:
        return yaml.dump(self.to_dict(), Dumper=SAFE_DUMPER, default_flow_style=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        if not isinstance(data, dict) or not isinstance(data.get("flavors", {}), dict):
            raise ModelyardException.invalid_parameter(
                "Malformed MLmodel file: expected a mapping with 'flavors'"
            )
        signature = data.get("signature")
        return cls(
            flavors=dict(data.get("flavors") or {}),
            artifact_path=data.get("artifact_path"),
            run_id=data.get("run_id"),
            utc_time_created=str(data.get("utc_time_created") or ""),
            signature=ModelSignature.from_dict(signature) if isinstance(signature, dict) else None,
            saved_input_example_info=data.get("saved_input_example_info"),
            model_uuid=data.get("model_uuid") or "",
            model_id=data.get("model_id"),
            model_size_bytes=data.get("model_size_bytes"),
            metadata=data.get("metadata"),
            extra={k: v for k, v in data.items() if k not in _KNOWN_KEYS},
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        if target.is_dir():
            target = target / MLMODEL_FILE_NAME
        target.write_text(self.to_yaml())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Model:
        """`path` is a model directory or its MLmodel file."""
        target = Path(path)
        if target.is_dir():
            target = target / MLMODEL_FILE_NAME
        if not target.is_file():
            raise ModelyardException.not_found(
                f'Could not find an "{MLMODEL_FILE_NAME}" configuration file at "{path}"'
            )
        try:
            data = text_parsing.load_yaml(target.read_text())
        except yaml.YAMLError as exc:
            raise ModelyardException.invalid_parameter(f"Malformed MLmodel file at {target}: {exc}") from exc
        return cls.from_dict(data)

    def load_input_example(self, model_dir: str | os.PathLike[str]) -> Any:
        return load_input_example(self, model_dir)


@dataclass(frozen=True)
class ModelInfo:
    """What `log_model` returns; attribute names are MLflow's `ModelInfo`'s."""

    artifact_path: str
    flavors: dict[str, Any]
    model_uri: str
    model_uuid: str
    run_id: str | None
    model_id: str | None
    signature: ModelSignature | None
    utc_time_created: str
    saved_input_example_info: dict[str, Any] | None = None
    registered_model_version: int | None = None
    metadata: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.artifact_path


def split_example(example: Any) -> tuple[Any, dict[str, Any] | None]:
    """`(data, params)` tuples carry inference params next to the data, as in MLflow."""
    if isinstance(example, tuple) and len(example) == 2 and isinstance(example[1], dict):
        return example[0], example[1]
    return example, None


def save_input_example(model: Model, model_dir: str | os.PathLike[str], example: Any) -> None:
    """Write input_example.json (+ serving_input_example.json) and describe it in `model`, in MLflow's layout."""
    data, params = split_example(example)
    info, stored, serving = _encode_example(data)
    if params is not None:
        # MLflow's layout: data and params under their own keys, a "params" marker in the info.
        info["params"] = "true"
        stored = {"inputs": stored, "params": params}
        serving = {**serving, "params": params}
    directory = Path(model_dir)
    (directory / INPUT_EXAMPLE_FILE).write_text(json.dumps(stored, default=_json_default))
    (directory / SERVING_INPUT_EXAMPLE_FILE).write_text(json.dumps(serving, default=_json_default, indent=2))
    model.saved_input_example_info = {
        "artifact_path": INPUT_EXAMPLE_FILE,
        "serving_input_path": SERVING_INPUT_EXAMPLE_FILE,
        **info,
    }


def _encode_example(example: Any) -> tuple[dict[str, Any], Any, Any]:
    import numpy as np
    import pandas as pd

    if isinstance(example, pd.Series):
        example = example.to_frame()
    if isinstance(example, pd.DataFrame):
        # Python's floats at full precision, NaN as NaN and times by isoformat, as MLflow writes them
        # (pandas' to_json would round to 10 digits and write NaN as null).
        split = example.to_dict(orient="split", index=False)
        return {"type": "dataframe", "pandas_orient": "split"}, split, {"dataframe_split": split}
    if isinstance(example, np.ndarray):
        return {"type": "ndarray"}, example.tolist(), {"inputs": example.tolist()}
    if isinstance(example, dict) and example and all(isinstance(v, np.ndarray) for v in example.values()):
        data = {k: v.tolist() for k, v in example.items()}
        return {"type": "ndarray"}, data, {"inputs": data}
    if isinstance(example, (dict, list, str, int, float, bool)):
        return {"type": "json_object"}, example, {"inputs": example}
    raise ModelyardException.invalid_parameter(
        f"Unsupported input example type {type(example).__name__}: use a DataFrame, numpy array, dict, list or scalar"
    )


def load_input_example(model: Model, model_dir: str | os.PathLike[str]) -> Any:
    info = model.saved_input_example_info
    if not info:
        return None
    path = Path(model_dir) / info.get("artifact_path", INPUT_EXAMPLE_FILE)
    data = json.loads(path.read_text())
    if info.get("params"):
        data = data["inputs"]
    if info.get("type") == "dataframe":
        import pandas as pd

        if info.get("pandas_orient", "split") == "records":
            return pd.DataFrame.from_records(data)
        return pd.DataFrame(data.get("data", []), columns=data.get("columns"))
    if info.get("type") == "ndarray":
        import numpy as np

        if isinstance(data, dict) and "inputs" in data and len(data) == 1:
            data = data["inputs"]
        return {k: np.asarray(v) for k, v in data.items()} if isinstance(data, dict) else np.asarray(data)
    return data


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
