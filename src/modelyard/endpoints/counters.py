"""Invocation counts per endpoint and variant, kept in the endpoint service's memory.

AWS reports these through CloudWatch (`Invocations`, `Invocation4XXErrors`, `Invocation5XXErrors`); the
local service has no metrics store, so it counts in its one worker's memory and reports the counts on a
modelyard-only read route (`GET /modelyard/endpoints/{name}/invocations`). Like any process-local
counter they start at zero when the service starts (`since`), and an endpoint's counts go with it when
it is deleted. An invocation is a request routed to a variant; an error is one the variant answered
with a 4xx/5xx or could not be reached for. Requests refused before a variant is chosen (an unknown
endpoint or variant, an endpoint not ready) reach no variant and are not counted, as SageMaker's are not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Count:
    invocations: int = 0
    errors: int = 0
    last_invocation: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"invocations": self.invocations, "errors": self.errors, "last_invocation": self.last_invocation}


class InvocationCounters:
    """Counts of one process. Only the event loop's thread touches them (the service has one worker and
    counts in its async route), so no lock is needed."""

    def __init__(self) -> None:
        self.since = int(time.time() * 1000)
        self._counts: dict[str, dict[str, Count]] = {}

    def record(self, endpoint: str, variant: str, error: bool) -> None:
        count = self._counts.setdefault(endpoint, {}).setdefault(variant, Count())
        count.invocations += 1
        count.errors += int(error)
        count.last_invocation = int(time.time() * 1000)

    def forget(self, endpoint: str) -> None:
        """A deleted endpoint's counts (a new endpoint of the same name starts at zero)."""
        self._counts.pop(endpoint, None)

    def report(self, endpoint: str, variants: list[str]) -> dict[str, Any]:
        """The counts of the variants the endpoint serves now, in their order (zero for those not
        invoked yet), as the read route answers them."""
        counted = self._counts.get(endpoint, {})
        return {
            "since": self.since,
            "variants": {name: counted.get(name, Count()).to_dict() for name in variants},
        }
