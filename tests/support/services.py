"""Start modelyard services under real gunicorn for a test, the same code path `make up` uses."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from modelyard.devstack.process import free_port
from modelyard.devstack.services import TRACKING, GunicornService, ServiceSpec


def migrate(backend_store_uri: str) -> None:
    """Bring a database to the newest schema before workers start, so they never race to do it."""
    if importlib.util.find_spec("modelyard.store.sql.migrate") is None:
        return
    from modelyard.store.sql.migrate import upgrade

    upgrade(backend_store_uri)


@contextmanager
def start_service(
    spec: ServiceSpec,
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    workers: int = 2,
    timeout: float = 60.0,
) -> Iterator[GunicornService]:
    """Run `spec` on a free loopback port until the block exits; its log goes to `workdir`.

    The caller decides what to do with the log on failure (`GunicornService.log()`); on a start-up
    failure the `StartupError` already carries its tail.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    service = GunicornService(
        spec=spec,
        port=free_port(),
        log_path=workdir / f"{spec.name}.log",
        env=dict(env or {}),
        workers=workers,
        tied_to_parent=True,
        cwd=workdir,
    )
    service.start(timeout=timeout)
    try:
        yield service
    finally:
        service.stop()


@contextmanager
def start_tracking_server(
    workdir: Path,
    backend_store_uri: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    workers: int = 2,
) -> Iterator[GunicornService]:
    """The tracking service on `backend_store_uri` (default: a SQLite file in `workdir`).

    Artifacts default to a folder in `workdir` so nothing lands in the current directory.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    uri = backend_store_uri or f"sqlite:///{workdir / 'modelyard.db'}"
    migrate(uri)
    service_env = {
        "MODELYARD_BACKEND_STORE_URI": uri,
        "MODELYARD_ARTIFACTS_DESTINATION": str(workdir / "artifacts"),
        **(env or {}),
    }
    with start_service(TRACKING, workdir, env=service_env, workers=workers) as service:
        yield service


def print_log(service: GunicornService) -> None:
    """Dump the service log into the captured output of a failing test."""
    sys.stdout.write(f"\n===== {service.spec.name} service log ({service.log_path}) =====\n")
    sys.stdout.write(service.log() + "\n")
