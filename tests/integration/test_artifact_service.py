"""The artifacts service under real gunicorn, backed by moto's S3 server (and a local folder): the MLflow
artifacts API, path-traversal refusals that touch nothing, cut-off uploads that leave nothing, S3 down."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from tests.integration.artifact_helpers import (
    API,
    artifacts_service,
    nested_tree,
    random_file,
    sha256,
    tree_hashes,
)

from modelyard.artifact_repos import get_repository
from modelyard.artifact_repos.http import HttpArtifactRepository
from modelyard.devstack.process import free_port
from modelyard.devstack.s3 import S3Server
from modelyard.devstack.services import GunicornService

pytestmark = [pytest.mark.s3]


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    name = f"artifacts-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(name)
    return name


#: Bodies announced above this go multipart instead of one streamed PUT (the default is 1 GiB).
SINGLE_PUT_MAX = 32 * 1024 * 1024


@pytest.fixture(scope="module")
def service(
    s3_server: S3Server, bucket: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornService]:
    workdir = tmp_path_factory.mktemp("artifacts-s3")
    env = {"MODELYARD_S3_SINGLE_PUT_MAX": str(SINGLE_PUT_MAX)}
    with artifacts_service(workdir, f"s3://{bucket}/root", s3_server.endpoint, workers=2, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def service_url(service: GunicornService) -> str:
    return service.url


@pytest.fixture
def s3(s3_server: S3Server) -> Any:
    return s3_server.client()


def keys(s3: Any, bucket: str, prefix: str = "") -> dict[str, int]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {obj["Key"]: obj["Size"] for page in pages for obj in page.get("Contents", [])}


def raw_request(
    url: str, method: str, raw_path: str, body: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    """Send `raw_path` byte for byte (requests/urllib3 would normalise `..` away before sending)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request(method, raw_path, body=body)
        response = conn.getresponse()
        payload = response.read()
        return response.status, json.loads(payload) if payload else {}
    finally:
        conn.close()


def test_nested_folder_round_trip_through_s3(service_url: str, bucket: str, s3: Any, tmp_path: Path) -> None:
    src = tmp_path / "src"
    expected = nested_tree(src)
    repo = HttpArtifactRepository(f"{service_url}{API}/1/run-a/artifacts")
    repo.log_artifacts(str(src))
    repo.log_artifact(str(src / "empty.txt"), "single/file")

    top = repo.list_artifacts()
    assert [(i.path, i.is_dir) for i in top] == [
        ("empty.txt", False),
        ("model", True),
        ("plots", True),
        ("single", True),
        ("with space", True),
    ]
    assert [(i.path, i.file_size) for i in repo.list_artifacts("model/data")] == [
        ("model/data/deeper", None),
        ("model/data/weights.bin", 70_000),
    ]
    assert repo.list_artifacts("model/MLmodel") == []

    out = Path(repo.download_artifacts("", str(tmp_path / "out")))
    assert tree_hashes(out) == {**expected, "single/file/empty.txt": expected["empty.txt"]}
    one = repo.download_artifacts("model/data/weights.bin", str(tmp_path / "one"))
    assert sha256(one) == expected["model/data/weights.bin"]
    assert keys(s3, bucket, "root/1/run-a/")["root/1/run-a/artifacts/model/data/weights.bin"] == 70_000

    repo.delete_artifacts("model")
    assert [i.path for i in repo.list_artifacts()] == ["empty.txt", "plots", "single", "with space"]
    assert not any(k.startswith("root/1/run-a/artifacts/model/") for k in keys(s3, bucket))


def test_a_large_download_keeps_its_keep_alive_connection_usable(
    service_url: str, s3: Any, bucket: str
) -> None:
    """Bodies over INLINE_MAX are written by the copy thread (`runtime.thread_send`) behind uvicorn's
    back: the bytes, the Content-Length and the next request on the same connection must all be right."""
    big = os.urandom(5 * 1024 * 1024 + 3)
    s3.put_object(Bucket=bucket, Key="root/keepalive/big.bin", Body=big)
    s3.put_object(Bucket=bucket, Key="root/keepalive/small.txt", Body=b"small")
    host, port = service_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        for _ in range(2):
            conn.request("GET", f"{API}/keepalive/big.bin")
            response = conn.getresponse()
            assert (response.status, response.getheader("Content-Length")) == (200, str(len(big)))
            assert response.read() == big
            sock = conn.sock
            conn.request("GET", f"{API}/keepalive/small.txt")
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b"small")
            assert conn.sock is sock  # the same connection served all of it
    finally:
        conn.close()


