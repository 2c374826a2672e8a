"""The results table (terminal and Markdown), bench/results/latest.json and bench/README.md's table."""

from __future__ import annotations

import json
import os
import platform
import re
import time
from pathlib import Path
from typing import Any

from bench.rows import Row

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "latest.json"
README = BENCH_DIR / "README.md"
BEGIN, END = "<!-- bench-results:begin -->", "<!-- bench-results:end -->"
#: The UI workload's own table (bench/workloads/ui.py), rewritten whenever that workload ran.
UI_BEGIN, UI_END = "<!-- bench-ui-results:begin -->", "<!-- bench-ui-results:end -->"


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {
        "nproc": os.cpu_count(),
        "memory_gb": round(mem / 2**30, 1),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "load_avg_at_start": os.getloadavg(),
    }


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("s",):
        return f"{value:.3f} s"
    if unit == "%":
        return f"{value:.0f}%"
    if abs(value) >= 1000:
        return f"{value:,.0f} {unit}"
    if abs(value) >= 10:
        return f"{value:.1f} {unit}"
    return f"{value:.2f} {unit}"


def _cells(row: Row) -> list[str]:
    ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
    met = {True: "yes", False: "NO", None: ""}[row.met]
    target = row.target + (f" ({row.note})" if row.note else "")
    return [row.workload, _fmt(row.mlflow, row.unit), _fmt(row.modelyard, row.unit), ratio, target, met]


HEADER = ["workload", "MLflow 3.17.2", "modelyard", "modelyard/MLflow", "target", "met?"]


def text_table(rows: list[Row]) -> str:
    cells = [HEADER, *(_cells(r) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(HEADER))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def write(rows: list[Row], config: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    doc = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "config": config,
        "rows": [r.to_dict() for r in rows],
        "errors": errors,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return doc


def update_readme(rows: list[Row], doc: dict[str, Any], begin: str = BEGIN, end: str = END) -> None:
    """Replace the table between the markers in bench/README.md (the rest of the file is prose)."""
    m = doc["machine"]
    errors = "".join(f"\n- **{name} failed**: `{msg[:300]}`" for name, msg in doc["errors"].items())
    block = (
        f"{begin}\nLast run: {doc['date']}, `{doc['config']['mode']}` mode (scale {doc['config']['scale']}, "
        f"{doc['config']['repeats']} repeats, medians), on {m['nproc']} CPUs ({m['cpu']}), {m['memory_gb']} GB RAM, "
        f"load average at start {', '.join(f'{x:.1f}' for x in m['load_avg_at_start'])}.\n\n"
        f"{markdown_table(rows)}\n{errors}\n{end}"
    )
    text = README.read_text() if README.exists() else f"# Benchmarks\n\n{begin}\n{end}\n"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text += "\n" + block + "\n"
    README.write_text(text)
