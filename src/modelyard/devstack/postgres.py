"""A real PostgreSQL server run from the distribution's binaries, for the test fixtures and `make up`.

initdb refuses to run as root, so when we are root the cluster is owned by, and the server runs as, the
`postgres` OS user (Popen's `user=`/`group=` switch identity in the child, so the pid we record *is*
the postmaster, with no `runuser` in between). Authentication is `trust` on 127.0.0.1 only.

That user may not be able to reach the requested data folder: a checkout under root's home or under
`mktemp -d` sits below folders only root can enter. Then the cluster lives in a folder of its own under
the `postgres` user's home, named after the requested path (so the same checkout finds it again), and
the requested path becomes a symlink to it; `remove()` deletes both. Nobody's folders are chmod-ed.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from modelyard.devstack.process import (
    LOOPBACK,
    StartupError,
    log_tail,
    pid_alive,
    spawn,
    stop_group,
    wait_started,
)

DEFAULT_BIN_DIR = Path(os.environ.get("MODELYARD_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "postgres"
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# The kernel limit on a unix socket path is 108 bytes; ".s.PGSQL.NNNNN" needs 15 of them.
_MAX_SOCKET_DIR = 90
#: Where relocated clusters live when the `postgres` user's home is unusable.
_FALLBACK_HOME = Path("/var/tmp")


def _os_user() -> pwd.struct_passwd | None:
    """The account to run PostgreSQL as: `postgres` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError as exc:
        raise StartupError("running as root needs an OS user named 'postgres' to own the cluster") from exc


