"""The `modelyard` command: server under gunicorn, db upgrade, experiments and runs commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.integration.client_workflow import reset_fluent_state

import modelyard as mlflow
from modelyard.cli import main
from modelyard.client import tracking_uri
from modelyard.devstack.process import (
    LOOPBACK,
    death_signal_hook,
    free_port,
    http_ok,
    log_tail,
    stop_group,
    wait_until,
)

CLI = [sys.executable, "-m", "modelyard.cli"]


@pytest.fixture
def populated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str, list[str]]]:
    """A SQLite store with one experiment holding three runs; yields (uri, experiment_id, run_ids)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MODELYARD_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'cli.db'}"
    reset_fluent_state()
    mlflow.set_tracking_uri(uri)
    experiment_id = mlflow.set_experiment("cli-exp").experiment_id
    run_ids = []
    for i in range(3):
        with mlflow.start_run(run_name=f"r{i}") as run:
            mlflow.log_param("i", i)
            mlflow.log_metric("score", float(i))
        run_ids.append(run.info.run_id)
    reset_fluent_state()
    yield uri, experiment_id, run_ids
    tracking_uri.clear_store_cache()


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _json(*args: str) -> dict:
    return json.loads(_invoke(*args, "--json"))


def test_experiments_list_create_describe_delete(populated: tuple[str, str, list[str]]) -> None:
    uri, experiment_id, _ = populated
    table = _invoke("experiments", "list", "--tracking-uri", uri)
    header, rule, *rows = table.splitlines()
    assert header.split() == ["experiment_id", "name", "lifecycle_stage", "artifact_location"]
    assert {r.split()[1] for r in rows} == {"cli-exp", "Default"}

    created = json.loads(
        _invoke("experiments", "create", "--name", "made-by-cli", "--json", "--tracking-uri", uri)
    )
    new_id = created["experiment_id"]
    described = json.loads(
        _invoke("experiments", "describe", "--name", "made-by-cli", "--json", "--tracking-uri", uri)
    )
    assert described["experiment"]["experiment_id"] == new_id
    assert "name:              made-by-cli" in _invoke(
        "experiments", "describe", new_id, "--tracking-uri", uri
    )

    _invoke("experiments", "delete", new_id, "--tracking-uri", uri)
    active = json.loads(_invoke("experiments", "list", "--json", "--tracking-uri", uri))["experiments"]
    deleted = _json("experiments", "list", "--view", "deleted", "--tracking-uri", uri)["experiments"]
    assert new_id not in {e["experiment_id"] for e in active}
    assert [e["experiment_id"] for e in deleted] == [new_id]


def test_runs_list_filter_order_describe_delete(populated: tuple[str, str, list[str]]) -> None:
    uri, experiment_id, run_ids = populated
    listed = json.loads(_invoke(
        "runs", "list", "--experiment-id", experiment_id, "--filter", "metrics.score >= 1",
        "--order-by", "metrics.score DESC", "--json", "--tracking-uri", uri,
    ))["runs"]  # fmt: skip
    assert [r["info"]["run_id"] for r in listed] == [run_ids[2], run_ids[1]]
    # Paging inside the command: a small max-results still returns that many.
    two = _json("runs", "list", "--experiment-id", experiment_id, "--max-results", "2", "--tracking-uri", uri)
    assert len(two["runs"]) == 2

    table = _invoke("runs", "list", "--experiment-id", experiment_id, "--tracking-uri", uri)
    assert table.splitlines()[0].split() == [
        "run_id",
        "run_name",
        "experiment_id",
        "status",
        "start_time",
        "end_time",
    ]
    assert len(table.splitlines()) == 2 + 3

    text = _invoke("runs", "describe", run_ids[1], "--tracking-uri", uri)
    assert f"run_id:          {run_ids[1]}" in text and "score" in text and "FINISHED" in text
    described = json.loads(_invoke("runs", "describe", run_ids[1], "--json", "--tracking-uri", uri))
    assert described["run"]["data"]["params"] == [{"key": "i", "value": "1"}]

    _invoke("runs", "delete", run_ids[0], "--tracking-uri", uri)
    remaining = _json("runs", "list", "--experiment-id", experiment_id, "--tracking-uri", uri)["runs"]
    assert run_ids[0] not in {r["info"]["run_id"] for r in remaining}
    _invoke("runs", "restore", run_ids[0], "--tracking-uri", uri)
    assert len(_json("runs", "list", "--experiment-id", experiment_id, "--tracking-uri", uri)["runs"]) == 3


