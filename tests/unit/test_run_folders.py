"""What `modelyard import` reads from a bundle's run folders and sends to the bulk endpoint: folders
read ahead in chunks come back in order with their files and whether they hold artifacts, and the
points of metrics.jsonl (as `run_folders.metric_lines` writes them, bare NaN included) become a
request body that a strict JSON encoder takes (the real files on disk, no server)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from modelyard.lifecycle import run_folders
from modelyard.lifecycle.importer import COMPLETE_TAG, SOURCE_RUN_TAG, _bulk_item, _points


def _write(root: Path, name: str, points: list[dict[str, object]], artifacts: bool = False) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    run = {"info": {"run_name": name, "user_id": "ana", "status": "FINISHED"}, "params": {"lr": "0.1"},
           "tags": {COMPLETE_TAG: "true"}}  # fmt: skip
    (folder / run_folders.RUN_FILE).write_text(run_folders.run_text(run))
    if points:
        (folder / run_folders.METRICS_FILE).write_text(run_folders.metric_lines(points))
    if artifacts:
        (folder / "artifacts").mkdir()
    return folder


def test_folders_come_back_in_order_with_their_files_across_chunks(tmp_path: Path) -> None:
    count = 2 * run_folders.CHUNK + 7
    folders = [
        _write(tmp_path, f"run{i:04d}", [{"key": "m", "value": float(i), "timestamp": i, "step": 0}] if i % 3 else [],
               artifacts=i % 5 == 0)  # fmt: skip
        for i in range(count)
    ]
    read = list(run_folders.read_folders(folders))
    assert [r.path for r in read] == folders
    assert [r.run["info"]["run_name"] for r in read] == [f.name for f in folders]
    assert [r.has_artifacts for r in read] == [i % 5 == 0 for i in range(count)]
    assert [_points(r.metrics) for r in read] == [
        [{"key": "m", "value": float(i), "timestamp": i, "step": 0}] if i % 3 else [] for i in range(count)
    ]


def test_points_become_a_strict_json_body_with_non_finite_values_spelled_as_mlflow_does(tmp_path: Path) -> None:
    points = [
        {"key": "loss", "value": 0.5, "timestamp": 1, "step": 0},
        {"key": "loss", "value": math.nan, "timestamp": 2, "step": 1},
        {"key": "loss", "value": -math.inf, "timestamp": 3, "step": 2},
        {"key": "acc", "value": 2, "timestamp": 4, "step": 3, "model_id": "m-1"},  # cut to the four fields
    ]
    folder = _write(tmp_path, "src1", points, artifacts=True)
    lines = run_folders.metric_lines(points[:2]) + "\n  \n" + run_folders.metric_lines(points[2:])
    (folder / run_folders.METRICS_FILE).write_text(lines.replace("\n", "\r\n", 1))
    (read,) = run_folders.read_folders([folder])
    item = _bulk_item(read, _points(read.metrics), {})
    body = json.loads(json.dumps(item, allow_nan=False))  # what requests sends: NaN would raise
    assert [(m["key"], m["value"], m["timestamp"], m["step"]) for m in body["metrics"]] == [
        ("loss", 0.5, 1, 0), ("loss", "NaN", 2, 1), ("loss", "-Infinity", 3, 2), ("acc", 2, 4, 3),
    ]  # fmt: skip
    assert all(set(m) == {"key", "value", "timestamp", "step"} for m in body["metrics"])
    tags = {t["key"]: t["value"] for t in body["tags"]}
    assert tags[SOURCE_RUN_TAG] == "src1" and COMPLETE_TAG not in tags  # its artifacts follow, then the tag

    plain = _write(tmp_path, "src2", points[:1])
    (read,) = run_folders.read_folders([plain])
    item = _bulk_item(read, _points(read.metrics), {})
    assert item["metrics"] == points[:1] and {t["key"]: t["value"] for t in item["tags"]}[COMPLETE_TAG] == "true"
