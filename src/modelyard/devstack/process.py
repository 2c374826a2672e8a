"""Process plumbing shared by every piece of the dev stack: free ports, readiness polls, group kills.

Each server runs as the leader of its own session (`start_new_session=True`) so stopping it is one
`killpg`, which also catches the workers gunicorn forks and anything a wrapper spawned.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


class StartupError(RuntimeError):
    """A server did not become ready; the message carries the tail of its log."""


def free_port(host: str = LOOPBACK) -> int:
    """A port the kernel just handed out; racy in theory, fine for a loopback test box."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a zombie has exited, it only awaits reaping)."""
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state != "Z"


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return any(pid_alive(pid) for pid in group_members(pgid))


def group_members(pgid: int) -> list[int]:
    """Pids whose process group is `pgid` (read from /proc; empty where /proc is missing)."""
    members: list[int] = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _reap(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None:
        try:
            proc.wait(timeout=0)
        except subprocess.TimeoutExpired:
            pass


def stop_group(
    pgid: int,
    *,
    sig: int = signal.SIGTERM,
    grace: float = 15.0,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    """Send `sig` to the whole group, wait up to `grace` seconds, then SIGKILL what is left.

    `proc` (when we spawned the leader ourselves) is reaped as we go so it does not linger as a zombie.
    """
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        _reap(proc)
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(proc)
        if not group_alive(pgid):
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    alive: Callable[[], bool] = lambda: True,
    log_path: Path | None = None,
) -> None:
    """Poll `ready` until true; fail at once if the process died, or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if ready():
            return
        if not alive():
            raise StartupError(f"{what} exited during start-up{log_tail(log_path)}")
        if time.monotonic() > deadline:
            raise StartupError(f"{what} not ready after {timeout:.0f}s{log_tail(log_path)}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def spawn(
    args: list[str], log_path: Path, *, death_signal: int, tied_to_parent: bool, **popen: Any
) -> subprocess.Popen[bytes]:
    """Start a server as its own session leader, stdout and stderr appended to `log_path`. With
    `tied_to_parent`, the kernel sends it `death_signal` when the process that started it dies."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=death_signal_hook(death_signal) if tied_to_parent else None,
            **popen,
        )


def wait_started(
    proc: subprocess.Popen[bytes] | None,
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    log_path: Path | None,
    stop: Callable[[], None],
) -> None:
    """`wait_until` the spawned server is ready; if it is not, `stop` it (its whole group) and raise."""
    try:
        wait_until(
            ready, timeout=timeout, what=what, alive=lambda: proc is not None and proc.poll() is None, log_path=log_path
        )
    except StartupError:
        stop()
        raise


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """GET `url` and report whether it answered 2xx (any transport error is simply "not yet")."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URLs only
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def log_tail(log_path: Path | None, lines: int = 60) -> str:
    if log_path is None or not log_path.exists():
        return ""
    text = log_path.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last {len(text)} lines of {log_path} ---\n" + "\n".join(text)


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def death_signal_hook(sig: int) -> Callable[[], None] | None:
    """A `preexec_fn` making the kernel send `sig` to the child when its spawner dies (Linux only).

    This is the last line of defence for test servers: if pytest is SIGKILLed, no atexit runs, but
    the kernel still stops what it started. libc is loaded here, before fork, because the child
    must not import or allocate much between fork and exec.
    """
    try:
        import ctypes

        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, sig)

    return hook
