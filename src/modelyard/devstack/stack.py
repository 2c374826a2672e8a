"""The whole local stack as native processes: what `make up`, `make down` and `make status` do.

Layout under the stack root (the repo by default):
    .data/postgres/        the PostgreSQL cluster (survives down/up; `clean` removes it)
    .data/s3/<bucket>/     moto's objects, saved by `down` and restored by `up` (moto keeps them in memory)
    .stack/<name>.pid      pid and port of every process we started (each leads its own group)
    .stack/logs/<name>.log their output
    .stack/env             `export` lines pointing clients and boto3 at the stack
    .stack/admin-env       the stack's database and bucket for `modelyard gc`/`users`/... (mode 0600)
    .stack/admin-password  with MODELYARD_AUTH=true: the local admin's password (made once, mode 0600)
Servers are started detached (own session, no parent-death signal) so they outlive `up`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from modelyard.devstack.postgres import PostgresServer
from modelyard.devstack.process import LOOPBACK, StartupError, http_ok, pid_alive, port_in_use
from modelyard.devstack.s3 import S3Server
from modelyard.devstack.services import REPO_ROOT, SERVICES, GunicornService, ServiceSpec

DEFAULTS_FILE = REPO_ROOT / "infra" / "local" / "stack.env"
Say = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines, # comments and other shell (the PATH line) skipped; no expansion."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        if _NAME.match(key):
            values[key] = value.strip().strip("'\"")
    return values


def _took(seconds: float | None) -> str:
    """The timing column of `up`'s progress lines: seconds, or `running` for what was already up."""
    return f"{'running':>7}" if seconds is None else f"{seconds:6.1f}s"


