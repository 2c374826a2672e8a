"""Helpers shared by the artifact integration and compat tests: run the artifacts service, hash files."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.support.services import start_service

from modelyard.devstack.s3 import DUMMY_AWS_ENV
from modelyard.devstack.services import ARTIFACTS, GunicornService

API = "/api/2.0/mlflow-artifacts/artifacts"


@contextmanager
def artifacts_service(
    workdir: Path,
    destination: str,
    s3_endpoint: str | None = None,
    *,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
) -> Iterator[GunicornService]:
    service_env = {"MODELYARD_ARTIFACTS_DESTINATION": destination, **DUMMY_AWS_ENV}
    if s3_endpoint:
        service_env["MODELYARD_S3_ENDPOINT_URL"] = s3_endpoint
    service_env.update(env or {})
    with start_service(ARTIFACTS, workdir, env=service_env, workers=workers) as service:
        try:
            yield service
        except BaseException:
            print(service.log())
            raise


def sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def random_file(path: Path, size: int) -> Path:
    """`size` random bytes written in 4 MiB blocks (so a 200 MB file never sits in memory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        remaining = size
        while remaining:
            block = min(remaining, 4 * 1024 * 1024)
            f.write(os.urandom(block))
            remaining -= block
    return path


def nested_tree(root: Path) -> dict[str, str]:
    """A small folder tree; returns {relative posix path: sha256}."""
    files = {
        "model/MLmodel": b"flavors: {}\n",
        "model/data/weights.bin": os.urandom(70_000),
        "model/data/deeper/notes.txt": "naïve café\n".encode(),
        "plots/loss.png": os.urandom(3_000),
        "empty.txt": b"",
        "with space/file (1).json": b'{"a": 1}',
    }
    for rel, data in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return {rel: sha256(root / rel) for rel in files}


def tree_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256(p) for p in root.rglob("*") if p.is_file()}
