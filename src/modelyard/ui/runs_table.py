"""The runs table as the template draws it: which columns, and one row per run with its cells, its
place under its parent and the model versions registered from it.

Columns: the run's name always; then the pinned ones; then what the URL names, or by default the
attribute columns (Models when the page has registered versions), the experiment's most recently used
metrics and params (`DEFAULT_METRICS`, `DEFAULT_PARAMS`: what fits a 1366-pixel screen without
scrolling sideways, with long keys on two header lines; the picker adds more).

Nesting is per page: a run whose parent (tag `mlflow.parentRunId`) is on the same page is drawn
under it, indented, and the parent can fold its children away; a run whose parent is elsewhere
stays where the order put it and names its parent. The page keeps the search's order and its count,
so the total and the paging never depend on how runs nest.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson

from modelyard.entities import PagedList, Run, RunData, RunInfo, RunStatus
from modelyard.store.tracking.base import TrackingStore
from modelyard.store.tracking.run_table import RunKeys
from modelyard.ui.render import format_number
from modelyard.ui.runs_query import ATTRIBUTES, Column, RunsQuery

PARENT_TAG = "mlflow.parentRunId"
SOURCE_TAG = "mlflow.source.name"
COMMIT_TAG = "mlflow.source.git.commit"
USER_TAG = "mlflow.user"
DEFAULT_METRICS = 3
DEFAULT_PARAMS = 2
#: Indentation classes go to this depth; deeper runs are drawn at it.
MAX_DEPTH = 6
_GROUP_LABELS = {"attribute": "", "metric": "Metrics", "param": "Params", "tag": "Tags"}


def search_page(store: TrackingStore, query: RunsQuery, size: int, page_token: str | None) -> PagedList[Run]:
    """One page of the query's search, read through `search_runs_json`: on PostgreSQL one statement
    builds every run's JSON (the API's fast path; loading the page table by table into entities took
    ~9x as long for 1,000 runs). The runs carry their latest metric values as a dict only: a `Metric`
    object per value was most of the remaining time."""
    found = store.search_runs_json(
        [query.experiment_id], query.filter, query.view_type, size, [query.order], page_token
    )
    return PagedList([_run(d) for d in orjson.loads(orjson.dumps(list(found)))], found.token)


def _run(d: dict[str, Any]) -> Run:
    data = d.get("data") or {}
    return Run(
        info=RunInfo.from_dict(d["info"]),
        data=RunData(
            metrics={m["key"]: float(m["value"]) for m in data.get("metrics", ())},
            params={p["key"]: p.get("value", "") for p in data.get("params", ())},
            tags={t["key"]: t.get("value", "") for t in data.get("tags", ())},
        ),
    )


def default_columns(keys: RunKeys, models: bool = True) -> list[Column]:
    """The attributes (Models only when `models`: some run on the page has a registered version),
    then the most recently used metrics and params."""
    return [
        *(Column("attribute", name) for name in ATTRIBUTES if models or name != "models"),
        *(Column("metric", k) for k in keys.metrics[:DEFAULT_METRICS]),
        *(Column("param", k) for k in keys.params[:DEFAULT_PARAMS]),
    ]


def shown_columns(query: RunsQuery, keys: RunKeys, models: bool = True) -> list[Column]:
    """Pinned columns first, then the others in the URL's (or the default) order."""
    chosen = list(query.columns) if query.columns is not None else default_columns(keys, models)
    return [*query.pins, *(c for c in chosen if c not in query.pins)]


@dataclass(frozen=True)
class Group:
    label: str
    span: int


def header_groups(columns: Sequence[Column], pinned: Iterable[Column]) -> list[Group]:
    """The header's first row: consecutive columns of one kind under one label (pinned ones under
    'Pinned')."""
    pins = set(pinned)
    groups: list[Group] = []
    for column in columns:
        label = "Pinned" if column in pins else _GROUP_LABELS[column.kind]
        if groups and groups[-1].label == label:
            groups[-1] = Group(label, groups[-1].span + 1)
        else:
            groups.append(Group(label, 1))
    return groups


@dataclass(frozen=True)
class PickerEntry:
    column: Column
    shown: bool
    pinned: bool


def picker(
    keys: RunKeys, columns: Sequence[Column], pins: Sequence[Column]
) -> list[tuple[str, list[PickerEntry]]]:
    """The column picker's groups: every attribute, the experiment's keys, and any other column the
    URL names (a key only older runs use)."""
    shown, pinned = set(columns), set(pins)
    known = {
        "attribute": [Column("attribute", name) for name in ATTRIBUTES],
        "metric": [Column("metric", k) for k in keys.metrics],
        "param": [Column("param", k) for k in keys.params],
        "tag": [Column("tag", k) for k in keys.tags],
    }
    for column in columns:
        if column not in known[column.kind]:
            known[column.kind].append(column)
    labels = {"attribute": "Attributes", "metric": "Metrics", "param": "Params", "tag": "Tags"}
    return [
        (labels[kind], [PickerEntry(c, c in shown, c in pinned) for c in items])
        for kind, items in known.items()
        if items
    ]


