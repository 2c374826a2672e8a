"""MLflow Projects: run an `MLproject` (or a folder of scripts) from a folder or a git URI as a tracked run.

`modelyard.projects.run(uri, entry_point, parameters=..., env_manager=...)` and the `modelyard run`
command do what `mlflow run` does for the local backend: the run gets MLflow's source tags and the
entry point's params, the command runs in the chosen environment with `MLFLOW_RUN_ID` set so code in
it logs to that run, and the run ends with the command's outcome. Layers: `spec` (the MLproject and
its parameters), `source` (folder or git checkout), `envs` (local / virtualenv / uv environments),
`submit` (the run and the supervised child), `supervise` (the child's watcher process).
"""

from __future__ import annotations

from modelyard.projects.errors import ExecutionException
from modelyard.projects.submit import SubmittedRun, run

__all__ = ["ExecutionException", "SubmittedRun", "run"]
