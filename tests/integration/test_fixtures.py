"""The shared fixtures hand out what they promise: isolated, real, reachable servers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from tests.support.services import start_service

from modelyard.devstack.postgres import PostgresServer
from modelyard.devstack.process import (
    StartupError,
    group_members,
    http_ok,
    pid_alive,
    port_in_use,
    wait_until,
)
from modelyard.devstack.services import GATEWAY, ServiceSpec


@pytest.mark.postgres
def test_postgres_uri_is_a_fresh_empty_database(postgres_uri: str, postgres_server: PostgresServer) -> None:
    assert postgres_uri.startswith(f"postgresql://postgres@127.0.0.1:{postgres_server.port}/t_")
    with psycopg.connect(postgres_uri) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        settings = dict(
            conn.execute(
                "SELECT name, current_setting(name) FROM pg_settings"
                " WHERE name IN ('fsync', 'listen_addresses', 'shared_buffers')"
            ).fetchall()
        )
    assert tables == (0,)
    assert settings == {"fsync": "off", "listen_addresses": "127.0.0.1", "shared_buffers": "512MB"}


@pytest.mark.postgres
def test_each_test_gets_its_own_database(postgres_server: PostgresServer, postgres_uri: str) -> None:
    name = postgres_uri.rsplit("/", 1)[1]
    assert postgres_server.database_exists(name)
    with psycopg.connect(postgres_uri) as conn:
        conn.execute("CREATE TABLE marker (id int)")
    other = postgres_server.create_database("t_other_for_isolation")
    try:
        with psycopg.connect(other) as conn:
            assert conn.execute("SELECT to_regclass('marker')").fetchone() == (None,)
    finally:
        postgres_server.drop_database("t_other_for_isolation")
    assert not postgres_server.database_exists("t_other_for_isolation")


@pytest.mark.postgres
def test_postgres_server_runs_as_one_known_process(postgres_server: PostgresServer) -> None:
    assert postgres_server.pid is not None and pid_alive(postgres_server.pid)


def test_db_uri_names_its_backend(db_uri: str, request: pytest.FixtureRequest) -> None:
    backend = request.node.callspec.params["db_uri"]
    assert db_uri.startswith({"sqlite": "sqlite:///", "postgres": "postgresql://"}[backend])


@pytest.mark.s3
def test_s3_bucket_is_fresh_and_writable(s3_bucket: str, s3_endpoint: str) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    assert client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0
    client.put_object(Bucket=s3_bucket, Key="a/b.txt", Body=b"hello")
    assert client.get_object(Bucket=s3_bucket, Key="a/b.txt")["Body"].read() == b"hello"
    assert s3_endpoint.startswith("http://127.0.0.1:")


def test_start_service_runs_gunicorn_with_workers_and_stops_the_whole_group(tmp_path: Path) -> None:
    # The gateway stands in for any service (it needs no database): the helper is the same for all.
    with start_service(GATEWAY, tmp_path, workers=2) as service:
        assert service.pid is not None
        assert http_ok(f"{service.url}{GATEWAY.health_path}")
        members = group_members(service.pid)
        assert service.pid in members
        workers = [pid for pid in members if pid != service.pid]
        assert len(workers) >= 2, service.log()
        assert service.url.startswith("http://127.0.0.1:")
    assert [pid for pid in members if pid_alive(pid)] == []
    assert not port_in_use(int(service.url.rsplit(":", 1)[1]))


def test_a_service_that_cannot_start_fails_fast_with_its_log(tmp_path: Path) -> None:
    broken = ServiceSpec("broken", "modelyard.no_such_module_anywhere:app")
    with pytest.raises(StartupError) as exc:
        with start_service(broken, tmp_path, workers=1):
            pass
    assert "exited during start-up" in str(exc.value)
    assert "no_such_module_anywhere" in str(exc.value)


@pytest.mark.postgres
def test_a_killed_test_process_takes_its_servers_with_it(tmp_path: Path) -> None:
    # SIGKILL skips atexit and fixture teardown; the parent-death signal must still stop the servers.
    script = (
        "import sys, tempfile, pathlib\n"
        "from modelyard.devstack.postgres import PostgresServer\n"
        "from modelyard.devstack.s3 import S3Server\n"
        "from modelyard.devstack.process import free_port\n"
        "base = pathlib.Path(tempfile.mkdtemp(prefix='modelyard-orphan-'))\n"
        "pg = PostgresServer(base / 'data', free_port(), durable=False, tied_to_parent=True)\n"
        "pg.start()\n"
        "s3 = S3Server(free_port(), base / 's3.log', tied_to_parent=True)\n"
        "s3.start()\n"
        "print(pg.pid, s3.pid, base, flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    *pid_fields, base = proc.stdout.readline().split()
    pids = [int(pid) for pid in pid_fields]
    try:
        assert len(pids) == 2 and all(pid_alive(pid) for pid in pids)
        proc.kill()
        proc.wait()
        wait_until(lambda: not any(pid_alive(pid) for pid in pids), timeout=60, what="orphaned servers to exit")
    finally:
        # The cluster may live outside `base` (relocated for the `postgres` user): remove() finds it.
        PostgresServer(Path(base) / "data", 0).remove()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.postgres
def test_tracking_server_fixture_serves_a_migrated_postgres_database(
    tracking_server: Callable[..., str], postgres_uri: str
) -> None:
    url = tracking_server(postgres_uri)
    assert http_ok(f"{url}/health")
    with urllib.request.urlopen(f"{url}/api/2.0/mlflow/experiments/get?experiment_id=0") as response:
        assert json.load(response)["experiment"]["name"] == "Default"


def test_tracking_server_fixture_defaults_to_sqlite_in_the_test_dir(
    tracking_server: Callable[..., str], tmp_path: Path
) -> None:
    url = tracking_server()
    assert http_ok(f"{url}/health")
    assert (tmp_path / "tracking-0" / "modelyard.db").exists()


@pytest.mark.allow_server_errors
def test_the_no_500_check_finds_a_real_server_error(postgres_uri: str, tmp_path: Path) -> None:
    """The suite-wide check (tests/support/server_errors.py) must recognise what a real 500 leaves in
    a service log: here a table dropped under the tracking service makes every experiment read fail
    with an error nothing maps."""
    import requests
    from tests.support import server_errors
    from tests.support.services import start_tracking_server

    with start_tracking_server(tmp_path / "svc", postgres_uri, workers=1) as service:
        with psycopg.connect(postgres_uri, autocommit=True) as conn:
            conn.execute("ALTER TABLE experiments RENAME TO experiments_gone")
        response = requests.get(f"{service.url}/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"}, timeout=30)
        assert response.status_code == 500
    excerpts = server_errors.scan(service.log_path, 0)
    assert excerpts and "UndefinedTable" in "\n".join(excerpts)
    assert not [f for f in server_errors.FINDINGS if f.test.endswith("finds_a_real_server_error")]
