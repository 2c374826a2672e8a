"""Where a dataset came from: MLflow's dataset sources, as the `source_type` + `source` JSON pair.

A string source is resolved by its scheme (`http(s)` -> "http" with a url, `s3`/`gs`/... -> that
scheme with a uri, anything else a local path); data built in code gets a "code" source carrying the
run-context tags (user, source file), as MLflow's client records it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse


@dataclass(frozen=True)
class DatasetSource:
    """A source type name and the JSON-able fields that locate the data."""

    source_type: str
    fields: dict[str, Any] = field(default_factory=dict)

    def _get_source_type(self) -> str:  # MLflow's method name
        return self.source_type

    def to_dict(self) -> dict[str, Any]:
        return dict(self.fields)

    def to_json(self) -> str:
        return json.dumps(self.fields)

    @property
    def uri(self) -> str | None:
        return self.fields.get("uri") or self.fields.get("url")

    @classmethod
    def from_json(cls, source_type: str, text: str) -> DatasetSource:
        return cls(source_type, json.loads(text) if text else {})


def code_source() -> DatasetSource:
    """Data made by the running program: its context tags, as MLflow's CodeDatasetSource."""
    from modelyard.client.run_context import SOURCE_NAME, SOURCE_TYPE, USER, system_tags

    tags = system_tags()
    return DatasetSource(
        "code", {"tags": {k: tags[k] for k in (USER, SOURCE_NAME, SOURCE_TYPE) if k in tags}}
    )


def resolve_source(source: Any) -> DatasetSource:
    """A `DatasetSource` as given, or one built from a path or URI string."""
    if isinstance(source, DatasetSource):
        return source
    text = str(source)
    scheme = urlparse(text).scheme.lower()
    if scheme in ("http", "https"):
        return DatasetSource("http", {"url": text})
    if scheme and len(scheme) > 1 and scheme != "file":  # a one-letter scheme is a Windows drive
        return DatasetSource(scheme, {"uri": text})
    return DatasetSource("local", {"uri": text})
