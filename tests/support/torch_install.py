"""torch for the pytorch flavor's tests, installed into the test venv the first time they run.

torch is not in the `dev` extra: the CPU build is ~0.9 GB installed, and every other test (and `make up`)
would pay for it. These machines (developers' and CI's) keep that CPU wheel on local disk, and pip
takes it for this exact pin; plain `torch` or a range would let pip pick a multi-GB CUDA build from the
index, so the pin is the one place the version is written. The user-facing `pytorch` extra stays a range.

A stamp in the venv records the pin of the last good install (as the Makefile's stamps do), so later
sessions skip pip entirely; a lock file makes two test processes (`-n 2`) install once, not twice at once.
"""

from __future__ import annotations

import fcntl
import importlib
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from types import ModuleType

TORCH_REQUIREMENT = "torch==2.13.0"
STAMP = Path(sys.prefix) / ".modelyard-torch"


def _installed() -> bool:
    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return False
    wanted = TORCH_REQUIREMENT.split("==", 1)[1]
    return version.split("+", 1)[0] == wanted and STAMP.is_file() and STAMP.read_text() == TORCH_REQUIREMENT


def ensure_torch() -> tuple[ModuleType, float]:
    """The `torch` module, installed first when the stamp says it is not; and the seconds the install
    took (0 when there was nothing to do)."""
    seconds = 0.0
    if not _installed():
        with open(STAMP.with_name(".modelyard-torch.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # the other process installs meanwhile: wait, then re-check
            if not _installed():
                started = time.monotonic()
                command = [sys.executable, "-m", "pip", "install", "--quiet", TORCH_REQUIREMENT]
                subprocess.run(command, check=True, stdin=subprocess.DEVNULL)
                STAMP.write_text(TORCH_REQUIREMENT)
                seconds = time.monotonic() - started
        importlib.invalidate_caches()  # this process's import system must see the new files
    return importlib.import_module("torch"), seconds
