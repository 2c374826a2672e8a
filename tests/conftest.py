"""Shared fixtures: real PostgreSQL, real S3 (moto's server) and real gunicorn services.

Servers start once per session, lazily (a run that needs no PostgreSQL never starts one), and stop at
session end; atexit and a SIGTERM handler cover interrupted runs, and the kernel's parent-death
signal covers a SIGKILLed pytest. The process code lives in `modelyard.devstack`, shared with
`make up`; these fixtures are thin wrappers around it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.support import server_errors, startups, xdist_groups
from tests.support.mlflow_processes import mlflow_tracking_server
from tests.support.outcome import test_failed
from tests.support.services import print_log, start_service, start_tracking_server
from tests.support.torch_install import ensure_torch

from modelyard.devstack.postgres import PostgresServer
from modelyard.devstack.process import free_port
from modelyard.devstack.s3 import DUMMY_AWS_ENV, S3Server
from modelyard.devstack.services import ENDPOINTS, GunicornService

# A 5xx from a service under test should fail the test at once, not after minutes of retries.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")

#: Seconds each session server took to become ready, printed in the terminal summary.
STARTUP_TIMES: dict[str, float] = {}


def _sigterm_to_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def pytest_configure(config: pytest.Config) -> None:
    # SIGTERM would otherwise end the interpreter without running atexit, leaving servers behind.
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _sigterm_to_exit)
    server_errors.install()
    startups.install()
    xdist_groups.configure(config)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_WorkerFindings(), "modelyard-worker-findings")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under `-n N --dist loadgroup` (make test), a test that uses a module- or class-scoped fixture (a
    browser, a server of the module's own) runs on the same process as the rest of its module, so that
    fixture starts once; every other test is scheduled on its own, wherever a process is free (the
    servers most tests need are per process anyway: `shared_server`, `postgres_server`, ...), so a
    long module no longer keeps one process busy while the other idles. A test marked
    `xdist_group("name")` joins that group instead (tests that share something fixed, like a port)."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is None and _uses_module_state(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
    xdist_groups.publish(config, items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    # xdist's own loadgroup never sees the groups under pytest 9: see tests/support/xdist_groups.py.
    return xdist_groups.make_scheduler(config, log)


_MODULE_SCOPES = frozenset({"module", "class", "package"})


def _uses_module_state(item: pytest.Item) -> bool:
    """Whether any fixture the test uses (directly or through others) lives longer than the test but
    not for the whole session, or is a session fixture of the test's own module (made for it alone:
    on two processes it would be made twice)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return True
    module = item.nodeid.split("::", 1)[0]
    for defs in info.name2fixturedefs.values():
        if defs and (defs[-1].scope in _MODULE_SCOPES or (defs[-1].scope == "session" and defs[-1].baseid == module)):
            return True
    return False


class _WorkerFindings:
    """On the controller of a `-n` run: collect the server errors each worker found (see below)."""

    @staticmethod
    def pytest_testnodedown(node: Any, error: Any) -> None:
        found = getattr(node, "workeroutput", {}).get("server_errors", ())  # none when a worker crashed
        server_errors.FINDINGS.extend(server_errors.Finding(**finding) for finding in found)
        startups.merge(getattr(node, "workeroutput", {}).get("startups", ()))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session if any service a test started answered a request with 500 (see
    tests/support/server_errors.py): a 500 is a bug even when the test around it passed. A `-n` worker
    hands its findings to the controller, which reports them and fails the run."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["server_errors"] = [
            {"service": f.service, "test": f.test, "log_path": str(f.log_path), "excerpt": f.excerpt}
            for f in server_errors.FINDINGS
        ]
        workeroutput["startups"] = startups.to_wire()
    if server_errors.FINDINGS:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", "server errors", red=True)
            reporter.write_line(server_errors.report())
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before any fixture of the test (session ones included) starts a service.
    server_errors.CURRENT.update(
        test=item.nodeid, allowed=item.get_closest_marker("allow_server_errors") is not None
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Any:
    # After the test's own fixtures are torn down: what the shared servers logged during it.
    try:
        return (yield)
    finally:
        server_errors.check_shared()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in startups.report():
        terminalreporter.write_line(line)
    if STARTUP_TIMES:
        parts = ", ".join(f"{name} {secs:.2f}s" for name, secs in STARTUP_TIMES.items())
        terminalreporter.write_line(f"modelyard fixture start-up: {parts}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Keep each phase's report on the item so teardown can tell whether the test failed.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


#: Variables clients read and write at run time (mlflow.set_experiment exports MLFLOW_EXPERIMENT_ID
#: for subprocesses); a test that sets one must not hand it to the next test.
_CLIENT_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_RUN_ID",
    "MODELYARD_TRACKING_URI",
    # Credentials: a token one test's server issued is a 401 at the next test's server.
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MODELYARD_TRACKING_TOKEN",
    "MODELYARD_TRACKING_USERNAME",
    "MODELYARD_TRACKING_PASSWORD",
)


@pytest.fixture(autouse=True)
def _restore_client_env() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in _CLIENT_ENV}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