@dataclass(frozen=True)
class ModelLink:
    """A model version registered from a run, linking to its page in the registry UI."""

    name: str
    version: str

    @property
    def href(self) -> str:
        return "/model-version?" + urlencode({"name": self.name, "version": self.version})


@dataclass
class Row:
    run: Run
    depth: int = 0
    #: Runs drawn directly under this one.
    children: int = 0
    #: Under a folded ancestor.
    hidden: bool = False
    #: The parent's id when it is not on this page, and its name when known.
    parent_elsewhere: str | None = None
    parent_name: str = ""
    models: list[ModelLink] = field(default_factory=list)
    #: One formatted value per column (attribute columns: '', the template draws them).
    values: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    @property
    def name(self) -> str:
        return self.run.info.run_name or self.run.data.tags.get("mlflow.runName", "") or self.run_id[:12]

    @property
    def running(self) -> bool:
        return self.run.info.status in (RunStatus.RUNNING, RunStatus.SCHEDULED)

    @property
    def depth_class(self) -> int:
        return min(self.depth, MAX_DEPTH)

    @property
    def user(self) -> str:
        return self.run.info.user_id or self.run.data.tags.get(USER_TAG, "")

    @property
    def source(self) -> str:
        return self.run.data.tags.get(SOURCE_TAG, "")

    @property
    def source_short(self) -> str:
        return self.source.rstrip("/").rsplit("/", 1)[-1]

    @property
    def commit(self) -> str:
        return self.run.data.tags.get(COMMIT_TAG, "")

    def duration(self, now_ms: int) -> int | None:
        info = self.run.info
        if not info.start_time:
            return None
        end = info.end_time or (now_ms if self.running else None)
        return None if end is None else max(0, end - info.start_time)


def nest(runs: Sequence[Run]) -> list[Row]:
    """The page's runs with each child moved right under its parent (when both are on the page),
    keeping the search's order among siblings; a cycle of parents is broken where it is found."""
    by_id = {run.info.run_id: run for run in runs}
    children: dict[str, list[Run]] = {}
    roots: list[Run] = []
    for run in runs:
        parent = run.data.tags.get(PARENT_TAG)
        if parent and parent in by_id and parent != run.info.run_id:
            children.setdefault(parent, []).append(run)
        else:
            roots.append(run)
    rows: list[Row] = []
    placed: set[str] = set()

    def place(run: Run, depth: int) -> None:
        placed.add(run.info.run_id)
        row = Row(run, depth)
        rows.append(row)
        for child in children.get(run.info.run_id, ()):
            if child.info.run_id not in placed:
                row.children += 1
                place(child, depth + 1)

    for run in roots:
        place(run, 0)
    for run in runs:  # runs on a cycle of parents: none of them is a root
        if run.info.run_id not in placed:
            place(run, 0)
    for row in rows:
        parent = row.run.data.tags.get(PARENT_TAG)
        if parent and row.depth == 0 and parent != row.run_id:
            row.parent_elsewhere = parent
    return rows


def fold(rows: Sequence[Row], folded: Iterable[str]) -> None:
    """Hide the rows under a folded parent (rows are in `nest` order: descendants follow their
    ancestor with a greater depth)."""
    folded = set(folded)
    hide_below: int | None = None
    for row in rows:
        row.hidden = hide_below is not None and row.depth > hide_below
        if not row.hidden:
            hide_below = row.depth if row.run_id in folded and row.children else None


def fill(
    rows: Sequence[Row],
    columns: Sequence[Column],
    models: dict[str, list[ModelLink]],
    parent_names: dict[str, str],
) -> None:
    """Each row's cell values, model links and the name of a parent that is on another page."""
    for row in rows:
        data = row.run.data
        row.values = [_value(data.metrics, data.params, data.tags, c) for c in columns]
        row.models = models.get(row.run_id, [])
        if row.parent_elsewhere:
            row.parent_name = parent_names.get(row.parent_elsewhere, "")


def _value(metrics: dict[str, float], params: dict[str, str], tags: dict[str, str], column: Column) -> str:
    if column.kind == "metric":
        return format_number(metrics[column.key]) if column.key in metrics else ""
    if column.kind == "param":
        return params.get(column.key, "")
    if column.kind == "tag":
        return tags.get(column.key, "")
    return ""


def now_ms() -> int:
    return int(time.time() * 1000)
