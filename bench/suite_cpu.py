"""`python -m bench.suite_cpu [--json FILE] -- COMMAND...`: the CPU a command and everything it started used.

Wall time of a test run on a shared machine says more about the neighbours than about the suite; the
CPU seconds (user+system) of the whole process tree do not. This runs COMMAND as a child while being a
child subreaper (Linux `PR_SET_CHILD_SUBREAPER`), so a daemon that double-forks or a process whose
parent died is re-parented to us instead of init; it reaps each such process as it ends (as init would),
and the kernel adds each reaped process's CPU (and that of the children it reaped) to ours. At the end it prints wall seconds,
user+system CPU seconds, the load average, and COMMAND's exit status, which is also its own.

Example: `python -m bench.suite_cpu -- .venv/bin/python -m pytest -q -n 2 --dist loadgroup tests/compat`
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import time

_PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _wait_all(child: int) -> int:
    """Reap every process that ends (the command, and each orphan re-parented to us, at once, as init
    would: a zombie left waiting looks alive to a test checking that a process is gone) until none is
    left; the command's exit status."""
    status = 1
    while True:
        try:
            pid, raw = os.wait()
        except ChildProcessError:
            return status
        if pid == child:
            status = os.waitstatus_to_exitcode(raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the numbers to this file")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    _become_subreaper()
    load_start = os.getloadavg()
    start = time.monotonic()
    proc = subprocess.Popen(command)
    # A test may signal its own process group, which can include us: only the command decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    status = _wait_all(proc.pid)
    wall = time.monotonic() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    numbers = {
        "command": " ".join(command),
        "wall_s": round(wall, 1),
        "user_s": round(usage.ru_utime, 1),
        "sys_s": round(usage.ru_stime, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "load_start": load_start,
        "load_end": os.getloadavg(),
        "exit": status,
    }
    print(
        f"suite_cpu: wall {numbers['wall_s']} s, cpu {numbers['cpu_s']} s "
        f"(user {numbers['user_s']}, sys {numbers['sys_s']}), "
        f"load {load_start[0]:.1f} -> {numbers['load_end'][0]:.1f}, exit {status}",
        file=sys.stderr,
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(numbers, out)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
