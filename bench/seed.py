"""Seed the same runs into both databases directly with COPY, so a 10,000-run search corpus takes
seconds instead of the ~20,000 REST calls (minutes on MLflow) it would take through the API.

Both schemas descend from the same MLflow layout (runs, params, tags, metrics, latest_metrics); the
column lists are read from information_schema so MLflow-only NOT NULL columns (source_type, ...) get
a neutral value. Experiments are created through the REST API first, so each side owns its ids and
artifact locations; the benchmark then checks that both sides return the same number of matches.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

PARAM_VALUES = ("adam", "sgd", "rmsprop", "adagrad")


@dataclass(frozen=True)
class Corpus:
    runs: int
    params: int = 10
    metrics: int = 10
    tags: int = 5
    seed: int = 7

    def rows(self, experiment_id: int, artifact_root: str, now_ms: int) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, deterministic for a given seed (the same data on both sides)."""
        rng = random.Random(self.seed)
        out: dict[str, list[tuple[Any, ...]]] = {
            "runs": [],
            "params": [],
            "tags": [],
            "metrics": [],
            "latest_metrics": [],
        }
        for i in range(self.runs):
            run_id = uuid.UUID(int=rng.getrandbits(128)).hex
            start = now_ms - (self.runs - i) * 1000
            out["runs"].append((run_id, f"run-{i}", experiment_id, "bench", "FINISHED", start, start + 500,
                                "active", f"{artifact_root.rstrip('/')}/{run_id}/artifacts"))  # fmt: skip
            out["params"].append(("optimizer", PARAM_VALUES[rng.randrange(len(PARAM_VALUES))], run_id))
            for p in range(1, self.params):
                out["params"].append((f"p{p}", str(rng.randrange(1000)), run_id))
            tags = {"mlflow.runName": f"run-{i}", "mlflow.user": "bench", "mlflow.source.type": "LOCAL",
                    "team": f"team-{i % 7}", "stage": ("dev", "prod")[i % 2]}  # fmt: skip
            for key in list(tags)[: self.tags]:
                out["tags"].append((key, tags[key], run_id))
            for m in range(self.metrics):
                value = rng.random()
                out["metrics"].append((f"m{m}", value, start, run_id, 0, False))
                out["latest_metrics"].append((f"m{m}", value, start, 0, False, run_id))
        return out


COLUMNS = {
    "runs": (
        "run_uuid",
        "name",
        "experiment_id",
        "user_id",
        "status",
        "start_time",
        "end_time",
        "lifecycle_stage",
        "artifact_uri",
    ),  # fmt: skip
    "params": ("key", "value", "run_uuid"),
    "tags": ("key", "value", "run_uuid"),
    "metrics": ("key", "value", "timestamp", "run_uuid", "step", "is_nan"),
    "latest_metrics": ("key", "value", "timestamp", "step", "is_nan", "run_uuid"),
}


def _required_extras(cur, table: str, given: Sequence[str]) -> list[tuple[str, Any]]:  # type: ignore[no-untyped-def]
    """NOT NULL columns without a default that we do not fill, with a neutral value by type."""
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = %s AND is_nullable = 'NO' AND column_default IS NULL",
        (table,),
    )
    extras = []
    for name, data_type in cur.fetchall():
        if name in given:
            continue
        if "int" in data_type or data_type in ("numeric", "double precision"):
            extras.append((name, 0))
        elif data_type == "boolean":
            extras.append((name, False))
        else:
            extras.append((name, "LOCAL" if name == "source_type" else ""))
    return extras


def copy_rows(conn, table: str, rows: Iterable[tuple[Any, ...]]) -> None:  # type: ignore[no-untyped-def]
    with conn.cursor() as cur:
        columns = COLUMNS[table]
        extras = _required_extras(cur, table, columns)
        names = ", ".join((*columns, *(name for name, _ in extras)))
        tail = tuple(value for _, value in extras)
        with cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row + tail)


def seed_runs(conn, corpus: Corpus, experiment_id: int, artifact_root: str, now_ms: int) -> None:  # type: ignore[no-untyped-def]
    tables = corpus.rows(experiment_id, artifact_root, now_ms)
    for table in ("runs", "params", "tags", "metrics", "latest_metrics"):
        copy_rows(conn, table, tables[table])
    conn.commit()


def seed_history(conn, run_id: str, key: str, steps: int, now_ms: int) -> None:  # type: ignore[no-untyped-def]
    """One metric with `steps` points on an existing run (+ its latest_metrics row)."""
    rng = random.Random(11)
    values = [rng.random() for _ in range(steps)]
    copy_rows(conn, "metrics", ((key, v, now_ms + s, run_id, s, False) for s, v in enumerate(values)))
    copy_rows(conn, "latest_metrics", [(key, values[-1], now_ms + steps - 1, steps - 1, False, run_id)])
    conn.commit()


def analyze(conn) -> None:  # type: ignore[no-untyped-def]
    """VACUUM and ANALYZE the database, as autovacuum does to a table within about a minute of this many
    inserts (its insert threshold): the statistics, and the visibility map that lets an index-only scan
    skip the table's pages. Both sides' databases get the same."""
    conn.autocommit = True
    conn.execute("VACUUM (ANALYZE)")
    conn.autocommit = False