# --- PostgreSQL ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL 15 cluster for the session, in a temp dir, on a free loopback port.

    As root, the cluster's owner (`postgres`) cannot enter the 0700 temp dir: the server relocates the
    data to a folder it can reach, and `remove()` deletes it there too."""
    base = Path(tempfile.mkdtemp(prefix="modelyard-pg-"))
    server = PostgresServer(base / "data", free_port(), durable=False, tied_to_parent=True)

    def cleanup() -> None:
        server.stop()
        server.remove()
        shutil.rmtree(base, ignore_errors=True)

    atexit.register(cleanup)
    started = time.monotonic()
    startups.record("postgres")
    server.start()
    STARTUP_TIMES["postgres"] = time.monotonic() - started
    try:
        yield server
    finally:
        cleanup()
        atexit.unregister(cleanup)


@pytest.fixture
def postgres_uri(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for this test: `postgresql://postgres@127.0.0.1:PORT/<unique>`."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    uri = postgres_server.create_database(name)
    yield uri
    postgres_server.drop_database(name)


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'modelyard.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_uri(request: pytest.FixtureRequest) -> str:
    """The same test on both backends; the test id says which (`[sqlite]` / `[postgres]`)."""
    return str(request.getfixturevalue(f"{request.param}_uri"))


# --- S3 --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server for the session; dummy AWS credentials are exported for boto3."""
    base = Path(tempfile.mkdtemp(prefix="modelyard-s3-"))
    server = S3Server(free_port(), base / "moto.log", tied_to_parent=True)
    patcher = pytest.MonkeyPatch()
    for key, value in DUMMY_AWS_ENV.items():
        patcher.setenv(key, value)
    # Never read a developer's real AWS profile or credentials during tests.
    patcher.setenv("AWS_CONFIG_FILE", os.devnull)
    patcher.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    patcher.delenv("AWS_PROFILE", raising=False)

    def cleanup() -> None:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)

    atexit.register(cleanup)
    started = time.monotonic()
    startups.record("s3 (moto)")
    server.start()
    STARTUP_TIMES["s3"] = time.monotonic() - started
    try:
        yield server
    finally:
        cleanup()
        atexit.unregister(cleanup)
        patcher.undo()


@pytest.fixture(scope="session")
def s3_endpoint(s3_server: S3Server) -> str:
    return s3_server.endpoint


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket on the moto server."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    s3_server.create_bucket(name)
    return name


# --- torch -------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def torch() -> Any:
    """The `torch` module for the pytorch flavor's tests, installed into this venv on first use
    (`tests/support/torch_install.py`: the pinned CPU wheel from local disk, ~1 min once; a stamp in
    the venv skips it after). The tests that need torch never skip: they install it."""
    module, seconds = ensure_torch()
    if seconds:
        STARTUP_TIMES["torch install"] = seconds
    return module


# --- services --------------------------------------------------------------------------------------
TrackingServerFactory = Callable[..., str]


