"""What a run search's total is counted or estimated from (`run_table.count_runs`, the runs page's
"N matching runs"): the search's WHERE for counting the whole set, and a sample of its newest runs for
estimating a large experiment's matches. The pages themselves are `sql_search`'s."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, select

from modelyard.entities import ViewType
from modelyard.store.search.kinds import RUNS
from modelyard.store.tracking.sql_predicates import probing_run_filter, runs_t
from modelyard.store.tracking.sql_search import experiment_id_list, run_conditions, run_search_plan
from modelyard.store.tracking.sql_walks import budget_parameters, walk


def run_search_conditions(
    experiment_ids: Sequence[str | int], filter_string: str | None, view_type: int | str | None, dialect: str
) -> tuple[ColumnElement[bool], ...] | None:
    """The WHERE of a run search (experiments, lifecycle view, filter) for callers that count the whole
    set (`run_table.count_runs`): the pages' conditions, but ORs hashed (see sql_predicates); cached per
    worker. None when it names no experiment."""
    view = ViewType.parse(view_type)
    exp_ids = tuple(experiment_id_list(experiment_ids))
    if not exp_ids:
        return None
    return _count_conditions(exp_ids, filter_string or "", view, dialect)


@functools.lru_cache(maxsize=256)
def _count_conditions(
    exp_ids: tuple[int, ...], filter_string: str, view: int, dialect: str
) -> tuple[ColumnElement[bool], ...]:
    node = RUNS.parse_filter(filter_string)
    return tuple(run_conditions(exp_ids, node, view, dialect, for_count=True))


@dataclass(frozen=True)
class RunSample:
    """For estimating how many runs a search matches without reading them all (PostgreSQL, one
    experiment): `in_view` selects the runs in the experiment and view (the planner estimates that
    well), `matches` (None without a filter) counts those of the newest `size` of them that match,
    read from the runs index in order (each lifecycle stage's range, merged) and tested by the
    filter's probes as a page's walk is (a cost the planner cannot misjudge: `size` runs at most),
    with `params`."""

    in_view: Select[Any]
    matches: Select[Any] | None
    size: int
    params: dict[str, Any] = field(default_factory=dict)


def run_sample(
    experiment_ids: Sequence[str | int], filter_string: str | None, view_type: int | str | None, size: int
) -> RunSample | None:
    """A `RunSample` of the search on PostgreSQL, or None for a search of several experiments."""
    view = ViewType.parse(view_type)
    exp_ids = tuple(experiment_id_list(experiment_ids))
    if len(exp_ids) != 1:
        return None
    plan = run_search_plan(exp_ids, filter_string or "", view, 1, (), "postgresql")
    scope = run_conditions(exp_ids, None, view, "postgresql")
    in_view = select(literal(1)).select_from(runs_t).where(*scope)
    walking = plan.walking
    if walking is None or walking.node is None:
        return RunSample(in_view, None, size)
    _, newest = walk(replace(walking, node=None), plan.keys, size, None, False)
    matches = (
        select(func.count())
        .select_from(newest)
        .where(probing_run_filter(walking.node, walking.experiment_ids, newest))
    )
    return RunSample(in_view, matches, size, budget_parameters(size))