def test_missing_artifact_is_a_json_404(service_url: str) -> None:
    response = requests.get(f"{service_url}{API}/1/nope/artifacts/missing.bin", timeout=30)
    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    listing = requests.get(f"{service_url}{API}", params={"path": "1/nope"}, timeout=30)
    assert listing.status_code == 200 and listing.json() == {}


def test_ajax_api_prefix_serves_the_same_artifacts(service_url: str) -> None:
    put = requests.put(
        f"{service_url}/ajax-api/2.0/mlflow-artifacts/artifacts/ajax/x.txt", data=b"hi", timeout=30
    )
    assert put.status_code == 200 and put.json() == {}
    assert requests.get(f"{service_url}{API}/ajax/x.txt", timeout=30).content == b"hi"
    listing = requests.get(
        f"{service_url}/ajax-api/2.0/mlflow-artifacts/artifacts", params={"path": "ajax"}, timeout=30
    )
    assert listing.json() == {"files": [{"path": "x.txt", "is_dir": False, "file_size": 2}]}


TRAVERSALS = [
    "../escape.txt",
    "victim/../../escape.txt",
    "%2e%2e/escape.txt",
    "victim/%2E%2E/%2e%2e/escape.txt",
    "%252e%252e/escape.txt",
    "/etc/passwd",
    "%2fescape.txt",
    "victim/..%5c..%5cescape.txt",
    "victim%00/escape.txt",
    "C:/escape.txt",
    "~/escape.txt",
]


@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_is_refused_and_touches_nothing(
    service_url: str, bucket: str, s3: Any, method: str, path: str
) -> None:
    s3.put_object(Bucket=bucket, Key="root/victim/escape.txt", Body=b"keep")
    s3.put_object(Bucket=bucket, Key="escape.txt", Body=b"outside")
    before = keys(s3, bucket)
    status, body = raw_request(service_url, method, f"{API}/{path}", b"evil" if method == "PUT" else None)
    assert status in (400, 403), body
    assert body["error_code"] in ("INVALID_PARAMETER_VALUE", "PERMISSION_DENIED")
    assert keys(s3, bucket) == before
    assert s3.get_object(Bucket=bucket, Key="root/victim/escape.txt")["Body"].read() == b"keep"