@pytest.fixture
def tracking_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TrackingServerFactory]:
    """Factory: `tracking_server(backend_store_uri=None, env=None, workers=2) -> base URL`.

    Each call runs the tracking service under real gunicorn (migrating the database first); all are
    stopped at teardown, and a failing test gets their logs in its captured output. Each call costs a
    start-up (~2 CPU seconds a worker): a test that just needs a server uses `shared_server` (or
    `shared_sqlite_server` / `shared_postgres_server`) instead, and one not about workers passes
    `workers=1`.
    """
    from contextlib import ExitStack

    stack = ExitStack()
    started: list[GunicornService] = []

    def start(
        backend_store_uri: str | None = None,
        *,
        env: dict[str, str] | None = None,
        workers: int = 2,
    ) -> str:
        workdir = tmp_path / f"tracking-{len(started)}"
        t0 = time.monotonic()
        service = stack.enter_context(
            start_tracking_server(workdir, backend_store_uri, env=env, workers=workers)
        )
        STARTUP_TIMES.setdefault("tracking", time.monotonic() - t0)
        started.append(service)
        return service.url

    try:
        yield start
    finally:
        if test_failed(request):
            for service in started:
                print_log(service)
        stack.close()


# --- shared tracking services ---------------------------------------------------------------------
@dataclass(frozen=True)
class SharedServer:
    """A tracking service (2 gunicorn workers, artifacts in a local folder it serves) that every test on
    this pytest process needing just "a server" of its backend shares. Tests isolate themselves by unique
    experiment and model names (`unique_name`), never by an empty database: others' rows are there."""

    kind: str
    service: GunicornService
    backend_store_uri: str
    artifacts: Path

    @property
    def url(self) -> str:
        return self.service.url

    @property
    def log_path(self) -> Path:
        return self.service.log_path


@contextmanager
def _shared_tracking(kind: str, workdir: Path, backend_store_uri: str | None = None) -> Iterator[SharedServer]:
    t0 = time.monotonic()
    with start_tracking_server(workdir, backend_store_uri, workers=2) as service:
        STARTUP_TIMES.setdefault(f"shared {kind} tracking", time.monotonic() - t0)
        server_errors.share(service)
        yield SharedServer(kind, service, str(service.env["MODELYARD_BACKEND_STORE_URI"]), workdir / "artifacts")


@pytest.fixture(scope="session")
def shared_sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedServer]:
    """The session's tracking service on SQLite (see `SharedServer`); started on first use."""
    with _shared_tracking("sqlite", tmp_path_factory.mktemp("shared-sqlite")) as server:
        yield server


@pytest.fixture(scope="session")
def shared_postgres_server(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedServer]:
    """The session's tracking service on a PostgreSQL database of its own (see `SharedServer`)."""
    name = f"shared_{uuid.uuid4().hex[:12]}"
    uri = postgres_server.create_database(name)
    try:
        with _shared_tracking("postgres", tmp_path_factory.mktemp("shared-postgres"), uri) as server:
            yield server
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_server(request: pytest.FixtureRequest) -> SharedServer:
    """The same test on both backends (`[sqlite]` / `[postgres]`, as `db_uri`), against the shared
    tracking service of that backend. For a test that only needs a server: one that needs an empty
    database, special settings, its own workers or to stop the server uses `tracking_server`."""
    server: SharedServer = request.getfixturevalue(f"shared_{request.param}_server")
    return server


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A name no other test uses (for experiments, registered models, ... on a shared server)."""
    return f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real `mlflow server` (SQLite, local artifacts, proxied, 1 worker) for the session: the
    reference that compat and client tests compare modelyard's answers with. Shared: tests name their
    experiments and models uniquely."""
    workdir = tmp_path_factory.mktemp("mlflow-reference")
    with mlflow_tracking_server(workdir, f"sqlite:///{workdir / 'mlflow.db'}", workers=1) as url:
        yield url


@pytest.fixture
def endpoints(tmp_path: Path, s3_endpoint: str) -> Iterator[GunicornService]:
    """modelyard's SageMaker-style endpoint service (one worker), models fetched from the S3 server."""
    env = {
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "MODELYARD_ENDPOINTS_STATE_DIR": str(tmp_path / "endpoints-state"),
        "MODELYARD_ENDPOINT_START_TIMEOUT": "90",
    }
    with start_service(ENDPOINTS, tmp_path / "endpoints", env=env, workers=1) as service:
        try:
            yield service
        except BaseException:
            print_log(service)
            raise
