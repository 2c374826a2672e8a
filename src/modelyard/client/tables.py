"""`log_table` / `load_table`: a table artifact in MLflow's JSON format, listed on the run.

The file is pandas' "split" orientation without the index (`{"columns": [...], "data": [[...]]}`);
logging to an existing file appends rows, and the run's `mlflow.loggedArtifacts` tag lists each
table (`{"path", "type": "table"}`), which is how `load_table` finds the runs that have one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from typing import Any

from modelyard.exceptions import ModelyardException

LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"


def _as_frame(data: Any) -> Any:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        try:
            return pd.DataFrame(data)
        except ValueError as error:
            raise ModelyardException.invalid_parameter(f"log_table: {error}") from None
    raise ModelyardException.invalid_parameter(
        f"log_table takes a pandas DataFrame or a dict of columns, got {type(data).__name__}"
    )


def _read_table(path: str) -> Any:
    import pandas as pd

    with open(path) as source:
        body = json.load(source)
    return pd.DataFrame(body.get("data") or [], columns=body.get("columns") or [])


def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    import pandas as pd

    from modelyard.client.artifacts import download_artifacts, fluent_log_text, list_artifacts
    from modelyard.client.fluent import _active_run_id, _client

    if not artifact_file.endswith(".json"):
        raise ModelyardException.invalid_parameter(
            f"The table file must be a .json file, got {artifact_file!r}"
        )
    frame = _as_frame(data)
    run_id = run_id or _active_run_id()
    parent = os.path.dirname(artifact_file) or None
    if any(f.path == artifact_file for f in list_artifacts(run_id=run_id, artifact_path=parent)):
        with tempfile.TemporaryDirectory() as tmp:
            frame = pd.concat(
                [
                    _read_table(download_artifacts(run_id=run_id, artifact_path=artifact_file, dst_path=tmp)),
                    frame,
                ],
                ignore_index=True,
            )
    fluent_log_text(frame.to_json(orient="split", index=False), artifact_file, run_id=run_id)
    client = _client()
    listed = json.loads(client.get_run(run_id).data.tags.get(LOGGED_ARTIFACTS_TAG) or "[]")
    entry = {"path": artifact_file, "type": "table"}
    if entry not in listed:
        client.set_tag(run_id, LOGGED_ARTIFACTS_TAG, json.dumps([*listed, entry]))


def load_table(
    artifact_file: str, run_ids: Sequence[str] | None = None, extra_columns: Sequence[str] | None = None
) -> Any:
    """The tables of `run_ids` (default: every run of the active experiment that logged one),
    concatenated; `extra_columns=["run_id"]` adds the run each row came from."""
    import pandas as pd

    from modelyard.client.artifacts import download_artifacts
    from modelyard.client.fluent import current_experiment_id, search_runs

    unknown = set(extra_columns or []) - {"run_id"}
    if unknown:
        raise ModelyardException.invalid_parameter(
            f"Unsupported extra columns {sorted(unknown)}: only run_id"
        )
    if run_ids is None:
        needle = json.dumps({"path": artifact_file, "type": "table"})
        runs = search_runs(
            [current_experiment_id()],
            f"tags.`{LOGGED_ARTIFACTS_TAG}` LIKE '%{_like_escape(needle)}%'",
            output_format="list",
        )
        run_ids = [r.info.run_id for r in runs]
    frames = []
    for run_id in run_ids:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                frame = _read_table(
                    download_artifacts(run_id=run_id, artifact_path=artifact_file, dst_path=tmp)
                )
            except ModelyardException:
                continue  # this run has no such table
        if extra_columns:
            frame["run_id"] = run_id
        frames.append(frame)
    if not frames:
        raise ModelyardException.invalid_parameter(f"No run has a table artifact {artifact_file!r}")
    return pd.concat(frames, ignore_index=True)


def _like_escape(text: str) -> str:
    return text.replace("'", "\\'")
