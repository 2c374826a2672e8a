"""Runs as a pandas DataFrame with MLflow's column names (what `mlflow.search_runs()` returns).

Columns: run_id, experiment_id, status, artifact_uri, start_time, end_time (UTC timestamps), then
`metrics.<key>` (float, NaN when a run lacks it), `params.<key>` and `tags.<key>` (None when absent).
pandas is imported here only, so `import modelyard` stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelyard.entities import Run

INFO_COLUMNS = ("run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time")


def runs_to_frame(runs: Sequence[Run]) -> Any:
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(
            "search_runs(output_format='pandas') needs pandas: `pip install pandas`, "
            "or pass output_format='list' to get Run objects."
        ) from exc

    metric_keys = sorted({k for run in runs for k in run.data.metrics})
    param_keys = sorted({k for run in runs for k in run.data.params})
    tag_keys = sorted({k for run in runs for k in run.data.tags})
    columns: dict[str, list[Any]] = {name: [] for name in INFO_COLUMNS}
    for run in runs:
        info = run.info
        columns["run_id"].append(info.run_id)
        columns["experiment_id"].append(info.experiment_id)
        columns["status"].append(info.status)
        columns["artifact_uri"].append(info.artifact_uri)
        columns["start_time"].append(info.start_time)
        columns["end_time"].append(info.end_time)
    for key in metric_keys:
        columns[f"metrics.{key}"] = [run.data.metrics.get(key, float("nan")) for run in runs]
    for key in param_keys:
        columns[f"params.{key}"] = [run.data.params.get(key) for run in runs]
    for key in tag_keys:
        columns[f"tags.{key}"] = [run.data.tags.get(key) for run in runs]
    frame = pd.DataFrame(columns)
    for name in ("start_time", "end_time"):
        frame[name] = pd.to_datetime(frame[name], unit="ms", utc=True)
    return frame
