"""moto's S3-compatible server as a child process, for the test fixtures and `make up`.

moto keeps everything in memory (moto 5 has no on-disk persistence), so the dev stack mirrors its
buckets to a folder on `down` (`snapshot`) and uploads them again on `up` (`restore`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modelyard.devstack.process import (
    LOOPBACK,
    http_ok,
    pid_alive,
    spawn,
    stop_group,
    wait_started,
)

#: Credentials moto accepts (it accepts any); exported so boto3 never looks for real ones.
DUMMY_AWS_ENV: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class S3Server:
    port: int
    log_path: Path
    tied_to_parent: bool = False
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    pid: int | None = field(default=None, init=False)

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **DUMMY_AWS_ENV}
        args = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)]
        self._proc = spawn(args, self.log_path, death_signal=signal.SIGTERM, tied_to_parent=self.tied_to_parent, env=env)
        self.pid = self._proc.pid
        # moto answers its own dashboard API on every port; 200 means the app is serving.
        wait_started(
            self._proc,
            lambda: http_ok(f"{self.endpoint}/moto-api/data.json"),
            timeout=timeout,
            what=f"moto S3 on port {self.port}",
            log_path=self.log_path,
            stop=self.stop,
        )

    def stop(self, grace: float = 10.0) -> None:
        if self.pid is None:
            return
        stop_group(self.pid, sig=signal.SIGTERM, grace=grace, proc=self._proc)
        self.pid = None
        self._proc = None

    def adopt(self, pid: int) -> None:
        self.pid = pid if pid_alive(pid) else None

    def client(self, env: Mapping[str, str] | None = None):  # type: ignore[no-untyped-def]
        """A boto3 S3 client bound to this server (path-style, dummy credentials)."""
        import boto3
        from botocore.config import Config

        creds = {**DUMMY_AWS_ENV, **(env or {})}
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=creds["AWS_DEFAULT_REGION"],
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def create_bucket(self, name: str) -> None:
        """Create `name` if missing (idempotent, so `make up` can run it on every start)."""
        client = self.client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if name not in existing:
            client.create_bucket(Bucket=name)

    def snapshot(self, folder: Path, buckets: tuple[str, ...]) -> int:
        """Mirror `buckets` into folder/<bucket>/<key> (stale files removed); returns the object count."""
        client = self.client()
        count = 0
        for bucket in buckets:
            root = folder / bucket
            kept: set[Path] = set()
            try:
                pages = list(client.get_paginator("list_objects_v2").paginate(Bucket=bucket))
            except client.exceptions.NoSuchBucket:
                continue
            for page in pages:
                for obj in page.get("Contents", []):
                    target = (root / obj["Key"]).resolve()
                    if root.resolve() not in target.parents:
                        continue  # a key with `..` would escape the snapshot folder
                    target.parent.mkdir(parents=True, exist_ok=True)
                    client.download_file(bucket, obj["Key"], str(target))
                    kept.add(target)
                    count += 1
            for stale in [p for p in root.rglob("*") if p.is_file() and p.resolve() not in kept]:
                stale.unlink()
        return count

    def restore(self, folder: Path, buckets: tuple[str, ...]) -> int:
        """Upload what `snapshot` saved; returns the object count."""
        client = self.client()
        count = 0
        for bucket in buckets:
            root = folder / bucket
            if not root.is_dir():
                continue
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                client.upload_file(str(path), bucket, path.relative_to(root).as_posix())
                count += 1
        return count