def _can_enter(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether `user` can reach `path` (search permission on it and every folder above it).

    Asked of the kernel, as that user, so ACLs and group memberships count exactly as they will."""
    result = subprocess.run(
        ["/bin/sh", "-c", 'cd -- "$1"', "sh", str(path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
    )
    return result.returncode == 0


def relocated_data_dir(data_dir: Path, user: pwd.struct_passwd) -> Path:
    """The folder a cluster asked for at `data_dir` lives in when `user` cannot reach `data_dir`.

    Under the user's home (kept across reboots, unlike /tmp), named after `data_dir` so a checkout finds
    its cluster again and two checkouts never share one."""
    home = Path(user.pw_dir)
    if not home.is_dir() or home.stat().st_uid != user.pw_uid:
        home = _FALLBACK_HOME
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    # Short: the socket goes in there too, and a socket path has at most 107 bytes.
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", data_dir.parent.parent.name or "root")[:20]
    return home / "modelyard-clusters" / f"{label}-{digest}" / "data"


@dataclass
class PostgresServer:
    """One cluster in `data_dir`, served on 127.0.0.1:`port`.

    `durable=False` (tests) trades crash safety for speed: fsync, synchronous_commit and
    full_page_writes off. `tied_to_parent=True` (tests) makes the kernel stop the server if the
    spawning process is killed without running its clean-up. `shared_buffers` is PostgreSQL's page
    cache: its default, 128 MB, is sized for the smallest machine, and a tracking database outgrows it
    quickly (10,000 runs with their params and metrics are ~85 MB); a team's server gets a quarter of its
    RAM (RDS's default), and the local stack gets enough for its hot tables. Pages are only allocated
    when used.
    """

    data_dir: Path
    port: int
    durable: bool = True
    tied_to_parent: bool = False
    bin_dir: Path = DEFAULT_BIN_DIR
    max_connections: int = 200
    shared_buffers: str = "512MB"
    socket_dir: Path | None = None
    log_path: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    pid: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).absolute()
        if self.log_path is None:
            self.log_path = self.data_dir.parent / "postgres.log"
        if self.socket_dir is None:
            self.socket_dir = self.data_dir.parent / "pg-socket"
        if len(str(self.socket_dir)) > _MAX_SOCKET_DIR:
            # Deep checkouts: fall back to a short, per-port path so restarts find the same place.
            self.socket_dir = Path(tempfile.gettempdir()) / f"modelyard-pgsock-{self.port}"

    # --- addresses ---------------------------------------------------------------------------
    def uri(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/{dbname}"

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    # --- life cycle --------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        """initdb on first use, then start the postmaster and wait until it accepts connections."""
        user = _os_user()
        data_dir = self._prepare_dirs(user)
        if not (data_dir / "PG_VERSION").exists():
            self._initdb(user, data_dir)
        args = [
            str(self.bin_dir / "postgres"),
            "-D", str(data_dir),
            "-p", str(self.port),
            "-c", f"listen_addresses={LOOPBACK}",
            "-c", f"unix_socket_directories={self.socket_dir}",
            "-c", f"max_connections={self.max_connections}",
            "-c", f"shared_buffers={self.shared_buffers}",
        ]  # fmt: skip
        if not self.durable:
            for setting in ("fsync=off", "synchronous_commit=off", "full_page_writes=off"):
                args += ["-c", setting]
        assert self.log_path is not None
        self._proc = spawn(
            args,
            self.log_path,
            death_signal=signal.SIGQUIT,
            tied_to_parent=self.tied_to_parent,
            cwd=data_dir,
            **self._identity(user),
        )
        self.pid = self._proc.pid
        wait_started(
            self._proc,
            self._accepts_connections,
            timeout=timeout,
            what=f"PostgreSQL on port {self.port}",
            log_path=self.log_path,
            stop=self.stop,
        )

    def stop(self, grace: float = 30.0) -> None:
        """Fast shutdown (SIGINT: roll back sessions, checkpoint, exit); SIGKILL after `grace`."""
        pid = self.pid
        if pid is None:
            return
        stop_group(pid, sig=signal.SIGINT, grace=grace, proc=self._proc)
        self.pid = None
        self._proc = None

    def adopt(self, pid: int) -> None:
        """Take over a server started by an earlier process (the `make up` pid file)."""
        self.pid = pid if pid_alive(pid) else None

    def remove(self) -> None:
        """Delete the cluster's data (stop it first), wherever it lives: a relocated cluster and its link."""
        if self.data_dir.is_symlink():
            target = self.data_dir.resolve()
            self.data_dir.unlink()
            # Its own folder (data and socket), never anything above it.
            shutil.rmtree(target.parent if target.name == "data" else target, ignore_errors=True)
        elif self.data_dir.exists():
            shutil.rmtree(self.data_dir)

    # --- databases ---------------------------------------------------------------------------
    def create_database(self, name: str) -> str:
        """Create an empty database and return its URI."""
        self._check_name(name)
        self._execute(f'CREATE DATABASE "{name}"')
        return self.uri(name)

    def drop_database(self, name: str) -> None:
        """Drop it even if a leaked connection pool still holds sessions open (PG 13+ FORCE)."""
        self._check_name(name)
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def database_exists(self, name: str) -> bool:
        import psycopg

        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return row is not None

    # --- internals ---------------------------------------------------------------------------
    def _conninfo(self, dbname: str) -> str:
        return f"host={LOOPBACK} port={self.port} user={SUPERUSER} dbname={dbname} connect_timeout=2"

    def _execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
            conn.execute(sql.encode())

    @staticmethod
    def _check_name(name: str) -> None:
        if not _DB_NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")

    def _accepts_connections(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    @staticmethod
    def _identity(user: pwd.struct_passwd | None) -> dict[str, object]:
        if user is None:
            return {}
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def _prepare_dirs(self, user: pwd.struct_passwd | None) -> Path:
        """Create the data, socket and log locations; returns the folder the server is given as `-D`.

        As root, a data folder the `postgres` user cannot reach is replaced by a link to one it can
        (`relocated_data_dir`), and the socket goes next to it."""
        assert self.socket_dir is not None and self.log_path is not None
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.touch(exist_ok=True)  # written by us (root), through the descriptor we pass
        data_dir = self.data_dir
        if user is not None and (self.data_dir.is_symlink() or not _can_enter(self.data_dir.parent, user)):
            data_dir = relocated_data_dir(self.data_dir, user)
            data_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chown(data_dir.parent, user.pw_uid, user.pw_gid)
            if not self.data_dir.is_symlink():
                self._clear_unreachable()
                self.data_dir.symlink_to(data_dir, target_is_directory=True)
            self.socket_dir = data_dir.parent / "socket"
        data_dir.mkdir(mode=0o700, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if user is not None:
            for path in (data_dir, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
            if not _can_enter(self.socket_dir, user):
                raise StartupError(f"the postgres user cannot reach the socket folder {self.socket_dir}")
        return data_dir

    def _clear_unreachable(self) -> None:
        """Make way for the link: an empty or half-made folder (a failed initdb) goes, a cluster stays."""
        if not self.data_dir.exists():
            return
        if self.initialized:
            raise StartupError(
                f"the postgres user cannot reach the cluster in {self.data_dir}: move it to a folder it can "
                f"reach and link it there, or remove it to start a new one"
            )
        shutil.rmtree(self.data_dir)

    def _initdb(self, user: pwd.struct_passwd | None, data_dir: Path) -> None:
        args = [
            str(self.bin_dir / "initdb"),
            "-D", str(data_dir),
            "-U", SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ]  # fmt: skip
        if not self.durable:
            args.append("--no-sync")
        if shutil.which(args[0]) is None:
            raise StartupError(f"initdb not found at {args[0]} (set MODELYARD_PG_BIN)")
        result = subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=data_dir,
            **self._identity(user),  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise StartupError(f"initdb failed ({result.returncode}):\n{output}{log_tail(self.log_path)}")
