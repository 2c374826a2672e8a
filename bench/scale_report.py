"""The tables of `python -m bench.scale`: bench/README.md's "Search at scale" results and
bench/scale-plans.md."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
PLANS = HERE / "scale-plans.md"
BEGIN, END = "<!-- bench-scale-results:begin -->", "<!-- bench-scale-results:end -->"


@dataclass
class Cell:
    """One (side, experiment, case): per-request CPU of the service and of PostgreSQL (ms) and wall
    time (ms), rows on the page, whether a request hit the cap."""

    service: list[float] = field(default_factory=list)
    database: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    rows: int = 0
    capped: bool = False
    buffers: int | None = None
    total: str = ""
    total_cpu: float | None = None

    @property
    def cpu(self) -> list[float]:
        return [a + b for a, b in zip(self.service, self.database, strict=True)]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 4:
        return (min(values, default=float("nan")), max(values, default=float("nan")))
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def cpu_text(cell: Cell | None, cap: float | None = None) -> str:
    if cell is None:
        return "n/a"
    if cell.capped:
        return f"> {cap:.0f} s" if cap else "capped"
    if not cell.service:
        return "-"
    return f"{_ms(median(cell.cpu))} ({_ms(median(cell.wall))})"


def ratio_text(cells: dict[str, Cell], small: str, large: str) -> str:
    """CPU at `large` / at `small`: the median of the per-round ratios (each round asked both within
    a second of each other), with their interquartile range."""
    a, b = cells.get(small), cells.get(large)
    if a is None or b is None or not a.service or not b.service or a.capped or b.capped:
        return "-"
    ratios = [y / x for x, y in zip(a.cpu, b.cpu, strict=False) if x > 0]
    low, high = quartiles(ratios)
    return f"{median(ratios):.2f}x ({low:.2f}-{high:.2f})"


def table(
    title: str,
    names: Sequence[str],
    labels: Sequence[str],
    cell: Callable[[str, str], str],
    extra: Sequence[tuple[str, Callable[[str], str]]] = (),
) -> list[str]:
    head = "| case | " + " | ".join([*labels, *(h for h, _ in extra)]) + " |"
    out = [title, "", head, "|---|" + "---:|" * (len(labels) + len(extra))]
    for name in names:
        values = [cell(name, label) for label in labels] + [f(name) for _, f in extra]
        out.append(f"| {name} | " + " | ".join(values) + " |")
    return [*out, ""]


def write_plans(
    plans: dict[tuple[str, str], list[str]], header: str, cases: Sequence[tuple[str, str]]
) -> None:
    """`cases`: (name, what it asks) in order."""
    out = ["# Plans of `python -m bench.scale`", "", header, "",
           "Each statement a first page ran (auto_explain: EXPLAIN ANALYZE, BUFFERS), per case and experiment.", ""]  # fmt: skip
    for name, what in cases:
        out += [f"## {name}: {what}", ""]
        for (label, case), texts in plans.items():
            if case != name:
                continue
            out += [f"### {label}", ""]
            for text in texts:
                out += ["```", text, "```", ""]
    PLANS.write_text("\n".join(out))


def update_readme(section: str) -> None:
    text = README.read_text()
    start, end = text.find(BEGIN), text.find(END)
    block = f"{BEGIN}\n{section}\n{END}"
    text = (
        text[:start] + block + text[end + len(END) :]
        if start >= 0 and end >= 0
        else text + "\n" + block + "\n"
    )
    README.write_text(text)
