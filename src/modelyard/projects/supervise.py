"""The process that runs a project's command and records how it ended: `python -m modelyard.projects.supervise`.

It is started in a session of its own and runs the command with `bash -c` in another new session
(its own process group, so every process the command starts can be signalled at once), waits, and
ends the run FINISHED (exit code 0) or FAILED. SIGTERM or SIGINT (a cancel) is passed to the command's
whole group; the run ends KILLED once the group has stopped (SIGKILL after a grace period). Because the status is written here, a run started with `synchronous=False` still ends
with the right status after the program that started it has exited.

Arguments: run id, tracking URI, working folder, command, grace seconds. The environment is the command's.
The package's `__init__` does not import this module (runpy would warn when it runs it as `__main__`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from types import FrameType


def main(argv: list[str]) -> int:
    run_id, tracking_uri, work_dir, command, grace = argv
    grace_seconds = float(grace)
    shell = shutil.which("bash") or "/bin/sh"
    cancelled = threading.Event()
    started: list[subprocess.Popen[bytes]] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        cancelled.set()
        if started:
            _signal_group(started[0].pid, signal.SIGTERM)

    # The handlers come first: a cancel that arrived between starting the command and installing them
    # killed this process by the default action and left the command running (with the launcher's
    # pipes open: `modelyard run` then seemed to hang on Ctrl-C).
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    child = subprocess.Popen([shell, "-c", command], cwd=work_dir, start_new_session=True)
    started.append(child)
    if cancelled.is_set():  # cancelled while it was starting
        _signal_group(child.pid, signal.SIGTERM)
    while True:
        try:
            code = child.wait(timeout=grace_seconds if cancelled.is_set() else None)
            break
        except subprocess.TimeoutExpired:
            _signal_group(child.pid, signal.SIGKILL)
    status = "KILLED" if cancelled.is_set() else ("FINISHED" if code == 0 else "FAILED")
    _record(run_id, tracking_uri, status)
    return code if code >= 0 else 128 - code


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:  # already gone
        pass


def _record(run_id: str, tracking_uri: str, status: str) -> None:
    from modelyard.client import Client

    try:
        Client(tracking_uri).set_terminated(run_id, status)
    except Exception as exc:  # the launcher records it when we could not
        print(f"modelyard: could not mark run {run_id} {status}: {exc}", file=sys.stderr)
        raise SystemExit(70) from None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
