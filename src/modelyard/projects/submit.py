"""Running a project: check everything, create the run, start the supervised command, follow it.

The order is what keeps bad input from leaving a half-made run: the project is fetched, the entry
point and every parameter checked (and `path` values downloaded), the environment built or found in
its cache, and only then is the run created, with MLflow's tags, and its params logged. The command
then runs under `modelyard.projects.supervise` (see there), which writes the final status; the child
sees `MLFLOW_RUN_ID`, `MLFLOW_TRACKING_URI` and `MLFLOW_EXPERIMENT_ID`, so `start_run()` in it (the
mlflow client's or modelyard's) continues this run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelyard.client import Client, run_context
from modelyard.client.tracking_uri import get_tracking_uri, scheme_of
from modelyard.entities import Param, RunStatus, RunTag
from modelyard.projects import envs, source, spec
from modelyard.projects.errors import ExecutionException

#: Seconds the command gets to stop after SIGTERM before SIGKILL (passed to the supervisor).
GRACE_SECONDS = 10.0
SUPERVISOR = "modelyard.projects.supervise"

SOURCE_TYPE_PROJECT = "PROJECT"
ENTRY_POINT_TAG = "mlflow.project.entryPoint"
BACKEND_TAG = "mlflow.project.backend"
ENV_TAG = "mlflow.project.env"


class SubmittedRun:
    """A started project run (MLflow's `SubmittedRun`): `run_id`, `wait()`, `get_status()`, `cancel()`."""

    def __init__(
        self, run_id: str, tracking_uri: str, process: subprocess.Popen[bytes], project: source.ProjectSource
    ) -> None:
        self._run_id = run_id
        self._tracking_uri = tracking_uri
        self._process = process
        self._project = project
        self._cancelled = False
        self._lock = threading.Lock()

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def command_proc(self) -> subprocess.Popen[bytes]:
        return self._process

    def wait(self) -> bool:
        """Wait for the command; True when the run FINISHED."""
        self._process.wait()
        return self._settle() == RunStatus.FINISHED

    def get_status(self) -> str:
        if self._process.poll() is None:
            return RunStatus.RUNNING
        return self._settle()

    def cancel(self) -> None:
        """Stop the command (its whole process group) and end the run KILLED."""
        with self._lock:
            self._cancelled = True
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=GRACE_SECONDS + 10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._settle()

    def _settle(self) -> str:
        """The run's final status, written here when the supervisor could not write it."""
        client = Client(self._tracking_uri)
        status = client.get_run(self._run_id).info.status
        if status == RunStatus.RUNNING:
            status = RunStatus.KILLED if self._cancelled else RunStatus.FAILED
            client.set_terminated(self._run_id, status)
        self._project.cleanup()
        return status

    def __repr__(self) -> str:
        return f"SubmittedRun(run_id={self._run_id!r})"


def run(
    uri: str,
    entry_point: str = "main",
    version: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    docker_args: Mapping[str, Any] | None = None,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    backend: str = "local",
    backend_config: Any = None,
    storage_dir: str | None = None,
    synchronous: bool = True,
    run_id: str | None = None,
    run_name: str | None = None,
    env_manager: str | None = None,
    build_image: bool = False,
    docker_auth: Mapping[str, Any] | None = None,
) -> SubmittedRun:
    """Run the project at `uri` (folder or git URI, `#subdir` allowed), as `mlflow.projects.run` does.

    Synchronous (default): waits, and raises ExecutionException when the run failed; Ctrl-C (or
    SIGTERM) stops the command and ends the run KILLED. `synchronous=False` returns at once.
    """
    if backend != "local":
        raise ExecutionException(f"Backend {backend!r} is not supported; modelyard runs projects locally.")
    if experiment_name is not None and experiment_id is not None:
        raise ExecutionException("Give experiment_name or experiment_id, not both.")
    project_source = source.fetch(uri, version)
    try:
        submitted = _start(
            project_source, entry_point, dict(parameters or {}), experiment_name, experiment_id,
            storage_dir, run_id, run_name, env_manager,
        )  # fmt: skip
    except BaseException:
        project_source.cleanup()
        raise
    if synchronous:
        _wait_or_kill(submitted)
    return submitted


def _start(
    project_source: source.ProjectSource,
    entry_point: str,
    parameters: dict[str, Any],
    experiment_name: str | None,
    experiment_id: str | None,
    storage_dir: str | None,
    run_id: str | None,
    run_name: str | None,
    env_manager: str | None,
) -> SubmittedRun:
    project = spec.load_project(project_source.directory)
    entry = project.entry_point(entry_point)
    params, command = entry.resolve(parameters, lambda uri: _download(uri, storage_dir))
    manager = envs.choose_manager(env_manager, project.environment)
    environment = envs.prepare(manager, project.environment)

    tracking_uri = _absolute_tracking_uri(get_tracking_uri())
    client = Client(tracking_uri)
    experiment = _experiment_id(client, experiment_name, experiment_id)
    tags = {
        run_context.USER: run_context.current_user(),
        **project_source.tags(),
        run_context.SOURCE_TYPE: SOURCE_TYPE_PROJECT,
        ENTRY_POINT_TAG: entry.name,
        **({ENV_TAG: manager} if manager != envs.LOCAL else {}),
        BACKEND_TAG: "local",
    }
    if run_id is None:
        if run_name:
            tags[run_context.RUN_NAME] = run_name
        run_id = client.create_run(experiment, tags=tags, run_name=run_name).info.run_id
    else:
        experiment = client.get_run(run_id).info.experiment_id
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    try:
        client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
        child_env = environment.apply(
            {
                **os.environ,
                "MLFLOW_RUN_ID": run_id,
                "MLFLOW_TRACKING_URI": tracking_uri,
                "MODELYARD_TRACKING_URI": tracking_uri,
                "MLFLOW_EXPERIMENT_ID": experiment,
            }
        )
        child_env.pop("MLFLOW_EXPERIMENT_NAME", None)
        print(f"=== Running command '{command}' in run with ID '{run_id}' ===", file=sys.stderr, flush=True)
        process = subprocess.Popen(
            [sys.executable, "-m", SUPERVISOR, run_id, tracking_uri, str(project_source.directory),
             command, str(GRACE_SECONDS)],
            env=child_env, start_new_session=True,
        )  # fmt: skip
    except BaseException:
        client.set_terminated(run_id, RunStatus.FAILED)
        raise
    return SubmittedRun(run_id, tracking_uri, process, project_source)


def _wait_or_kill(submitted: SubmittedRun) -> None:
    """Wait; Ctrl-C or SIGTERM here cancels the command (run KILLED) and is re-raised as KeyboardInterrupt."""
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if in_main else None

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if in_main:
        signal.signal(signal.SIGTERM, on_term)
    try:
        finished = submitted.wait()
    except KeyboardInterrupt:
        submitted.cancel()
        raise
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    if not finished:
        raise ExecutionException(f"Run (ID '{submitted.run_id}') failed")


def _experiment_id(client: Client, name: str | None, experiment_id: str | None) -> str:
    if experiment_id is not None:
        return client.get_experiment(str(experiment_id)).experiment_id
    if name is not None:
        found = client.get_experiment_by_name(name)
        return found.experiment_id if found is not None else client.create_experiment(name)
    from modelyard.client.fluent import current_experiment_id

    return current_experiment_id()


def _absolute_tracking_uri(uri: str) -> str:
    """The child runs in the project's folder: a relative `sqlite:///file.db` must name the same file."""
    prefix = "sqlite:///"
    if scheme_of(uri) == "sqlite" and uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        path = uri[len(prefix) :]
        if path and path != ":memory:":
            return prefix + str(Path(path).absolute())
    return uri


def _download(uri: str, storage_dir: str | None) -> str:
    """A remote `path` value downloaded into its own folder (of `storage_dir`, else a new temp folder)."""
    from modelyard.models.uri import download_artifact_uri

    if storage_dir is not None:
        Path(storage_dir).mkdir(parents=True, exist_ok=True)
    target = tempfile.mkdtemp(prefix="modelyard-project-input-", dir=storage_dir)
    try:
        return download_artifact_uri(uri, target)
    except Exception as exc:
        raise ExecutionException(f"Could not download {uri!r} for a path parameter: {exc}") from None
