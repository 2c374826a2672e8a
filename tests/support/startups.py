"""Counts the expensive things the suite starts (gunicorn services, `mlflow` processes, chromium,
PostgreSQL, moto), per test module, and prints them at the end of the run.

Most of the suite's CPU is start-ups, not tests: a gunicorn tracking service costs ~2-3 CPU seconds
before it answers its first request, an `mlflow server` ~10. This count is the machine-independent
way to see where a change to the fixtures moved that cost (wall time on a shared machine does not).
Under `-n N`, each worker hands its counts to the controller, which prints the sum.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.support import server_errors

#: (module, what) -> how many times it was started.
COUNTS: Counter[tuple[str, str]] = Counter()


def record(what: str) -> None:
    """Note one start-up of `what`, charged to the module of the test running now (its setup included)."""
    module = str(server_errors.CURRENT["test"]).split("::", 1)[0]
    COUNTS[(module, what)] += 1


def install() -> None:
    """Count every `GunicornService` launch (the fixtures', the dev stack's and the tests' own)."""
    from modelyard.devstack.services import GunicornService

    if getattr(GunicornService, "_startup_counter", False):
        return
    launch = GunicornService.launch

    def launch_counted(self: GunicornService) -> None:
        record(f"gunicorn {self.spec.name} x{self.workers}")
        launch(self)

    GunicornService.launch = launch_counted  # type: ignore[method-assign]
    GunicornService._startup_counter = True  # type: ignore[attr-defined]


def to_wire() -> list[list[Any]]:
    return [[module, what, n] for (module, what), n in COUNTS.items()]


def merge(wire: list[list[Any]]) -> None:
    for module, what, n in wire:
        COUNTS[(module, what)] += n


def report(top: int = 25) -> list[str]:
    """Totals per kind, then the modules that started the most."""
    if not COUNTS:
        return []
    by_kind: Counter[str] = Counter()
    by_module: Counter[str] = Counter()
    detail: dict[str, Counter[str]] = {}
    for (module, what), n in COUNTS.items():
        by_kind[what] += n
        by_module[module] += n
        detail.setdefault(module, Counter())[what] += n
    lines = ["start-ups: " + ", ".join(f"{what} {n}" for what, n in by_kind.most_common())]
    for module, n in by_module.most_common(top):
        parts = ", ".join(f"{what} {k}" for what, k in detail[module].most_common())
        lines.append(f"  {n:4d}  {module}: {parts}")
    return lines