def load_config(
    overrides: Mapping[str, str] | None = None,
    *,
    defaults_file: Path = DEFAULTS_FILE,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """stack.env defaults, overridden by the environment (same names), then by `overrides`."""
    config = read_env_file(defaults_file)
    env = os.environ if environ is None else environ
    for key in list(config):
        if env.get(key):
            config[key] = env[key]
    config.update(overrides or {})
    return config


@dataclass(frozen=True)
class Component:
    """One line of `status`: a process we started and how to probe it."""

    name: str
    pid: int | None
    port: int
    url: str
    healthy: bool

    @property
    def running(self) -> bool:
        return self.pid is not None and pid_alive(self.pid)


def _spec(name: str) -> ServiceSpec:
    return next(spec for spec in SERVICES if spec.name == name)


class Stack:
    def __init__(self, root: Path = REPO_ROOT, config: Mapping[str, str] | None = None) -> None:
        self.root = Path(root).absolute()
        # The checkout's own defaults (the code may come from another checkout's venv).
        defaults = self.root / "infra" / "local" / "stack.env"
        if config is None:
            config = load_config(defaults_file=defaults if defaults.is_file() else DEFAULTS_FILE)
        self.config = dict(config)
        self.state_dir = self.root / ".stack"
        self.log_dir = self.state_dir / "logs"
        self.data_dir = self.root / ".data"

    # --- configuration -------------------------------------------------------------------------
    def port(self, var: str) -> int:
        return int(self.config[var])

    @property
    def database_uri(self) -> str:
        c = self.config
        return (
            f"postgresql://{c['MODELYARD_PG_USER']}:{c['MODELYARD_PG_PASSWORD']}"
            f"@{LOOPBACK}:{c['MODELYARD_PG_PORT']}/{c['MODELYARD_PG_DB']}"
        )

    @property
    def s3_endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.config['MODELYARD_S3_PORT']}"

    def service_url(self, spec: ServiceSpec) -> str:
        return f"http://{LOOPBACK}:{self.config[spec.port_var]}"

    def services(self) -> list[ServiceSpec]:
        """The services whose code has landed; a missing one is reported by `up`, not fatal."""
        return [spec for spec in SERVICES if spec.port_var in self.config and spec.available()]

    def aws_env(self) -> dict[str, str]:
        c = self.config
        return {
            "AWS_ACCESS_KEY_ID": c["MODELYARD_S3_ACCESS_KEY"],
            "AWS_SECRET_ACCESS_KEY": c["MODELYARD_S3_SECRET_KEY"],
            "AWS_DEFAULT_REGION": c["MODELYARD_S3_REGION"],
        }

    @property
    def auth(self) -> bool:
        return self.config.get("MODELYARD_AUTH", "false").strip().lower() in ("1", "true", "yes", "on")

    @property
    def admin_password_file(self) -> Path:
        return self.state_dir / "admin-password"

    def admin_password(self) -> str:
        """The local admin's password: random, made on the first `up` with auth on, then kept."""
        path = self.admin_password_file
        if not path.is_file():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(18) + "\n")
        return path.read_text().strip()

    def client_env(self) -> dict[str, str]:
        """What `.stack/env` exports: where clients, boto3 and the deploy target find the stack (and,
        with auth on, the local admin's credentials, which the mlflow client sends as basic auth)."""
        endpoints = self.service_url(_spec("endpoints"))
        env = {
            "MLFLOW_TRACKING_URI": self.service_url(_spec("gateway")),
            "AWS_ENDPOINT_URL_S3": self.s3_endpoint,
            "AWS_ENDPOINT_URL_SAGEMAKER": endpoints,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoints,
            **self.aws_env(),
            "MODELYARD_DEPLOY_BUCKET": self.config["MODELYARD_DEPLOY_BUCKET"],
        }
        if self.auth:
            env["MLFLOW_TRACKING_USERNAME"] = self.config.get("MODELYARD_ADMIN_USERNAME") or "admin"
            env["MLFLOW_TRACKING_PASSWORD"] = self.admin_password()
        return env

    def store_env(self) -> dict[str, str]:
        """Where the stack keeps its data, as the services read it: also what `.stack/admin-env` exports for
        the commands that open the database and the bucket directly (`modelyard gc`, `storage`, `users`,
        `groups`, `tokens`, `permissions`, `audit`)."""
        return {
            "MODELYARD_BACKEND_STORE_URI": self.database_uri,
            "MODELYARD_ARTIFACTS_DESTINATION": f"s3://{self.config['MODELYARD_ARTIFACTS_BUCKET']}/artifacts",
            "MODELYARD_S3_ENDPOINT_URL": self.s3_endpoint,
            "MODELYARD_S3_ADDRESSING_STYLE": "path",
        }

    def service_env(self, spec: ServiceSpec) -> dict[str, str]:
        """Every service gets the common wiring; its spec adds (or overrides) its own variables."""
        env = {
            **self.client_env(),
            **self.store_env(),
            # The stack migrates once before any worker starts.
            "MODELYARD_AUTO_MIGRATE": "false",
        }
        env.update(dict(spec.env))
        if self.auth:
            env["MODELYARD_AUTH"] = "true"
            env["MODELYARD_ADMIN_USERNAME"] = env["MLFLOW_TRACKING_USERNAME"]
            env["MODELYARD_ADMIN_PASSWORD_FILE"] = str(self.admin_password_file)
        if spec.name == "endpoints":
            # The local SageMaker stand-in listens on loopback and its clients (boto3) sign requests the
            # AWS way, not with modelyard credentials; it reaches tracking with the admin's (above).
            env["MODELYARD_AUTH"] = "false"
        if spec.name == "tracking":
            # Behind the gateway, artifact bytes go to the artifacts service, never through tracking.
            env["MODELYARD_SERVE_ARTIFACTS"] = "false"
            # A local stack's webhook receivers are on this machine (see docs/operations.md, "Webhooks").
            env.setdefault("MODELYARD_WEBHOOK_ALLOW_PRIVATE", os.environ.get("MODELYARD_WEBHOOK_ALLOW_PRIVATE", "true"))
        if spec.name == "gateway":
            env["MODELYARD_GATEWAY_TRACKING_URL"] = self.service_url(_spec("tracking"))
            env["MODELYARD_GATEWAY_ARTIFACTS_URL"] = self.service_url(_spec("artifacts"))
        return env

    # --- pid files ---------------------------------------------------------------------------
    def _pid_file(self, name: str) -> Path:
        return self.state_dir / f"{name}.pid"

    def _record(self, name: str, pid: int, port: int) -> None:
        self._pid_file(name).write_text(f"{pid} {port}\n")

    def _recorded(self, name: str) -> tuple[int, int] | None:
        try:
            pid, port = self._pid_file(name).read_text().split()[:2]
            return int(pid), int(port)
        except (OSError, ValueError):
            return None

    def _running_pid(self, name: str) -> int | None:
        recorded = self._recorded(name)
        if recorded is not None and pid_alive(recorded[0]):
            return recorded[0]
        return None

    def _check_port_free(self, name: str, port: int) -> None:
        if port_in_use(port):
            raise StartupError(
                f"{name}: port {port} on {LOOPBACK} is taken by another process; set the port variable "
                f"in the environment to override infra/local/stack.env"
            )

    # --- components ------------------------------------------------------------------------------
    def _postgres(self) -> PostgresServer:
        return PostgresServer(
            self.data_dir / "postgres",
            self.port("MODELYARD_PG_PORT"),
            durable=True,
            socket_dir=self.state_dir / "pg-socket",
            log_path=self.log_dir / "postgres.log",
        )

    def _s3(self) -> S3Server:
        return S3Server(self.port("MODELYARD_S3_PORT"), self.log_dir / "s3.log")

    def _service(self, spec: ServiceSpec) -> GunicornService:
        return GunicornService(
            spec=spec,
            port=self.port(spec.port_var),
            log_path=self.log_dir / f"{spec.name}.log",
            env=self.service_env(spec),
            workers=int(self.config.get("MODELYARD_WORKERS", "2")),
            cwd=self.root,
        )

    # --- commands ------------------------------------------------------------------------------
    def up(self, echo: bool = True) -> None:
        """Start whatever is not running yet; idempotent. On a failure, stops what this call started.

        Prints one line per component with the seconds it took to become ready (`running` when it was)."""
        say: Say = print if echo else _quiet
        self.log_dir.mkdir(parents=True, exist_ok=True)
        started: list[str] = []
        try:
            self._up_postgres(started, say)
            self._up_s3(started, say)
            self._migrate(say)
            available = self.services()
            for spec in SERVICES:
                if spec not in available:
                    say(f"  {spec.name:<10} skipped: {spec.app} is not importable yet")
            # Services boot side by side (each imports a lot); then each must pass its health check.
            launched = [(self._launch_service(spec, started), time.monotonic()) for spec in available]
            for spec, (service, t0) in zip(available, launched, strict=True):
                if service is not None:
                    service.wait_ready()
                took = None if service is None else time.monotonic() - t0
                say(f"  {spec.name:<10} {_took(took)}  {self.service_url(spec)}")
        except BaseException:
            for name in reversed(started):
                self._stop(name)
            raise
        self.write_env_file()
        say(f"\ntracking URI: {self.client_env()['MLFLOW_TRACKING_URI']}   (the one URL clients use)")
        say(
            f"then:         source {self._shown(self.state_dir / 'env')}   (the URLs above, and .venv/bin on PATH)"
        )

    def _shown(self, path: Path) -> str:
        """`path` relative to the current directory when it is under it (what `make up` users type)."""
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    def _up_postgres(self, started: list[str], say: Say) -> None:
        port = self.port("MODELYARD_PG_PORT")
        took = None
        if self._running_pid("postgres") is None:
            t0 = time.monotonic()
            self._check_port_free("postgres", port)
            server = self._postgres()
            server.start()
            assert server.pid is not None
            self._record("postgres", server.pid, port)
            started.append("postgres")
            self._ensure_role_and_database(server)
            took = time.monotonic() - t0
        say(f"  {'postgres':<10} {_took(took)}  {self.database_uri}")

    def _ensure_role_and_database(self, server: PostgresServer) -> None:
        import psycopg
        from psycopg import sql

        c = self.config
        user, password, db = c["MODELYARD_PG_USER"], c["MODELYARD_PG_PASSWORD"], c["MODELYARD_PG_DB"]
        with psycopg.connect(server._conninfo("postgres"), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone() is None:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(user), sql.Literal(password)
                    )
                )
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone() is None:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(user))
                )

    def _up_s3(self, started: list[str], say: Say) -> None:
        port = self.port("MODELYARD_S3_PORT")
        server = self._s3()
        t0 = time.monotonic()
        if self._running_pid("s3") is None:
            self._check_port_free("s3", port)
            server.start()
            assert server.pid is not None
            self._record("s3", server.pid, port)
            started.append("s3")
        for bucket in self._buckets():
            server.create_bucket(bucket)
        took = None
        if "s3" in started:
            restored = server.restore(self.data_dir / "s3", self._buckets())
            if restored:
                say(f"  {'s3':<10} restored {restored} objects from {self.data_dir / 's3'}")
            took = time.monotonic() - t0
        say(f"  {'s3':<10} {_took(took)}  {self.s3_endpoint}")

    def _buckets(self) -> tuple[str, ...]:
        return (self.config["MODELYARD_ARTIFACTS_BUCKET"], self.config["MODELYARD_DEPLOY_BUCKET"])

    def _migrate(self, say: Say) -> None:
        """What `modelyard db upgrade` does, before any worker starts (they never race to migrate)."""
        try:
            from modelyard.store.sql.migrate import upgrade
        except ImportError:
            return
        t0 = time.monotonic()
        status = upgrade(self.database_uri)
        say(f"  {'migrate':<10} {_took(time.monotonic() - t0)}  schema {status.revision}")

    def _launch_service(self, spec: ServiceSpec, started: list[str]) -> GunicornService | None:
        """Spawn `spec` unless it already runs; None means it was running before this `up`."""
        port = self.port(spec.port_var)
        if self._running_pid(spec.name) is not None:
            return None
        self._check_port_free(spec.name, port)
        service = self._service(spec)
        service.launch()
        assert service.pid is not None
        self._record(spec.name, service.pid, port)
        started.append(spec.name)
        return service

    def write_env_file(self) -> Path:
        """`export` lines for clients, and the venv that runs the stack first on PATH (once); and, apart,
        `.stack/admin-env` for the commands that open the stack's database directly (kept out of `.stack/env`:
        in a shell that sourced it, `modelyard ui` and in-process stores would otherwise open the stack's
        database instead of their own)."""
        path = self.state_dir / "env"
        lines = [f"export {key}={shlex.quote(value)}" for key, value in self.client_env().items()]
        bin_dir = shlex.quote(str(Path(sys.executable).parent))
        lines.append(f'case ":$PATH:" in *:{bin_dir}:*) ;; *) export PATH={bin_dir}:"$PATH" ;; esac')
        path.write_text(
            "# Written by `make up`; `source` it to point clients at the local stack and put\n"
            "# modelyard's venv (the `modelyard` command, its `python`) on PATH.\n" + "\n".join(lines) + "\n"
        )
        admin = self.state_dir / "admin-env"
        fd = os.open(admin, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(
                "# Written by `make up`; `source` it (after .stack/env) before `modelyard gc`, `storage`, `users`,\n"
                "# `groups`, `tokens`, `permissions` or `audit`, which open the stack's database and bucket directly.\n"
                + "".join(f"export {key}={shlex.quote(value)}\n" for key, value in self.store_env().items())
            )
        return path

    def _names(self) -> list[str]:
        return ["postgres", "s3", *(spec.name for spec in SERVICES)]

    def _stop(self, name: str) -> None:
        recorded = self._recorded(name)
        if recorded is None:
            return
        pid, port = recorded
        if name == "postgres":
            component: PostgresServer | S3Server | GunicornService = self._postgres()
        elif name == "s3":
            component = self._s3()
        else:
            component = self._service(_spec(name))
        component.adopt(pid)
        if isinstance(component, S3Server) and component.pid is not None:
            # moto keeps objects in memory only: keep them on disk across down/up.
            component.snapshot(self.data_dir / "s3", self._buckets())
        component.stop()
        self._pid_file(name).unlink(missing_ok=True)

    def down(self, echo: bool = True) -> None:
        """Stop services first, then S3, then PostgreSQL (its data stays in .data/postgres)."""
        for name in reversed(self._names()):
            if self._recorded(name) is not None:
                self._stop(name)
                if echo:
                    print(f"  {name:<10} stopped")
        (self.state_dir / "env").unlink(missing_ok=True)

    def status(self) -> Iterator[Component]:
        for name in self._names():
            recorded = self._recorded(name)
            if recorded is None:
                continue
            pid, port = recorded
            alive = pid_alive(pid)
            if name == "postgres":
                url, healthy = self.database_uri, alive and port_in_use(port)
            elif name == "s3":
                url = self.s3_endpoint
                healthy = alive and http_ok(f"{url}/moto-api/data.json")
            else:
                url = f"http://{LOOPBACK}:{port}"
                healthy = alive and http_ok(f"{url}{_spec(name).health_path}")
            yield Component(name, pid if alive else None, port, url, healthy)

    def clean(self) -> None:
        """`down`, then remove the state, the PostgreSQL data and the S3 snapshot (and `.data` when that
        leaves it empty)."""
        self.down(echo=False)
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self._postgres().remove()
        if (self.data_dir / "s3").exists():
            shutil.rmtree(self.data_dir / "s3")
        with contextlib.suppress(OSError):  # absent, or holding something else: kept
            self.data_dir.rmdir()
