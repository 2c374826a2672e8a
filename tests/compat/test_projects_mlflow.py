"""The same project run by the real `mlflow run` (3.17) and by `modelyard.projects.run`, compared.

Both log to the compat session's real `mlflow server`, so modelyard's side is also checked against
MLflow's own tracking API. The project is a local git repository run at its first commit; the run's
tags, params, metrics and status must be equal (run ids and times aside).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.projects_support import git_repo_with_two_commits, read_seen
from tests.support.mlflow_client import mlflow_pointed_at

from modelyard import projects
from modelyard.client import tracking_uri as tracking_uri_module
from modelyard.projects import ExecutionException

pytestmark = [pytest.mark.compat, pytest.mark.slow]


@pytest.fixture(scope="module")
def env_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        "mlflow": tmp_path_factory.mktemp("mlflow-envs"),
        "modelyard": tmp_path_factory.mktemp("yard-envs"),
    }


@pytest.fixture
def pointed(mlflow_server: str, monkeypatch: pytest.MonkeyPatch, env_roots: dict[str, Path]) -> Iterator[str]:
    monkeypatch.delenv("MODELYARD_TRACKING_URI", raising=False)
    monkeypatch.setenv("MODELYARD_ENV_ROOT", str(env_roots["modelyard"]))
    with mlflow_pointed_at(mlflow_server) as uri:
        yield uri
    tracking_uri_module.clear_store_cache()


def _as_compared(run) -> dict:  # type: ignore[no-untyped-def]
    """What must be equal: everything but ids, times and the name each side was given."""
    tags = {k: v for k, v in run.data.tags.items() if k != "mlflow.runName"}
    return {"status": run.info.status, "params": run.data.params, "metrics": run.data.metrics, "tags": tags}


#: Both in the current environment: mlflow's virtualenv build alone (pyenv, ensurepip) costs ~30 s here.
#: The `virtualenv` case was compared the same way once and agreed (tags differ from these only by
#: `mlflow.project.env: virtualenv`); tests/integration/test_projects.py pins that value.
CASES = {"main": "local", "exit": "local"}


def test_modelyard_run_gives_the_runs_mlflow_run_gives(
    pointed: str, tmp_path: Path, env_roots: dict[str, Path]
) -> None:
    """main at the first commit (FINISHED; the command logs into the run with the real mlflow client)
    and a failing entry point (FAILED)."""
    import mlflow

    repo = tmp_path / "repo"
    first, _ = git_repo_with_two_commits(repo, None, client="mlflow")
    params = {"main": {"out": str(tmp_path / "seen.json"), "epochs": "2"}, "exit": {"code": "3"}}
    experiments = {entry: f"projects-{entry}-{tmp_path.name}-{os.getpid()}" for entry in CASES}
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": pointed,
        "MLFLOW_ENV_ROOT": str(env_roots["mlflow"]),
    }
    # modelyard's runs first, mlflow's after, one at a time: `mlflow run` of a local repository at a
    # version fetches into that repository itself (it is left detached), which races any other git
    # process reading it.
    ours = projects.run(
        str(repo), "main", version=first, parameters=params["main"],
        env_manager="local", experiment_name=experiments["main"], run_name="ours",
    )  # fmt: skip
    with pytest.raises(ExecutionException, match="failed"):
        projects.run(str(repo), "exit", version=first, parameters=params["exit"], env_manager="local",
                     experiment_name=experiments["exit"], run_name="ours")  # fmt: skip
    theirs = {
        entry: subprocess.run(
            [
                sys.executable,
                "-m",
                "mlflow",
                "run",
                str(repo),
                "-e",
                entry,
                "--version",
                first,
                "--env-manager",
                manager,
                "--experiment-name",
                experiments[entry],
                "--run-name",
                "theirs",
                *[f"-P{k}={v}" for k, v in params[entry].items()],
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )  # fmt: skip
        for entry, manager in CASES.items()
    }
    assert theirs["main"].returncode == 0, theirs["main"].stderr[-3000:]
    assert theirs["exit"].returncode != 0, theirs["exit"].stderr[-3000:]
    seen = read_seen(tmp_path / "seen.json")  # both wrote it, from the first commit
    assert seen["version"] == 1
    client = mlflow.MlflowClient(pointed)
    for entry, experiment in experiments.items():
        runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
        by_name = {run.info.run_name: run for run in runs}
        assert sorted(by_name) == ["ours", "theirs"], entry
        ours_run, their_run = by_name["ours"], by_name["theirs"]
        if entry == "main":
            assert ours_run.info.run_id == ours.run_id
            assert ours_run.data.metrics == {"score": 1.0}  # logged by the command, into the project's run
        assert _as_compared(ours_run) == _as_compared(their_run), entry
        assert ours_run.data.tags["mlflow.source.git.commit"] == first
