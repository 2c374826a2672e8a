"""A result row (one line of the table) and the alternating, repeated runner every workload uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.measure import Sample, median, wait_until_quiet
from bench.stack import Side

Check = Callable[[float, float], bool]


@dataclass
class Row:
    workload: str
    unit: str
    mlflow: float | None
    modelyard: float | None
    #: Whether a bigger number is the better one (throughput) or not (latency, memory).
    higher_is_better: bool
    target: str = ""
    check: Check | None = field(default=None, repr=False)
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    #: The check judges modelyard's number alone (MLflow has no counterpart, or the target is absolute).
    alone: bool = False

    @property
    def ratio(self) -> float | None:
        if not self.mlflow or self.modelyard is None:
            return None
        return self.modelyard / self.mlflow

    @property
    def met(self) -> bool | None:
        if self.check is None or self.modelyard is None or (self.mlflow is None and not self.alone):
            return None
        return bool(self.check(self.mlflow or 0.0, self.modelyard))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("check")
        out["ratio"] = self.ratio
        out["met"] = self.met
        return out


def alternate(sides: list[Side], repeats: int, run: Callable[[Side, int], Sample]) -> dict[str, list[Sample]]:
    """Run each side `repeats` times, swapping who goes first every round (ABBA...), so a drift in
    machine load (other tenants, autovacuum, page cache) hits both sides alike. Before each sample every
    side's servers must have gone quiet: a side's sample never runs while the one before it
    is still cleaning up (`wait_until_quiet`)."""
    out: dict[str, list[Sample]] = {side.name: [] for side in sides}
    servers = sorted({pid for side in sides for pid in (*side.pids, *side.artifact_pids, *side.serving_pids)})
    for r in range(repeats):
        order = sides if r % 2 == 0 else list(reversed(sides))
        for side in order:
            wait_until_quiet(servers)
            out[side.name].append(run(side, r))
    return out


def med(samples: list[Sample], fn: Callable[[Sample], float]) -> float:
    return median([fn(s) for s in samples])


def both(samples: dict[str, list[Sample]], fn: Callable[[Sample], float]) -> tuple[float, float]:
    return med(samples["mlflow"], fn), med(samples["modelyard"], fn)


def cpu_detail(samples: dict[str, list[Sample]], per: str = "request") -> dict[str, Any]:
    """Server CPU ms per unit of work (median over repeats), for the JSON detail and the table."""
    return {
        f"server_cpu_ms_per_{per}": {
            name: round(med(s, lambda x: 1000 * x.cpu / max(1, x.count)), 3) for name, s in samples.items()
        },
        "wall_s": {name: [round(x.wall, 4) for x in s] for name, s in samples.items()},
    }


def cpu_row(name: str, samples: dict[str, list[Sample]], per: str = "request", at_most_ms: float | None = None) -> Row:
    """Server CPU ms per unit of work; `at_most_ms` makes it a target on modelyard's number."""
    ml, my = both(samples, lambda x: 1000 * x.cpu / max(1, x.count))
    if at_most_ms is None:
        return Row(f"{name}: server CPU per {per}", "ms", ml, my, higher_is_better=False)
    return Row(f"{name}: server CPU per {per}", "ms", ml, my, False, f"<= {at_most_ms:g} ms",
               lambda _a, b: b <= at_most_ms)  # fmt: skip
