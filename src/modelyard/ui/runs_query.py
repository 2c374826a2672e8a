"""The runs page's state, all of it in the query string: a URL can be shared and the back button
restores exactly what was on screen.

    filter      the search filter (the REST API's grammar, OR and parentheses included)
    order       one order_by clause (`metrics.rmse ASC`); default: newest first
    view        active | deleted
    size        rows per page: 50, 100 or 200
    page_token  the search's keyset token for this page; skip: how many rows came before (for
                the "101-200 of 10,001" label only); prev: the tokens of the pages before, for
                "Previous page" (keyset tokens only lead forward; `.` is the first page)
    cols=1 + col=<id>...   the columns shown (absent: the experiment's defaults); pin=<id>...
                the pinned ones. A column id is `<kind>:<key>`: a: attribute, m: metric, p: param,
                t: tag (`m:val loss`).
    sel         selected run ids, comma-separated; fold: parents whose children are folded away

A bad value is reported, not raised: `from_params` returns the problems next to a usable state, and
the page shows them where the table would be, keeping what the user typed in the inputs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from modelyard.entities.lifecycle import ViewType
from modelyard.exceptions import ModelyardException
from modelyard.store.search.kinds import RUNS
from modelyard.store.search.order_by import OrderBy

PAGE_SIZES = (50, 100, 200)
DEFAULT_SIZE = 100
DEFAULT_ORDER = "attributes.start_time DESC"
VIEWS = {"active": ViewType.ACTIVE_ONLY, "deleted": ViewType.DELETED_ONLY}
#: More entries than any screen can use; a longer list is a mistake or an attack, not a choice.
MAX_LIST = 500
_RUN_ID = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
#: A page token (URL-safe base64), or `.` for the first page.
_TOKEN = re.compile(r"^(\.|[\w\-]{1,65536})$")
#: "Previous page" reaches this many pages back.
MAX_PREVIOUS = 30
#: A key the filter language takes as written after `metrics.`; others are `backquoted`.
_PLAIN_KEY = re.compile(r"^\w+(?:\.\w+)*$")
_KINDS = {"a": "attribute", "m": "metric", "p": "param", "t": "tag"}
_PREFIXES = {kind: prefix for prefix, kind in _KINDS.items()}
_ENTITY_PREFIX = {"metric": "metrics", "param": "params", "tag": "tags", "attribute": "attributes"}


@dataclass(frozen=True)
class Attribute:
    label: str
    #: What clicking the header orders by: (entity, key) as the search names it; None: not sortable.
    sort: tuple[str, str] | None
    numeric: bool = False


#: The attribute columns, in display order. The run's name is always shown (first, not here).
ATTRIBUTES: dict[str, Attribute] = {
    "created": Attribute("Created", ("attribute", "start_time")),
    "duration": Attribute("Duration", None, numeric=True),
    "status": Attribute("Status", ("attribute", "status")),
    "user": Attribute("User", ("attribute", "user_id")),
    "source": Attribute("Source", ("tag", "mlflow.source.name")),
    "models": Attribute("Models", None),
}
NAME_SORT = ("attribute", "run_name")


@dataclass(frozen=True)
class Column:
    """One column of the runs table besides the run's name."""

    kind: str  # attribute | metric | param | tag
    key: str

    @property
    def id(self) -> str:
        return f"{_PREFIXES[self.kind]}:{self.key}"

    @classmethod
    def parse(cls, text: str) -> Column | None:
        prefix, colon, key = text.partition(":")
        kind = _KINDS.get(prefix)
        if not colon or kind is None or not key or len(key) > 250:
            return None
        if kind == "attribute" and key not in ATTRIBUTES:
            return None
        return cls(kind, key)

    @property
    def label(self) -> str:
        return ATTRIBUTES[self.key].label if self.kind == "attribute" else self.key

    @property
    def sort(self) -> tuple[str, str] | None:
        return ATTRIBUTES[self.key].sort if self.kind == "attribute" else (self.kind, self.key)

    @property
    def numeric(self) -> bool:
        return self.kind == "metric" or (self.kind == "attribute" and ATTRIBUTES[self.key].numeric)


