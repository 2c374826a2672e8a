"""Serving workers for one production variant: fetch model.tar.gz from S3, unpack, start gunicorn.

Each variant runs `modelyard.serving` under gunicorn in its own process group on a free loopback port,
with one worker per requested instance, as a SageMaker instance runs the serving container.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx

from modelyard.endpoints.errors import validation

START_TIMEOUT_SECONDS = float(os.environ.get("MODELYARD_ENDPOINT_START_TIMEOUT", "120"))


class VariantStartError(Exception):
    """The model could not be fetched, unpacked or loaded; the message becomes FailureReason."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch_model(model_data_url: str, dest: Path) -> Path:
    """Download and unpack a model.tar.gz into `dest` (a fresh folder); returns the model directory."""
    import boto3

    parsed = urlparse(model_data_url)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise validation(f"ModelDataUrl must be s3://bucket/key, got {model_data_url!r}.")
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "model.tar.gz"
    try:
        boto3.client("s3", endpoint_url=os.environ.get("MODELYARD_S3_ENDPOINT_URL") or None).download_file(
            parsed.netloc, parsed.path.lstrip("/"), str(archive)
        )
    except Exception as exc:
        raise VariantStartError(f"Could not download {model_data_url}: {exc}") from exc
    model_dir = dest / "model"
    model_dir.mkdir(exist_ok=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            # The "data" filter refuses absolute paths, links out of the tree and device files.
            tar.extractall(model_dir, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise VariantStartError(f"Could not unpack {model_data_url}: {exc}") from exc
    finally:
        archive.unlink(missing_ok=True)
    if not (model_dir / "MLmodel").is_file():
        raise VariantStartError(f"{model_data_url} holds no MLmodel file at its top level.")
    return model_dir


@dataclass
class VariantProcess:
    variant_name: str
    model_name: str
    weight: float
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful: gunicorn finishes in-flight requests on SIGTERM before it exits."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=5)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


def start_variant(
    variant_name: str, model_name: str, weight: float, model_dir: Path, workers: int, log_dir: Path
) -> VariantProcess:
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{model_name}-{variant_name}-{port}.log"
    env = {
        **os.environ,
        "MODELYARD_MODEL_URI": str(model_dir),
        "MODELYARD_HOST": "127.0.0.1",
        "MODELYARD_PORT": str(port),
        "MODELYARD_WORKERS": str(max(1, workers)),
        # A variant listens on loopback only and is reached through this service, which checks callers.
        "MODELYARD_AUTH": "false",
    }
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:modelyard.serving.gunicorn_conf",
                "modelyard.serving.asgi:app",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return VariantProcess(variant_name, model_name, weight, port, process, log_path)


def wait_healthy(variant: VariantProcess, timeout: float = START_TIMEOUT_SECONDS) -> None:
    """Blocks until /ping answers 200, or raises VariantStartError with the worker's last log lines."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if variant.process.poll() is not None:
                raise VariantStartError(
                    f"Variant {variant.variant_name} (model {variant.model_name}) failed to start: "
                    f"{_reason(variant.log_tail())}"
                )
            try:
                if client.get(f"{variant.url}/ping").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    variant.stop(timeout=5)
    raise VariantStartError(
        f"Variant {variant.variant_name} (model {variant.model_name}) did not pass /ping within {timeout:.0f}s: "
        f"{_reason(variant.log_tail())}"
    )


def _reason(log_tail: str) -> str:
    """The most telling line of a failed worker's log: the last exception line, else the tail."""
    lines = [line for line in log_tail.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "Exception" in line:
            return line.strip()[:900]
    return (lines[-1] if lines else "worker exited")[:900]