def test_errors_exit_1_with_the_mlflow_code(populated: tuple[str, str, list[str]]) -> None:
    uri, _, _ = populated
    result = subprocess.run(
        [*CLI, "runs", "describe", "0" * 32, "--tracking-uri", uri], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "RESOURCE_DOES_NOT_EXIST" in result.stderr
    assert "Traceback" not in result.stderr


def test_tracking_uri_comes_from_the_environment(populated: tuple[str, str, list[str]]) -> None:
    uri, _, _ = populated
    result = subprocess.run(
        [*CLI, "experiments", "list", "--json"], capture_output=True, text=True, check=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
    )  # fmt: skip
    assert "cli-exp" in {e["name"] for e in json.loads(result.stdout)["experiments"]}


@pytest.mark.postgres
def test_db_upgrade_brings_postgres_to_the_newest_schema(postgres_uri: str) -> None:
    from sqlalchemy import inspect

    from modelyard.store.sql.engine import create_engine_for
    from modelyard.store.sql.migrate import is_up_to_date

    for _ in range(2):  # a second run is a no-op
        result = subprocess.run([*CLI, "db", "upgrade", postgres_uri], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    engine = create_engine_for(postgres_uri)
    try:
        assert is_up_to_date(engine)
        assert {"experiments", "runs", "metrics"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_server_runs_gunicorn_with_the_given_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    log_path = tmp_path / "server.log"
    args = [
        *CLI, "server",
        "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination", str(tmp_path / "artifacts"),
        "--host", LOOPBACK, "--port", str(port), "--workers", "2",
    ]  # fmt: skip
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
                                start_new_session=True, preexec_fn=death_signal_hook(signal.SIGTERM))  # fmt: skip
    url = f"http://{LOOPBACK}:{port}"
    monkeypatch.chdir(tmp_path)
    reset_fluent_state()
    try:
        wait_until(lambda: http_ok(f"{url}/health"), timeout=60, what="modelyard server",
                   alive=lambda: proc.poll() is None, log_path=log_path)  # fmt: skip
        mlflow.set_tracking_uri(url)
        mlflow.set_experiment("served")
        with mlflow.start_run() as run:
            mlflow.log_metrics({"a": 1.0, "b": 2.0})
        assert mlflow.get_run(run.info.run_id).data.metrics == {"a": 1.0, "b": 2.0}
        assert (tmp_path / "server.db").is_file()
        workers = subprocess.run(
            ["pgrep", "-g", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(workers) >= 3  # the gunicorn master and two workers, in the CLI's process group
    except BaseException:
        sys.stdout.write(log_tail(log_path, 80))
        raise
    finally:
        reset_fluent_state()
        stop_group(proc.pid, proc=proc)


@pytest.mark.parametrize("command", [["users", "list"], ["gc", "--dry-run"], ["storage"], ["audit"]])
def test_database_commands_name_what_is_missing_and_create_no_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """Run in a folder with no database and no MODELYARD_BACKEND_STORE_URI (the stack's database lives in
    PostgreSQL), they created an empty modelyard.db and said its schema was empty. Now they say what to
    pass; with this folder's embedded database (`modelyard ui`'s) they use it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MODELYARD_BACKEND_STORE_URI", raising=False)
    missing = CliRunner().invoke(main, command)
    assert missing.exit_code == 1, missing.output
    assert "No database given" in missing.output and ".stack/admin-env" in missing.output
    assert not (tmp_path / "modelyard.db").exists()
    assert CliRunner().invoke(main, ["db", "upgrade", "sqlite:///modelyard.db"]).exit_code == 0
    found = CliRunner().invoke(main, command)
    assert found.exit_code == 0, found.output
