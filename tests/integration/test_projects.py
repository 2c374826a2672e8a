"""`modelyard run` and `modelyard.projects.run`: real processes, a real git repository, a real virtualenv.

Runs are tracked in a SQLite file (the embedded store the child process opens too). The virtualenv is
built once per session (the env root is a session folder) from a python_env.yaml whose only dependency
is a wheel made here, so no registry is needed; every later test finds it in the cache.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.integration.client_workflow import reset_fluent_state
from tests.integration.projects_support import (
    git,
    git_repo_with_two_commits,
    read_seen,
    tiny_wheel,
    write_project,
)

import modelyard
from modelyard import projects
from modelyard.cli import main
from modelyard.client import tracking_uri as tracking_uri_module
from modelyard.projects import ExecutionException

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def env_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("project-envs")


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_wheel(tmp_path_factory.mktemp("wheels"))


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env_root: Path) -> Iterator[str]:
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    reset_fluent_state()
    for name in ("MODELYARD_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MODELYARD_ENV_ROOT", str(env_root))
    monkeypatch.setenv("MODELYARD_DEFAULT_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.chdir(tmp_path)
    yield uri
    reset_fluent_state()
    tracking_uri_module.clear_store_cache()


def _runs(experiment_name: str) -> list:
    experiment = modelyard.get_experiment_by_name(experiment_name)
    if experiment is None:
        return []
    return modelyard.search_runs([experiment.experiment_id], output_format="list")


def test_local_folder_through_the_api_in_the_local_env(tracking: str, tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj", None)
    submitted = projects.run(
        str(project),
        parameters={"alpha": "2", "epochs": "4", "label": "it's here", "out": str(tmp_path / "seen.json")},
        env_manager="local",
        experiment_name="local-api",
        run_name="first",
    )
    assert submitted.get_status() == "FINISHED" and submitted.wait() is True
    seen = read_seen(tmp_path / "seen.json")
    run = modelyard.get_run(submitted.run_id)
    # The command logged into the project's run (MLFLOW_RUN_ID), not a new one.
    assert seen["run_id"] == submitted.run_id and [r.info.run_id for r in _runs("local-api")] == [
        submitted.run_id
    ]
    assert seen["env"] == {
        "MLFLOW_RUN_ID": submitted.run_id,
        "MLFLOW_TRACKING_URI": tracking,
        "MLFLOW_EXPERIMENT_ID": run.info.experiment_id,
    }
    assert seen["argv"][seen["argv"].index("--label") + 1] == "it's here"
    assert run.info.status == "FINISHED" and run.info.run_name == "first"
    assert run.data.metrics == {"score": 8.0}
    assert run.data.params == {
        "alpha": "2", "epochs": "4", "label": "'it'\"'\"'s here'", "out": str(tmp_path / "seen.json"), "inside": "yes",
    }  # fmt: skip
    tags = {k: v for k, v in run.data.tags.items() if k != "mlflow.user"}
    assert tags == {
        "mlflow.source.name": str(project),
        "mlflow.source.type": "PROJECT",
        "mlflow.project.entryPoint": "main",
        "mlflow.project.backend": "local",
        "mlflow.runName": "first",
    }


def test_git_repository_at_a_commit_through_the_cli_in_a_virtualenv(
    tracking: str, tmp_path: Path, wheel: Path, env_root: Path
) -> None:
    repo = tmp_path / "repo"
    first, second = git_repo_with_two_commits(repo, wheel)
    done = CliRunner().invoke(
        main,
        ["run", str(repo), "--version", first, "-P", f"out={tmp_path / 'seen.json'}", "-P", "epochs=2",
         "--env-manager", "virtualenv", "--experiment-name", "git-cli"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    seen = read_seen(tmp_path / "seen.json")
    assert seen["version"] == 1  # the first commit's code ran
    assert seen["tinydep"] == 42  # installed from python_env.yaml's requirements
    assert Path(seen["prefix"]).parent == env_root
    assert git(repo, "rev-parse", "HEAD") == second and git(repo, "status", "--porcelain") == ""
    [run] = _runs("git-cli")
    assert run.info.status == "FINISHED" and seen["env"]["MLFLOW_RUN_ID"] == run.info.run_id
    assert run.data.params == {
        "alpha": "0.5",
        "epochs": "2",
        "label": "'hello world'",
        "out": str(tmp_path / "seen.json"),
    }
    tags = {k: v for k, v in run.data.tags.items() if k not in ("mlflow.user", "mlflow.runName")}
    assert tags == {
        "mlflow.source.name": f"file://{repo}",
        "mlflow.source.type": "PROJECT",
        "mlflow.source.git.commit": first,
        "mlflow.source.git.repoURL": str(repo),
        "mlflow.project.entryPoint": "main",
        "mlflow.project.env": "virtualenv",
        "mlflow.project.backend": "local",
    }


def test_git_uri_with_a_subdirectory_through_the_api_reuses_the_cached_env(
    tracking: str, tmp_path: Path, wheel: Path, env_root: Path
) -> None:
    repo = tmp_path / "mono"
    write_project(repo / "projects" / "train", wheel)
    git(repo, "init", "-q")
    git(repo, "remote", "add", "origin", "https://git.example.com/team/mono.git")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    uri = f"file://{repo}#projects/train"
    submitted = projects.run(
        uri, "main", parameters={"out": str(tmp_path / "seen.json")}, env_manager="virtualenv",
        experiment_name="git-sub", version="HEAD",
    )  # fmt: skip
    seen = read_seen(tmp_path / "seen.json")
    assert seen["tinydep"] == 42 and Path(seen["prefix"]).parent == env_root
    assert len([p for p in env_root.iterdir() if p.is_dir()]) == 1  # built once for the session
    tags = modelyard.get_run(submitted.run_id).data.tags
    assert tags["mlflow.source.name"] == uri
    assert tags["mlflow.source.git.commit"] == git(repo, "rev-parse", "HEAD")
    assert tags["mlflow.source.git.repoURL"] == f"file://{repo}"


def test_a_failing_command_fails_the_run_in_the_cli_and_the_api(tracking: str, tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj", None)
    failed = CliRunner().invoke(main, ["run", str(project), "-e", "exit", "-P", "code=3", "--env-manager", "local",
                                       "--experiment-name", "fails"])  # fmt: skip
    assert failed.exit_code == 1 and "failed" in failed.output
    with pytest.raises(ExecutionException, match="failed"):
        projects.run(
            str(project), "exit", parameters={"code": "5"}, env_manager="local", experiment_name="fails"
        )
    runs = _runs("fails")
    assert [(r.data.tags["mlflow.project.entryPoint"], r.info.status) for r in runs] == [
        ("exit", "FAILED")
    ] * 2
    assert sorted(r.data.params["code"] for r in runs) == ["3", "5"]


def test_asynchronous_run_returns_at_once_and_ends_by_itself(tracking: str, tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj", None)
    (project / "MLproject").write_text(
        "entry_points:\n  main:\n    parameters: {go: path}\n"
        "    command: 'while [ ! -s {go} ]; do sleep 0.1; done; exit $(cat {go})'\n"
    )
    go = tmp_path / "go"
    go.write_text("")
    submitted = projects.run(
        str(project),
        parameters={"go": str(go)},
        env_manager="local",
        experiment_name="async",
        synchronous=False,
    )
    assert submitted.get_status() == "RUNNING"
    assert modelyard.get_run(submitted.run_id).info.status == "RUNNING"
    go.write_text("4")
    assert submitted.wait() is False
    assert submitted.get_status() == "FAILED" == modelyard.get_run(submitted.run_id).info.status


def test_the_uv_env_manager_builds_the_env_with_uv(
    tracking: str, tmp_path: Path, wheel: Path, env_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uv (from the dev extra, beside this Python) builds the env; mlflow 3.17 tags such runs `uv` too."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    project = write_project(tmp_path / "proj", wheel)
    submitted = projects.run(
        str(project), parameters={"out": str(tmp_path / "seen.json")}, env_manager="uv", experiment_name="uv"
    )
    seen = read_seen(tmp_path / "seen.json")
    assert seen["tinydep"] == 42 and Path(seen["prefix"]).parent == env_root
    assert (Path(seen["prefix"]) / "pyvenv.cfg").read_text().count("uv") >= 1  # made by uv, not venv
    run = modelyard.get_run(submitted.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.project.env"] == "uv"


def test_a_remote_path_parameter_is_downloaded_before_the_command_runs(tracking: str, tmp_path: Path) -> None:
    with modelyard.start_run() as source:
        modelyard.log_text("hello", "data/x.txt")
    project = tmp_path / "reader"
    project.mkdir()
    (project / "MLproject").write_text(
        "entry_points:\n  main:\n    parameters: {data: path}\n    command: 'cat {data} > out.txt'\n"
    )
    uri = f"runs:/{source.info.run_id}/data/x.txt"
    submitted = projects.run(
        str(project), parameters={"data": uri}, env_manager="local", storage_dir=str(tmp_path / "inputs")
    )
    assert (project / "out.txt").read_text() == "hello"
    assert modelyard.get_run(submitted.run_id).data.params == {"data": uri}  # logged as given
    assert [p.name for p in (tmp_path / "inputs").iterdir()] != []


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[dict, str]]:
    return {
        "unknown entry point": ({"entry_point": "nope"}, "Could not find entry point 'nope'"),
        "missing parameter": ({"parameters": {}}, "No value given for missing parameters: 'out'"),
        "wrong type": (
            {"parameters": {"out": "x", "epochs": "1.5"}},
            "'epochs' of entry point 'main' must be an int",
        ),
        "no such project": ({"uri": str(tmp_path / "nowhere")}, "does not exist"),
        "version of a plain folder": ({"version": "HEAD"}, "--version needs a git repository"),
        "unknown git version": ({"uri": "repo", "version": "no-such-ref"}, "Could not check out version"),
    }


@pytest.mark.parametrize(
    "case",
    ["unknown entry point", "missing parameter", "wrong type", "no such project", "version of a plain folder",
     "unknown git version"],
)  # fmt: skip
def test_bad_input_is_refused_before_any_run_exists(tracking: str, tmp_path: Path, case: str) -> None:
    project = write_project(tmp_path / "proj", None)
    git_repo_with_two_commits(tmp_path / "repo", None)
    kwargs, message = _bad_inputs(tmp_path)[case]
    kwargs = {"uri": str(project), "parameters": {"out": "x"}, **kwargs}
    if kwargs["uri"] == "repo":
        kwargs["uri"] = str(tmp_path / "repo")
    with pytest.raises(ExecutionException) as info:
        projects.run(env_manager="local", experiment_name="bad", **kwargs)
    assert message in info.value.message
    assert _runs("bad") == []
    cli_args = [kwargs["uri"], "-e", kwargs.get("entry_point", "main"), "--env-manager", "local",
                "--experiment-name", "bad"]  # fmt: skip
    cli_args += [f"-P{k}={v}" for k, v in kwargs["parameters"].items()]
    cli_args += ["--version", kwargs["version"]] if "version" in kwargs else []
    result = CliRunner().invoke(main, ["run", *cli_args])
    assert result.exit_code == 1 and message in result.output
    assert _runs("bad") == []


@pytest.mark.parametrize(
    ("env_line", "manager", "message"),
    [
        ("conda_env: conda.yaml", None, "needs conda: no conda executable"),
        ("docker_env: {image: python:3.11}", None, "docker_env"),
    ],
)
def test_environments_modelyard_cannot_build_are_named(
    tracking: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env_line: str,
    manager: str | None,
    message: str,
) -> None:
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + "/usr/bin:/bin")
    monkeypatch.delenv("MLFLOW_CONDA_HOME", raising=False)
    project = write_project(tmp_path / "proj", None)
    (project / "conda.yaml").write_text("dependencies: [python=3.11]\n")
    text = (project / "MLproject").read_text().replace("python_env: python_env.yaml", env_line)
    (project / "MLproject").write_text(text)
    with pytest.raises(ExecutionException) as info:
        projects.run(str(project), parameters={"out": "x"}, env_manager=manager, experiment_name="envs")
    assert message in info.value.message
    assert _runs("envs") == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_the_command_and_marks_the_run_killed(
    tracking: str, tmp_path: Path, signum: int
) -> None:
    project = tmp_path / "sleeper"
    project.mkdir()
    (project / "MLproject").write_text(
        "entry_points:\n  main:\n    parameters: {pidfile: string}\n"
        "    command: 'sleep 300 & echo $! > {pidfile}; wait'\n"
    )
    pidfile = tmp_path / "sleep.pid"
    cli = subprocess.Popen(
        [sys.executable, "-m", "modelyard.cli", "run", str(project), "-P", f"pidfile={pidfile}",
         "--env-manager", "local", "--experiment-name", "killed"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # Ctrl-C reaches a terminal's foreground command with SIGINT at its default action; a test run
        # started in the background (`make test &`, CI scripts) hands its children SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (pidfile.exists() and pidfile.read_text().strip()):
            assert cli.poll() is None, cli.communicate()
            assert time.monotonic() < deadline, "the project's command never started"
            time.sleep(0.1)
        sleeper = int(pidfile.read_text())
        cli.send_signal(signum)
        _, stderr = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 130, stderr
    [run] = _runs("killed")
    assert run.info.status == "KILLED" and run.info.end_time is not None
    with pytest.raises(ProcessLookupError):
        for _ in range(50):  # the group was signalled; give the kernel a moment to reap it
            os.kill(sleeper, 0)
            time.sleep(0.1)


def test_start_run_continues_the_run_named_by_mlflow_run_id_once(tracking: str, monkeypatch) -> None:
    made = modelyard.MlflowClient().create_run("0")
    monkeypatch.setenv("MLFLOW_RUN_ID", made.info.run_id)
    with modelyard.start_run() as run:
        assert run.info.run_id == made.info.run_id
        assert "MLFLOW_RUN_ID" not in os.environ
        with modelyard.start_run(nested=True) as child:
            assert child.data.tags["mlflow.parentRunId"] == made.info.run_id
    with modelyard.start_run() as later:
        assert later.info.run_id != made.info.run_id
    assert modelyard.get_run(made.info.run_id).info.status == "FINISHED"
