"""The suite-wide "no request answered 500" check.

Every gunicorn service the tests start (`GunicornService`, used by the fixtures and the dev stack)
has its log scanned, from this run's first line, when it stops. A 500 leaves one of two marks there:
uvicorn's "Exception in ASGI application" (an exception no handler mapped; Starlette re-raises it
after answering 500) or a service's own log line for a ModelyardException answered with HTTP 500.
Each finding names the service, the test that started it and the log lines around the mark; the
session fails at its end if there is any (conftest's `pytest_sessionfinish`). A test that provokes
500s on purpose says so with `@pytest.mark.allow_server_errors`. A server shared by many tests
(`share`) has its log checked after every test instead, so a finding names the test it happened in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.devstack.services import GunicornService

MARKS = re.compile(r"Exception in ASGI application|\(INTERNAL_ERROR, HTTP 500\)")
_CONTEXT_LINES = 12


@dataclass(frozen=True)
class Finding:
    service: str
    test: str
    log_path: Path
    excerpt: str


FINDINGS: list[Finding] = []
#: The running test's id and whether it opted out; set by conftest around each test.
CURRENT: dict[str, Any] = {"test": "(outside any test)", "allowed": False}


def scan(log_path: Path, offset: int) -> list[str]:
    """The excerpts of every 500 mark in the log after `offset`."""
    return _scan_to_end(log_path, offset)[0]


def _scan_to_end(log_path: Path, offset: int) -> tuple[list[str], int]:
    """`scan`, and the offset it read up to (the log may grow while we read)."""
    try:
        with open(log_path, "rb") as log:
            log.seek(offset)
            data = log.read()
    except FileNotFoundError:
        return [], offset
    if not data.endswith(b"\n") and b"\n" in data:
        data = data[: data.rindex(b"\n") + 1]  # a line being written is read whole next time
    lines = data.decode("utf-8", "replace").splitlines()
    excerpts = [
        "\n".join(lines[i : i + _CONTEXT_LINES]) for i, line in enumerate(lines) if MARKS.search(line)
    ]
    return excerpts, offset + len(data)


def install() -> None:
    """Wrap GunicornService's launch (remember who started it) and stop (scan its log)."""
    if getattr(GunicornService, "_no_500_check", False):
        return
    launch, stop = GunicornService.launch, GunicornService.stop

    def launch_watched(self: GunicornService) -> None:
        launch(self)
        self.__dict__["_started_by"] = (CURRENT["test"], CURRENT["allowed"])

    def stop_watched(self: GunicornService, grace: float = 20.0) -> None:
        running = self.pid is not None
        stop(self, grace)
        started_by = self.__dict__.pop("_started_by", None)
        if not running or started_by is None or started_by[1]:
            return
        for excerpt in scan(self.log_path, self._log_offset):
            FINDINGS.append(Finding(self.spec.name, started_by[0], self.log_path, excerpt))

    GunicornService.launch = launch_watched  # type: ignore[method-assign]
    GunicornService.stop = stop_watched  # type: ignore[method-assign]
    GunicornService._no_500_check = True  # type: ignore[attr-defined]


#: Services that many tests share (session servers): their logs are checked after every test, in slices.
SHARED: list[GunicornService] = []


def share(service: GunicornService) -> None:
    """Check `service`'s log after each test (`check_shared`), charging a 500 to the test during which
    it was logged rather than to the test that happened to start the server. Whatever is logged after
    the last test is charged, when the service stops, to the shared server itself."""
    label = f"(shared {service.spec.name} server: its process's last test, or its shutdown)"
    service.__dict__["_started_by"] = (label, False)
    SHARED.append(service)


def check_shared() -> None:
    """Scan what each running shared service logged since the last check; call after every test. A
    late line of one test (a background delivery) may be charged to the next test on that worker."""
    for service in SHARED:
        if service.pid is None:
            continue
        excerpts, service._log_offset = _scan_to_end(service.log_path, service._log_offset)
        if not CURRENT["allowed"]:
            FINDINGS.extend(Finding(service.spec.name, CURRENT["test"], service.log_path, e) for e in excerpts)


def report() -> str:
    parts = [f"{len(FINDINGS)} server error(s) (HTTP 500) were logged by services the tests started:"]
    for finding in FINDINGS:
        parts.append(f"--- {finding.service} started by {finding.test} ({finding.log_path})\n{finding.excerpt}")
    parts.append("Map the error to a 4xx/503, or mark a deliberate one with @pytest.mark.allow_server_errors.")
    return "\n".join(parts)