@pytest.mark.parametrize("path", ["..", "../", "victim/../..", "/", "%2e%2e", "/etc"])
def test_list_refuses_traversal(service_url: str, path: str) -> None:
    response = requests.get(f"{service_url}{API}", params={"path": path}, timeout=30)
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def _wait_for(condition: Any, what: str, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never became true: {what}")
        time.sleep(0.05)


def _connections_to(service: GunicornService, port: int) -> int:
    """Open TCP connections from the service's workers to `port` (moto closes each after one request,
    so an open one is a request in flight)."""
    assert service.pid is not None
    count = 0
    for worker in psutil.Process(service.pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            count += sum(
                1
                for c in worker.net_connections(kind="tcp")
                if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
            )
    return count


@pytest.mark.parametrize(
    ("announced", "s3_upload"),
    [(24 * 1024 * 1024, "one streamed PUT"), (SINGLE_PUT_MAX + 8 * 1024 * 1024, "multipart")],
)
def test_cut_off_upload_leaves_no_object_and_no_pending_multipart(
    service: GunicornService, s3_server: S3Server, bucket: str, s3: Any, announced: int, s3_upload: str
) -> None:
    key = f"root/cut/{uuid.uuid4().hex}.bin"
    sent = 16 * 1024 * 1024
    s3_port = int(s3_server.endpoint.rsplit(":", 1)[1])
    host, port = service.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))

    def pending() -> list[dict[str, Any]]:
        uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])
        return [u for u in uploads if u["Key"] == key]

    try:
        head = f"PUT {API}/{key.removeprefix('root/')} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {announced}\r\n\r\n"
        sock.sendall(head.encode())
        block = b"\xab" * (1024 * 1024)
        for _ in range(sent // len(block)):
            sock.sendall(block)
        # The body is being streamed to S3 before we hang up...
        if s3_upload == "multipart":
            _wait_for(lambda: bool(pending()), "a multipart upload in progress")
        else:
            _wait_for(lambda: _connections_to(service, s3_port) > 0, "the PUT to S3 in flight")
    finally:
        sock.close()
    # ... and hanging up aborts it: nothing partial ever becomes visible.
    _wait_for(lambda: not pending(), "the multipart upload aborted")
    _wait_for(lambda: _connections_to(service, s3_port) == 0, "the PUT to S3 abandoned")
    assert key not in keys(s3, bucket, "root/cut/")
    status, body = raw_request(service.url, "GET", f"{API}/{key.removeprefix('root/')}")
    assert status == 404 and body["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize(
    ("size", "parts"), [(20 * 1024 * 1024 + 1, 0), (SINGLE_PUT_MAX + 1, 5)], ids=["one-put", "multipart"]
)
def test_streamed_put_round_trips_through_s3(
    service_url: str, bucket: str, s3: Any, tmp_path: Path, size: int, parts: int
) -> None:
    """A plain PUT with Content-Length: up to SINGLE_PUT_MAX one streamed PUT to S3, above it multipart."""
    src = random_file(tmp_path / "up.bin", size)
    with open(src, "rb") as f:
        response = requests.put(f"{service_url}{API}/put/up.bin", data=f, timeout=120)
    assert response.status_code == 200, response.text
    etag = s3.head_object(Bucket=bucket, Key="root/put/up.bin")["ETag"].strip('"')
    assert etag.endswith(f"-{parts}") if parts else "-" not in etag
    with requests.get(f"{service_url}{API}/put/up.bin", stream=True, timeout=120) as got:
        digest = hashlib.sha256()
        for block in got.iter_content(1024 * 1024):
            digest.update(block)
    assert digest.hexdigest() == sha256(src)


def test_cut_off_upload_to_a_local_folder_leaves_no_file(tmp_path: Path) -> None:
    destination = tmp_path / "dest"
    with artifacts_service(tmp_path / "svc", str(destination)) as service:
        host, port = service.url.removeprefix("http://").split(":")
        sock = socket.create_connection((host, int(port)))
        try:
            sock.sendall(
                f"PUT {API}/run/part.bin HTTP/1.1\r\nHost: {host}\r\nContent-Length: 10000000\r\n\r\n".encode()
            )
            sock.sendall(b"x" * 3_000_000)
            _wait_for(lambda: any((destination / "run").glob(".upload-*")), "a temp file being written")
        finally:
            sock.close()
        _wait_for(lambda: not any((destination / "run").iterdir()), "the temp file removed")
        assert not (destination / "run" / "part.bin").exists()


def test_symlink_planted_in_a_local_destination_is_not_followed(tmp_path: Path) -> None:
    destination, outside = tmp_path / "dest", tmp_path / "outside"
    destination.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (destination / "link").symlink_to(outside, target_is_directory=True)
    with artifacts_service(tmp_path / "svc", str(destination)) as service:
        put = requests.put(f"{service.url}{API}/link/new.txt", data=b"x", timeout=30)
        get = requests.get(f"{service.url}{API}/link/secret.txt", timeout=30)
        delete = requests.delete(f"{service.url}{API}/link/secret.txt", timeout=30)
    assert (put.status_code, get.status_code, delete.status_code) == (403, 403, 403)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_s3_down_answers_503_quickly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with artifacts_service(tmp_path, "s3://no-such-host-bucket/root", dead) as service:
        started = time.monotonic()
        calls = [
            requests.get(f"{service.url}{API}", params={"path": "x"}, timeout=60),
            requests.get(f"{service.url}{API}/x/y.bin", timeout=60),
            requests.put(f"{service.url}{API}/x/y.bin", data=b"z" * 1000, timeout=60),
        ]
        elapsed = time.monotonic() - started
    for response in calls:
        assert response.status_code == 503, response.text
        assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    with capsys.disabled():
        print(f"\nS3 down: 3 requests answered 503 in {elapsed:.2f}s")


def test_local_file_system_refusals_are_400s(tmp_path: Path) -> None:
    destination = tmp_path / "dest"
    destination.mkdir()
    with artifacts_service(tmp_path / "svc", str(destination)) as service:
        assert requests.put(f"{service.url}{API}/a/file.txt", data=b"x", timeout=30).status_code == 200
        under_a_file = requests.put(f"{service.url}{API}/a/file.txt/child.txt", data=b"x", timeout=30)
        long_name = requests.put(f"{service.url}{API}/a/{'n' * 300}.txt", data=b"x", timeout=30)
        long_folder = requests.put(f"{service.url}{API}/{'d' * 300}/x.txt", data=b"x", timeout=30)
    for response in (under_a_file, long_name, long_folder):
        assert response.status_code == 400, response.text
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert sorted(p.name for p in (destination / "a").iterdir()) == ["file.txt"]  # no temp file left


@contextmanager
def frozen_s3() -> Iterator[str]:
    """An "S3" that accepts connections and never answers (a hung load balancer, a frozen node)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


def test_s3_frozen_answers_503_after_the_read_timeout(tmp_path: Path) -> None:
    # The client's own timeout (20 s) is the bound: without a read timeout the service would wait
    # for S3 (botocore's default: 60 s, twice) and the request would time out client-side instead.
    with frozen_s3() as endpoint, artifacts_service(
        tmp_path, "s3://frozen-bucket/root", endpoint, env={"MODELYARD_S3_READ_TIMEOUT": "1"}
    ) as service:
        calls = [
            requests.get(f"{service.url}{API}/x/y.bin", timeout=20),
            requests.put(f"{service.url}{API}/x/y.bin", data=b"z" * 1000, timeout=20),
        ]
        assert requests.get(f"{service.url}/health", timeout=20).status_code == 200
    for response in calls:
        assert response.status_code == 503, response.text
        assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"


def test_presigned_multipart_upload_and_fallback(
    s3_server: S3Server, bucket: str, s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_MULTIPART_UPLOAD_MIN_SIZE", str(6 * 1024 * 1024))
    monkeypatch.setenv("MODELYARD_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * 1024 * 1024))
    big = random_file(tmp_path / "big.bin", 23 * 1024 * 1024)
    with artifacts_service(tmp_path / "on", f"s3://{bucket}/mpu-on", s3_server.endpoint) as service:
        create = requests.post(
            f"{service.url}/api/2.0/mlflow-artifacts/mpu/create/a",
            json={"path": "/local/b.bin", "num_parts": 2},
        )
        assert len(create.json()["credentials"]) == 2
        assert f"/{bucket}/mpu-on/a/b.bin?" in create.json()["credentials"][0]["url"]
        abort = requests.post(
            f"{service.url}/api/2.0/mlflow-artifacts/mpu/abort/a",
            json={"path": "b.bin", "upload_id": create.json()["upload_id"]},
        )
        assert abort.status_code == 200
        # A body nested deeper than Python's JSON parser goes is a malformed request, not a 500.
        deep = requests.post(f"{service.url}/api/2.0/mlflow-artifacts/mpu/create/a", data=b"[" * 5000,
                             headers={"Content-Type": "application/json"}, timeout=10)  # fmt: skip
        assert deep.status_code == 400 and deep.json()["error_code"] == "MALFORMED_REQUEST", deep.text
        HttpArtifactRepository(f"{service.url}{API}/run").log_artifact(str(big))
        log = service.log()
    # Parts went straight to S3 through presigned URLs: the proxy saw no PUT of the file body.
    assert "PUT /api/2.0/mlflow-artifacts/artifacts/run/big.bin" not in log
    local = tmp_path / "back.bin"
    s3.download_file(bucket, "mpu-on/run/big.bin", str(local))
    assert sha256(local) == sha256(big)

    env = {"MODELYARD_ARTIFACTS_MULTIPART_UPLOAD": "false"}
    with artifacts_service(
        tmp_path / "off", f"s3://{bucket}/mpu-off", s3_server.endpoint, env=env
    ) as service:
        refused = requests.post(
            f"{service.url}/api/2.0/mlflow-artifacts/mpu/create/a",
            json={"path": "/local/b.bin", "num_parts": 2},
        )
        assert refused.status_code == 501
        assert refused.json()["message"].startswith("Multipart upload is not supported")
        info = requests.get(f"{service.url}/api/3.0/mlflow/server-info").json()
        assert info["multipart_uploads_enabled"] is False
        HttpArtifactRepository(f"{service.url}{API}/run").log_artifact(str(big))
    s3.download_file(bucket, "mpu-off/run/big.bin", str(local))
    assert sha256(local) == sha256(big)


def test_repositories_agree_on_listing_shape(
    s3_server: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_S3_ENDPOINT_URL", s3_server.endpoint)
    src = tmp_path / "src"
    nested_tree(src)
    listings = []
    for uri in (f"s3://{bucket}/direct", str(tmp_path / "local")):
        repo = get_repository(uri)
        repo.log_artifacts(str(src), "x")
        listings.append([i.to_dict() for i in repo.list_artifacts("x/model/data")])
        assert tree_hashes(
            Path(repo.download_artifacts("x", str(tmp_path / f"dl-{len(listings)}")))
        ) == tree_hashes(src)
    assert listings[0] == listings[1]