def identifier(entity: str, key: str) -> str:
    """`metrics.rmse`, ``params.`batch size` ``: how the filter and order_by languages name a key."""
    if entity == "attribute":
        return f"attributes.{key}"
    quoted = key if _PLAIN_KEY.match(key) else f"`{key}`"
    return f"{_ENTITY_PREFIX[entity]}.{quoted}"


@dataclass(frozen=True)
class RunsQuery:
    experiment_id: str
    filter: str = ""
    order: str = DEFAULT_ORDER
    view: str = "active"
    size: int = DEFAULT_SIZE
    page_token: str = ""
    skip: int = 0
    prev: tuple[str, ...] = ()
    #: None: the experiment's default columns.
    columns: tuple[Column, ...] | None = None
    pins: tuple[Column, ...] = ()
    sel: tuple[str, ...] = ()
    fold: tuple[str, ...] = ()
    #: The parsed order (None when `order` does not parse; the search reports why).
    sorted_by: OrderBy | None = field(default=None, compare=False)

    @property
    def view_type(self) -> int:
        return VIEWS[self.view]

    @classmethod
    def from_params(cls, experiment_id: str, params: QueryParams) -> tuple[RunsQuery, list[str]]:
        problems: list[str] = []
        view = params.get("view", "active")
        if view not in VIEWS:
            problems.append(f"view must be one of {', '.join(VIEWS)}, not {_clip(view)!r}.")
            view = "active"
        size = DEFAULT_SIZE
        size_text = params.get("size", "")
        if size_text:
            if size_text in {str(s) for s in PAGE_SIZES}:
                size = int(size_text)
            else:
                sizes = ", ".join(str(s) for s in PAGE_SIZES)
                problems.append(f"size must be one of {sizes}, not {_clip(size_text)!r}.")
        skip_text = params.get("skip", "0") or "0"
        skip = int(skip_text) if skip_text.isdigit() and len(skip_text) < 10 else 0
        prev = tuple(t for t in params.get("prev", "").split(",") if t)[-MAX_PREVIOUS:]
        if any(not _TOKEN.match(t) for t in prev):
            problems.append("prev holds page tokens separated by commas.")
            prev = ()
        order = params.get("order", "").strip() or DEFAULT_ORDER
        sorted_by = None
        try:
            parsed = RUNS.parse_order_by([order])
            if len(parsed) == 1:
                sorted_by = parsed[0]
        except ModelyardException as exc:
            problems.append(exc.message)
        columns = None
        if params.get("cols") or params.getlist("col"):
            columns = tuple(_columns(params.getlist("col"), "col", problems))
        pins = tuple(_columns(params.getlist("pin"), "pin", problems))
        query = cls(
            experiment_id=experiment_id,
            filter=params.get("filter", ""),
            order=order,
            view=view,
            size=size,
            page_token=params.get("page_token", ""),
            skip=skip,
            prev=prev,
            columns=columns,
            pins=pins,
            sel=_run_ids(params.get("sel", ""), "sel", problems),
            fold=_run_ids(params.get("fold", ""), "fold", problems),
            sorted_by=sorted_by,
        )
        return query, problems

    # ---- URLs -----------------------------------------------------------------------------------
    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """The query string's pairs for this state with `changes`, leaving out defaults."""
        state = replace(self, **changes) if changes else self
        pairs: list[tuple[str, str]] = []
        if state.filter:
            pairs.append(("filter", state.filter))
        if state.order != DEFAULT_ORDER:
            pairs.append(("order", state.order))
        if state.view != "active":
            pairs.append(("view", state.view))
        if state.size != DEFAULT_SIZE:
            pairs.append(("size", str(state.size)))
        if state.columns is not None:
            pairs.append(("cols", "1"))
            pairs.extend(("col", c.id) for c in state.columns)
        pairs.extend(("pin", c.id) for c in state.pins)
        if state.fold:
            pairs.append(("fold", ",".join(state.fold)))
        if state.sel:
            pairs.append(("sel", ",".join(state.sel)))
        if state.page_token:
            pairs.append(("page_token", state.page_token))
            if state.skip:
                pairs.append(("skip", str(state.skip)))
            if state.prev:
                pairs.append(("prev", ",".join(state.prev[-MAX_PREVIOUS:])))
        return pairs

    def url(self, suffix: str = "", **changes: Any) -> str:
        pairs = self.params(**changes)
        path = f"/experiments/{self.experiment_id}{suffix}"
        return f"{path}?{urlencode(pairs)}" if pairs else path

    def first_page(self, **changes: Any) -> str:
        """This state on its first page (a new filter, order, size or view starts over)."""
        return self.url(page_token="", skip=0, prev=(), **changes)

    def next_page(self, token: str, rows: int) -> str:
        return self.url(page_token=token, skip=self.skip + rows, prev=(*self.prev, self.page_token or "."))

    def previous_page(self) -> str | None:
        """The page before this one, when this one came from it (None: the first page, or unknown)."""
        if not self.page_token or not self.prev:
            return None
        token = "" if self.prev[-1] == "." else self.prev[-1]
        return self.url(page_token=token, skip=max(0, self.skip - self.size), prev=self.prev[:-1])

    def sort_url(self, column_sort: tuple[str, str] | None) -> str | None:
        """The URL a header links to: sort by that column, or flip the direction when it is the one."""
        if column_sort is None:
            return None
        entity, key = column_sort
        current = self.sorted_by
        if current is not None and (current.entity, current.key) == (entity, key):
            ascending = not current.ascending
        else:
            # Numbers and times: largest / newest first; text: A to Z.
            ascending = entity in ("param", "tag") or key in ("run_name", "status", "user_id")
        return self.first_page(order=f"{identifier(entity, key)} {'ASC' if ascending else 'DESC'}")

    def sort_state(self, column_sort: tuple[str, str] | None) -> str | None:
        """'ascending' / 'descending' when the table is ordered by this column (aria-sort)."""
        current = self.sorted_by
        if column_sort is None or current is None or (current.entity, current.key) != column_sort:
            return None
        return "ascending" if current.ascending else "descending"

    def hidden_fields(self, *leave_out: str) -> list[tuple[str, str]]:
        """The state as hidden form fields for a GET form that changes the rest, starting over at the
        first page. Without `sel` and `fold`: the template gives those fields of their own, which
        runs.js keeps current."""
        skip = {"sel", "fold", *leave_out}
        return [(k, v) for k, v in self.params(page_token="", skip=0, prev=()) if k not in skip]


def _columns(values: Iterable[str], name: str, problems: list[str]) -> list[Column]:
    out: list[Column] = []
    seen: set[Column] = set()
    for text in list(values)[:MAX_LIST]:
        column = Column.parse(text)
        if column is None:
            problems.append(
                f"{name} values look like m:<metric>, p:<param>, t:<tag> or a:<attribute> "
                f"({', '.join(ATTRIBUTES)}), not {_clip(text)!r}."
            )
        elif column not in seen:
            seen.add(column)
            out.append(column)
    return out


def _run_ids(text: str, name: str, problems: list[str]) -> tuple[str, ...]:
    ids = [part for part in text.split(",") if part][:MAX_LIST]
    bad = [i for i in ids if not _RUN_ID.match(i)]
    if bad:
        problems.append(f"{name} holds run ids separated by commas; {_clip(bad[0])!r} is not one.")
    return tuple(dict.fromkeys(i for i in ids if _RUN_ID.match(i)))


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
