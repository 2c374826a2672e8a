"""Artifact previews: what the run page shows for one file, from at most `PREVIEW_MAX_BYTES` of it.

Nothing from an artifact is ever active content in the page: text (HTML and SVG included) is shown
escaped in a `<pre>`, tables cell by cell, and only png/jpeg/gif/webp files become an `<img>`, served
by the UI's file route with that fixed image type and `nosniff`.
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

import yaml

from modelyard.exceptions import ModelyardException
from modelyard.models.mlmodel import INPUT_EXAMPLE_FILE, MLMODEL_FILE_NAME, Model
from modelyard.protocol import text_parsing
from modelyard.ui.artifact_access import Head, RunArtifacts
from modelyard.ui.concurrency import concurrently

#: The only artifact types shown as images (never SVG: it can carry script).
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
TABLE_ROWS = 100
TABLE_COLUMNS = 50
INPUT_EXAMPLE_MAX_BYTES = 64 * 1024
_TEXT_EXTENSIONS = {
    ".txt", ".log", ".md", ".py", ".cfg", ".ini", ".toml", ".sh", ".html", ".htm", ".svg", ".xml", ".js",
    ".css", ".rst", ".sql", ".r", ".ipynb", ".text", ".out", ".err", ".lock",
}  # fmt: skip


@dataclass
class Preview:
    path: str
    name: str
    kind: str  # image | json | yaml | table | mlmodel | text | binary | missing
    size: int | None = None
    truncated: bool = False
    download_url: str = ""
    image_url: str = ""
    text: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    #: For MLmodel files: flavors, signature and input example (see `_mlmodel`).
    model: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def kind_of(path: str) -> str:
    name = posixpath.basename(path)
    ext = posixpath.splitext(name)[1].lower()
    if name == MLMODEL_FILE_NAME:
        return "mlmodel"
    if ext in IMAGE_TYPES:
        return "image"
    if ext == ".json":
        return "json"
    if ext in (".yaml", ".yml"):
        return "yaml"
    if ext in (".csv", ".tsv"):
        return "table"
    if ext in _TEXT_EXTENSIONS or name in ("requirements.txt", "Dockerfile", "LICENSE", "README"):
        return "text"
    return "unknown"


def build_preview(artifacts: RunArtifacts, path: str, image_url: str) -> Preview:
    """The preview of one file; a missing file is a 'missing' preview, not an error page."""
    name = posixpath.basename(path)
    kind = kind_of(path)
    preview = Preview(path, name, kind, download_url=artifacts.download_url(path))
    if kind == "image":
        preview.image_url = image_url
        return preview
    try:
        head = artifacts.read_head(path)
    except ModelyardException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        preview.kind = "missing"
        preview.note = f"No file {path!r} in this run's artifacts."
        return preview
    preview.size, preview.truncated = head.size, head.truncated
    text = _decode(head)
    if text is None:
        preview.kind = "binary"
        preview.note = "Binary file: no preview. Download it to look inside."
        return preview
    if kind == "json" and not head.truncated:
        _json(preview, text)
    elif kind == "table":
        _table(preview, text, "\t" if name.lower().endswith(".tsv") else ",")
    elif kind == "mlmodel" and not head.truncated:
        _mlmodel(preview, artifacts, text)
    else:
        preview.kind = "yaml" if kind == "yaml" else "text"
        preview.text = text
    return preview


def _decode(head: Head) -> str | None:
    """UTF-8 text, or None for binary data (a NUL byte, or bytes that are not UTF-8)."""
    data = head.data
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A cut in the middle of a character at the preview limit is not binary.
        if head.truncated and exc.start >= len(data) - 3:
            return data[: exc.start].decode("utf-8")
        return None


def _json(preview: Preview, text: str) -> None:
    try:
        preview.text = json.dumps(text_parsing.loads_json(text), indent=2, ensure_ascii=False)
    except ValueError as exc:
        preview.kind, preview.text, preview.note = "text", text, f"Not valid JSON: {exc}"


def _table(preview: Preview, text: str, delimiter: str) -> None:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows: list[list[str]] = []
    try:
        for row in reader:
            rows.append(row[:TABLE_COLUMNS])
            if len(rows) > TABLE_ROWS:
                break
    except csv.Error as exc:
        preview.kind, preview.text, preview.note = "text", text, f"Not a readable table: {exc}"
        return
    if not rows:
        preview.kind, preview.text = "text", text
        return
    preview.header, preview.rows = rows[0], rows[1 : TABLE_ROWS + 1]
    more = len(rows) > TABLE_ROWS or preview.truncated
    preview.note = f"The first {len(preview.rows)} rows." if more else ""


def _mlmodel(preview: Preview, artifacts: RunArtifacts, text: str) -> None:
    preview.text = text
    try:
        data = text_parsing.load_yaml(text)
        model = Model.from_dict(data)
    except (yaml.YAMLError, ModelyardException, ValueError, TypeError, KeyError) as exc:
        preview.kind, preview.note = "yaml", f"Could not read this MLmodel file: {exc}"
        return
    flavors = []
    for flavor, conf in sorted(model.flavors.items()):
        details = {k: v for k, v in (conf or {}).items() if isinstance(v, (str, int, float, bool))}
        flavors.append({"name": flavor, "details": details})
    signature = {}
    if model.signature is not None:
        for part in ("inputs", "outputs"):
            schema = getattr(model.signature, part, None)
            if schema is not None:
                signature[part] = [_spec_row(item) for item in schema.to_list()]
        if model.signature.params is not None:
            signature["params"] = [
                {
                    "name": p.name,
                    "type": p.type.value,
                    "detail": f"default {json.dumps(p.to_dict()['default'])}",
                }
                for p in model.signature.params.params
            ]
    folder = posixpath.dirname(preview.path)
    example, serving = concurrently(
        lambda: _input_example(artifacts, folder, model), lambda: serving_example(artifacts, folder, model)
    )
    preview.model = {
        "flavors": flavors,
        "signature": signature,
        "run_id": model.run_id or "",
        "model_id": model.model_id or "",
        "created": model.utc_time_created,
        "size": model.model_size_bytes,
        "example": example,
        "serving_example": serving,
    }


def _spec_row(item: dict[str, Any]) -> dict[str, str]:
    if item.get("type") == "tensor":
        spec = item.get("tensor-spec") or {}
        return {
            "name": str(item.get("name") or ""),
            "type": f"tensor {spec.get('dtype')}",
            "detail": f"shape {spec.get('shape')}",
        }
    kind = item.get("type", "")
    extra = {k: v for k, v in item.items() if k not in ("name", "type", "required")}
    detail = json.dumps(extra) if extra else ""
    if item.get("required") is False:
        detail = ("optional " + detail).strip()
    return {"name": str(item.get("name") or ""), "type": str(kind), "detail": detail}


def _input_example(artifacts: RunArtifacts, folder: str, model: Model) -> dict[str, Any] | None:
    """The saved input example as a table (pandas 'split' or 'records' frames) or as JSON text."""
    info = model.saved_input_example_info
    if not isinstance(info, dict):
        return None
    name = str(info.get("artifact_path") or INPUT_EXAMPLE_FILE)
    path = posixpath.join(folder, name) if folder else name
    try:
        head = artifacts.read_head(path, INPUT_EXAMPLE_MAX_BYTES)
        data = text_parsing.loads_json(head.data.decode("utf-8")) if not head.truncated else None
    except (ModelyardException, ValueError):
        return {"path": path, "text": "", "note": "The input example could not be read."}
    if data is None:
        return {"path": path, "text": "", "note": "The input example is too large to preview."}
    if info.get("params") and isinstance(data, dict):
        data = data.get("inputs", data)
    if (
        isinstance(data, dict)
        and isinstance(data.get("columns"), list)
        and isinstance(data.get("data"), list)
    ):
        rows = [[_cell(v) for v in row] for row in data["data"][:TABLE_ROWS] if isinstance(row, list)]
        return {"path": path, "header": [str(c) for c in data["columns"]], "rows": rows}
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        header = list(dict.fromkeys(k for r in data[:TABLE_ROWS] for k in r))
        rows = [[_cell(r.get(k)) for k in header] for r in data[:TABLE_ROWS]]
        return {"path": path, "header": header, "rows": rows}
    return {"path": path, "text": json.dumps(data, indent=2)[:INPUT_EXAMPLE_MAX_BYTES]}


def serving_example(artifacts: RunArtifacts, folder: str, model: Model) -> str:
    """The input example as a scoring request body (what `/invocations` takes): MLflow's own
    `serving_input_example.json` when the model has one, else built from the saved example
    (`dataframe_split` / `dataframe_records` / `inputs`); "" without an example."""
    info = model.saved_input_example_info
    if not isinstance(info, dict):
        return ""
    for name, wrap in ((info.get("serving_input_path"), False), (info.get("artifact_path") or INPUT_EXAMPLE_FILE, True)):
        if not name:
            continue
        try:
            head = artifacts.read_head(posixpath.join(folder, str(name)) if folder else str(name), INPUT_EXAMPLE_MAX_BYTES)
            if head.truncated:
                return ""
            data = text_parsing.loads_json(head.data.decode("utf-8"))
        except (ModelyardException, ValueError):
            continue
        if wrap:
            if isinstance(data, dict) and isinstance(data.get("columns"), list) and isinstance(data.get("data"), list):
                data = {"dataframe_split": data}
            elif isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
                data = {"dataframe_records": data}
            elif not (isinstance(data, dict) and "inputs" in data):
                data = {"inputs": data}
        return json.dumps(data, indent=2)
    return ""


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
