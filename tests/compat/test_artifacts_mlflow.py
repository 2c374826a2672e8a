"""Artifacts end to end against S3 on moto's server, in both directions of compatibility:

- the real `mlflow` client logs and downloads a single file, a nested folder and a 200 MB file through
  modelyard's tracking service in single-process mode (artifacts proxied to S3);
- modelyard's client does the same against modelyard and against a real `mlflow server --serve-artifacts
  --artifacts-destination s3://...`;
- and the mlflow client against the mlflow server, which checks the test itself.
Bytes are compared by sha256; the objects are checked in the bucket.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.integration.artifact_helpers import nested_tree, random_file, sha256, tree_hashes
from tests.support.mlflow_processes import run_mlflow
from tests.support.services import start_tracking_server

from modelyard.devstack.s3 import DUMMY_AWS_ENV, S3Server

pytestmark = [pytest.mark.compat, pytest.mark.s3, pytest.mark.slow]

BIG = 200 * 1024 * 1024


@contextmanager
def mlflow_server(workdir: Path, destination: str, s3_endpoint: str) -> Iterator[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        "server", "--workers", "1", "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
        "--serve-artifacts", "--artifacts-destination", destination,
    ]  # fmt: skip
    with run_mlflow(args, workdir, env={**DUMMY_AWS_ENV, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint}) as url:
        yield url


@contextmanager
def modelyard_server(
    workdir: Path, destination: str, s3_endpoint: str, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    env = {
        **(extra_env or {}),
        **DUMMY_AWS_ENV,
        "MODELYARD_ARTIFACTS_DESTINATION": destination,
        "MODELYARD_S3_ENDPOINT_URL": s3_endpoint,
        "MODELYARD_SERVE_ARTIFACTS": "true",
        "MODELYARD_DEFAULT_ARTIFACT_ROOT": "mlflow-artifacts:/",
    }
    with start_tracking_server(workdir, env=env) as service:
        try:
            yield service.url
        except BaseException:
            sys.stdout.write(service.log())
            raise


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("payload")
    tree = root / "tree"
    hashes = nested_tree(tree)
    single = random_file(root / "single" / "weights.bin", 300_000)
    big = random_file(root / "big" / "big.bin", BIG)
    return {"tree": tree, "tree_hashes": hashes, "single": single, "big": big, "big_sha": sha256(big)}


def _log_with_mlflow(tracking_uri: str, payload: dict[str, Any]) -> str:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    try:
        mlflow.set_experiment(f"artifacts-{uuid.uuid4().hex[:8]}")
        with mlflow.start_run() as run:
            mlflow.log_artifact(str(payload["single"]))
            mlflow.log_artifacts(str(payload["tree"]), "tree")
            mlflow.log_artifact(str(payload["big"]), "large")
            mlflow.log_text("hello", "notes/hello.txt")
            assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
            return run.info.run_id
    finally:
        mlflow.set_tracking_uri(None)


def _download_with_mlflow(tracking_uri: str, run_id: str, dst: Path) -> Path:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    assert {f.path for f in client.list_artifacts(run_id)} == {"weights.bin", "tree", "large", "notes"}
    return Path(client.download_artifacts(run_id, "", str(dst)))


def _log_with_modelyard(tracking_uri: str, payload: dict[str, Any]) -> str:
    from modelyard.client import artifacts
    from modelyard.client.client import Client

    client = Client(tracking_uri=tracking_uri)
    experiment_id = client.create_experiment(f"artifacts-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(experiment_id).info.run_id
    artifacts.log_artifact(run_id, payload["single"], tracking_uri=tracking_uri)
    artifacts.log_artifacts(run_id, payload["tree"], "tree", tracking_uri=tracking_uri)
    artifacts.log_artifact(run_id, payload["big"], "large", tracking_uri=tracking_uri)
    artifacts.log_text(run_id, "hello", "notes/hello.txt", tracking_uri=tracking_uri)
    return run_id


def _download_with_modelyard(tracking_uri: str, run_id: str, dst: Path) -> Path:
    from modelyard.client import artifacts

    listed = artifacts.list_artifacts(run_id=run_id, tracking_uri=tracking_uri)
    assert {f.path for f in listed} == {"weights.bin", "tree", "large", "notes"}
    one = artifacts.download_artifacts(
        run_id=run_id,
        artifact_path="tree/model/MLmodel",
        dst_path=str(dst / "one"),
        tracking_uri=tracking_uri,
    )
    assert Path(one).read_bytes() == b"flavors: {}\n"
    return Path(
        artifacts.download_artifacts(
            run_id=run_id, artifact_path="", dst_path=str(dst / "all"), tracking_uri=tracking_uri
        )
    )


CLIENTS = {
    "mlflow": (_log_with_mlflow, _download_with_mlflow),
    "modelyard": (_log_with_modelyard, _download_with_modelyard),
}
SERVERS = {"modelyard": modelyard_server, "mlflow": mlflow_server}


@pytest.mark.parametrize(
    ("client_kind", "server_kind"),
    [("mlflow", "modelyard"), ("modelyard", "modelyard"), ("modelyard", "mlflow"), ("mlflow", "mlflow")],
)
def test_files_folders_and_200mb_round_trip_through_the_proxy_to_s3(
    client_kind: str,
    server_kind: str,
    s3_server: S3Server,
    payload: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in DUMMY_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    # The client must not reach S3 itself: every byte goes through the server.
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("MODELYARD_S3_ENDPOINT_URL", raising=False)
    bucket = f"compat-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    log, download = CLIENTS[client_kind]
    with SERVERS[server_kind](tmp_path / "server", f"s3://{bucket}/root", s3_server.endpoint) as url:
        run_id = log(url, payload)
        out = download(url, run_id, tmp_path / "out")
    got = tree_hashes(out)
    assert got["large/big.bin"] == payload["big_sha"]
    assert got["weights.bin"] == sha256(payload["single"])
    assert {k.removeprefix("tree/"): v for k, v in got.items() if k.startswith("tree/")} == payload[
        "tree_hashes"
    ]
    assert (out / "notes" / "hello.txt").read_text() == "hello"
    s3 = s3_server.client()
    objects = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert [size for key, size in objects.items() if key.endswith(f"{run_id}/artifacts/large/big.bin")] == [
        BIG
    ]


def test_mlflow_client_moves_bytes_by_presigned_urls_through_modelyard(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mlflow reads `multipart_uploads_enabled` / `multipart_downloads_enabled` from /server-info, PUTs
    parts to presigned S3 URLs, and (with `MODELYARD_ARTIFACTS_PRESIGNED_DOWNLOADS`) asks
    `/presigned/<path>` for each file and reads it from S3 in Range requests: the proxy serves no bytes."""
    import mlflow
    from mlflow import MlflowClient

    for key, value in DUMMY_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(8 * 1024 * 1024))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * 1024 * 1024))
    monkeypatch.setenv("MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE", str(10 * 1024 * 1024))  # 3 ranges of the big file
    bucket = f"mpu-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    big = random_file(tmp_path / "mpu.bin", 27 * 1024 * 1024)
    env = {"MODELYARD_ACCESS_LOG": "true", "MODELYARD_ARTIFACTS_PRESIGNED_DOWNLOADS": "true"}
    with modelyard_server(tmp_path / "server", f"s3://{bucket}/root", s3_server.endpoint, env) as url:
        mlflow.set_tracking_uri(url)
        try:
            # A fresh experiment: mlflow caches the active experiment id across servers.
            mlflow.set_experiment(f"mpu-{uuid.uuid4().hex[:8]}")
            with mlflow.start_run() as run:
                mlflow.log_artifact(str(big))
                mlflow.log_text("hello", "notes/hello.txt")
                mlflow.log_text("", "notes/empty.txt")
        finally:
            mlflow.set_tracking_uri(None)
        out = Path(MlflowClient(tracking_uri=url).download_artifacts(run.info.run_id, "", str(tmp_path / "out")))
        log = (tmp_path / "server" / "tracking.log").read_text()
    assert sha256(out / "mpu.bin") == sha256(big)
    assert (out / "notes" / "hello.txt").read_text() == "hello"
    assert (out / "notes" / "empty.txt").read_bytes() == b""
    # The parts went to S3 directly: the server saw create + complete, and no PUT of the body (the small
    # files are single PUTs through the proxy).
    assert "mpu/create" in log and "mpu/complete" in log
    puts = [line for line in log.splitlines() if '"PUT /api/2.0/mlflow-artifacts/artifacts/' in line]
    assert len(puts) == 2 and not any("mpu.bin" in line for line in puts)
    # Every file came from S3 by its presigned URL: the proxy's download route was never asked.
    for name in ("mpu.bin", "notes/hello.txt", "notes/empty.txt"):
        assert f"/api/2.0/mlflow-artifacts/presigned/{run.info.experiment_id}/{run.info.run_id}/artifacts/{name}" in log
    assert "GET /api/2.0/mlflow-artifacts/artifacts/" not in log
    assert "GET /api/2.0/mlflow-artifacts/artifacts?" in log  # (listings still go through the server)
