"""The shared fixtures hand out what they promise: isolated, real, reachable servers."""

from __future__ import annotations

import psycopg
import pytest

from modelyard.devstack.postgres import PostgresServer
from modelyard.devstack.process import pid_alive


@pytest.mark.postgres
def test_postgres_uri_is_a_fresh_empty_database(postgres_uri: str, postgres_server: PostgresServer) -> None:
    assert postgres_uri.startswith(f"postgresql://postgres@127.0.0.1:{postgres_server.port}/t_")
    with psycopg.connect(postgres_uri) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'listen_addresses')"
            ).fetchall()
        )
    assert tables == (0,)
    assert settings == {"fsync": "off", "listen_addresses": "127.0.0.1"}


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
