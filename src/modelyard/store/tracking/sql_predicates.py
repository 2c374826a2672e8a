"""A run or experiment filter as a SQL condition, with a cost that grows linearly in its terms.

Each comparison on a metric, param or tag tests the row of that key in its key/value table
(`latest_metrics`, `params`, `tags`; `experiment_tags` for experiments):
- `runs.run_uuid IN (SELECT run_uuid FROM <table> WHERE key = :k AND <value test>)`: an uncorrelated
  semi-join that composes under AND and OR and that the planner can drive from the key/value
  indexes (on PostgreSQL the subquery also names the experiments searched, which lead those indexes,
  and a param/tag `=`, IN or LIKE prefix is tested on the value's indexed prefix: its cost follows the
  experiments searched, not the database); IS NULL is a correlated NOT EXISTS on the (run_uuid, key)
  primary key. A run without the
  key never matches a value test, `!=` and NOT IN included (MLflow's rule). NaN metrics (stored as
  value 0 with is_nan) match only `!=` and NOT IN.

Why the top-level AND is compiled with care: PostgreSQL pulls every AND-ed semi-join (and anti-join)
up into the join tree and searches their join orders, which grew exponentially with the terms (a
10,000-run store: 20 terms planned in 4.4 s, 40 in 4.6 s + 0.8 s to run, 160 over a minute). So:
- the terms of one key are merged into one test (a run has at most one row per key, so "a row of key
  k passes t1 and a row of key k passes t2" is "the row of key k passes t1 and t2");
- up to `JOINED_KEYS` keys stay semi-joins, for the planner to drive the search from (the common
  searches: their plans are unchanged);
- beyond that, on PostgreSQL, each table's keys become one correlated probe: a count of the run's
  rows of those keys that pass their tests, read through the (run_uuid, key) primary key. An
  aggregate is never pulled up, so it is a filter, planned once, run on the runs the page reads
  (in its order until it is full, when an index gives that order); IS NULL is a NOT EXISTS kept
  from being pulled up by `OFFSET 0`. Planning and running grow linearly with the terms
  (bench/search_terms.py).
SQLite plans each IN subquery on its own (a materialised list), which is already linear.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
)

from modelyard.store.search.filter_parser import NULL_OPS, And, Comparison, Node
from modelyard.store.search.sql_ops import LIKE_ESCAPE, all_of, any_of, compare
from modelyard.store.sql.experiment_ids import VALUE_PREFIX
from modelyard.store.sql.schema import (
    SqlExperiment,
    SqlExperimentTag,
    SqlLatestMetric,
    SqlParam,
    SqlRun,
    SqlTag,
)

runs_t: Table = SqlRun.__table__  # type: ignore[assignment]
params_t: Table = SqlParam.__table__  # type: ignore[assignment]
tags_t: Table = SqlTag.__table__  # type: ignore[assignment]
latest_t: Table = SqlLatestMetric.__table__  # type: ignore[assignment]
experiments_t: Table = SqlExperiment.__table__  # type: ignore[assignment]
experiment_tags_t: Table = SqlExperimentTag.__table__  # type: ignore[assignment]

RUN_ATTRIBUTE_COLUMNS = {
    "run_id": runs_t.c.run_uuid,
    "run_name": runs_t.c.name,
    "status": runs_t.c.status,
    "user_id": runs_t.c.user_id,
    "artifact_uri": runs_t.c.artifact_uri,
    "lifecycle_stage": runs_t.c.lifecycle_stage,
    "start_time": runs_t.c.start_time,
    "end_time": runs_t.c.end_time,
}
RUN_KEYED_TABLES = {"metric": latest_t, "param": params_t, "tag": tags_t}

EXPERIMENT_ATTRIBUTE_COLUMNS = {
    "name": experiments_t.c.name,
    "experiment_id": experiments_t.c.experiment_id,
    "creation_time": experiments_t.c.creation_time,
    "last_update_time": experiments_t.c.last_update_time,
}

#: Keys of a top-level AND compiled as semi-joins the planner may reorder (its search is exhaustive
#: up to join_collapse_limit, 8, items; the runs row and the order_by joins count too); more keys
#: are all compiled as probes.
JOINED_KEYS = 4
_SELECTIVE_OPS = frozenset({"=", "IN", "IS NOT NULL"})
_ONE = literal_column("1")


class _Owner:
    """Whose key/value rows a filter tests: runs (metrics, params, tags) or experiments (tags).
    `experiment_ids`: the experiments a run search reads, when its key/value rows carry their run's
    experiment_id (PostgreSQL, `store/sql/experiment_ids`)."""

    def __init__(
        self,
        owner_id: Any,
        attributes: dict[str, Any],
        tables: dict[str, Table],
        experiment_ids: Sequence[int] = (),
        probe_ors: bool = True,
    ) -> None:
        self.owner_id = owner_id
        self.attributes = attributes
        self.tables = tables
        self.experiment_ids = tuple(experiment_ids)
        #: With experiment_ids: an OR tests each run by probes (a page); else its terms' rows are
        #: hashed, the experiments' matches of each (a count, which reads every match anyway).
        self.probe_ors = probe_ors and bool(experiment_ids)


_EXPERIMENTS = _Owner(experiments_t.c.experiment_id, EXPERIMENT_ATTRIBUTE_COLUMNS, {"tag": experiment_tags_t})


def run_filter(
    node: Node, dialect: str, experiment_ids: Sequence[int] = (), for_count: bool = False
) -> ColumnElement[bool]:
    """The filter of a run search over `experiment_ids` (on PostgreSQL its semi-joins read only those
    experiments' rows, through the (experiment_id, key, value) indexes). `for_count`: for counting
    every match rather than reading a page (ORs hashed, see `_predicate`)."""
    scoped = experiment_ids if dialect == "postgresql" else ()
    owner = _Owner(
        runs_t.c.run_uuid, RUN_ATTRIBUTE_COLUMNS, RUN_KEYED_TABLES, scoped, probe_ors=not for_count
    )
    return _filter(owner, node, dialect)


def probing_run_filter(
    node: Node, experiment_ids: Sequence[int], runs: Any, run_uuid: Any = None
) -> ColumnElement[bool]:
    """The filter on the rows of `runs` (a subquery of the runs table, PostgreSQL) as correlated probes
    only, each run tested through the key/value tables' (run_uuid, key) primary keys: for reading runs
    in an index's order until a page is full (`sql_walks`), whatever the planner would estimate.
    `run_uuid`: where the probes take the run's id from, when not `runs` (a probe that needs nothing
    else of the run can then be tested before its row is read)."""
    attributes = {name: runs.c[column.name] for name, column in RUN_ATTRIBUTE_COLUMNS.items()}
    owner_id = runs.c.run_uuid if run_uuid is None else run_uuid
    owner = _Owner(owner_id, attributes, RUN_KEYED_TABLES, experiment_ids)
    return _filter(owner, node, "postgresql", probe=True)


# ---- anchors: terms whose candidates are one range of an index (`sql_walks`) ---------------------
#: The comparisons whose matches are one range of a key/value table's (experiment_id, key, value)
#: index, by entity.
_ANCHOR_OPS = {
    "param": ("=", "IN", "LIKE"),
    "tag": ("=", "IN", "LIKE"),
    "metric": ("=", "<", "<=", ">", ">="),
}


def anchors(node: Node) -> list[Comparison]:
    """The filter's terms every match must pass (the top-level AND's, or the filter itself) whose
    candidates are one range of an (experiment_id, key, value) index: a param or tag `=`, IN or LIKE
    with a literal prefix, a metric comparison."""
    children = node.children if isinstance(node, And) else (node,)
    found = []
    for child in children:
        if not isinstance(child, Comparison) or child.op not in _ANCHOR_OPS.get(child.entity, ()):
            continue
        if child.op == "LIKE" and not like_prefix(str(child.value))[0]:
            continue
        found.append(child)
    return found


def without(node: Node, term: Comparison) -> Node | None:
    """The filter without one of its top-level terms (None: nothing left)."""
    if node is term:
        return None
    assert isinstance(node, And)
    rest = tuple(child for child in node.children if child is not term)
    return rest[0] if len(rest) == 1 else And(rest)


def key_rows(comp: Comparison, experiment_ids: Sequence[int]) -> Select[Any]:
    """A row per run of `experiment_ids` with `comp`'s key (PostgreSQL; an index-only range of the
    key/value table's (experiment_id, key, value) index)."""
    table = RUN_KEYED_TABLES[comp.entity]
    return select(_ONE).where(in_experiments(table, experiment_ids), table.c.key == comp.key)


def anchor_rows(
    comp: Comparison, experiment_ids: Sequence[int], *columns: Any, exact: bool = False
) -> Select[Any]:
    """`columns` (default: run_uuid) of the rows of `experiment_ids` in `comp`'s key/value table that
    pass `comp` (PostgreSQL), read from the table's (experiment_id, key, value [prefix]) index.
    Not `exact`: a superset of them, tested on what that index holds only (not a metric's NaN flag,
    stored as value 0, nor a value's characters past the prefix), so counting them reads no more."""
    table = RUN_KEYED_TABLES[comp.entity]
    scope = in_experiments(table, experiment_ids)
    selected = columns or (table.c.run_uuid,)
    if exact:
        return select(*selected).where(scope, *_row_tests(table, [comp], "postgresql"))
    if comp.entity == "metric":
        test = compare(table.c.value, comp.op, float(comp.value), "postgresql")  # type: ignore[arg-type]
    else:
        head = func.left(table.c.value, literal_column(str(VALUE_PREFIX)))
        if comp.op == "LIKE":
            prefix = like_prefix(str(comp.value))[0][:VALUE_PREFIX]
            test = head.like(like_literal(prefix) + "%", escape=LIKE_ESCAPE)
        else:
            values = [comp.value] if comp.op == "=" else list(comp.value)  # type: ignore[arg-type]
            heads = [str(v)[:VALUE_PREFIX] for v in values]
            test = head == heads[0] if len(heads) == 1 else head.in_(heads)
    return select(*selected).where(scope, table.c.key == comp.key, test)


def in_experiments(table: Table, experiment_ids: Sequence[int]) -> ColumnElement[bool]:
    """`table.experiment_id` among `experiment_ids`: true of every row of a run of theirs, and what
    leads the key/value tables' indexes on PostgreSQL."""
    ids = list(experiment_ids)
    return table.c.experiment_id == ids[0] if len(ids) == 1 else table.c.experiment_id.in_(ids)


def experiment_filter(node: Node, dialect: str) -> ColumnElement[bool]:
    return _filter(_EXPERIMENTS, node, dialect)


def _filter(owner: _Owner, node: Node, dialect: str, probe: bool = False) -> ColumnElement[bool]:
    """The filter's top level: an AND has its keyed terms merged per key (see the module doc);
    `probe`: every keyed term a correlated probe (PostgreSQL)."""
    children = node.children if isinstance(node, And) else (node,)
    groups: dict[tuple[str, str], list[Comparison]] = {}
    absent: list[Comparison] = []
    others: list[ColumnElement[bool]] = []
    for child in children:
        if isinstance(child, Comparison) and child.entity != "attribute":
            if child.op == "IS NULL":
                absent.append(child)
            else:
                groups.setdefault((child.entity, child.key), []).append(child)
        else:
            others.append(child)
    ordered = sorted(groups.values(), key=lambda comps: not any(c.op in _SELECTIVE_OPS for c in comps))
    if dialect != "postgresql" or (not probe and len(ordered) + len(absent) <= JOINED_KEYS):
        keyed = [_keyed(owner, comps, dialect) for comps in ordered]
        rest = [_predicate(owner, child, dialect) for child in others]
        return all_of([*keyed, *rest, *(_absent(owner, comp, dialect) for comp in absent)])
    by_entity: dict[str, list[list[Comparison]]] = {}
    for comps in ordered:
        by_entity.setdefault(comps[0].entity, []).append(comps)
    probes = [_probe(owner, entity_groups, dialect) for entity_groups in by_entity.values()]
    probes += [_absent(owner, comp, dialect, probe=True) for comp in absent]
    # One condition for the planner's estimate (its default selectivity for an opaque boolean, 1/2)
    # instead of 1/2 per probe: with 20 probes it expected a handful of rows to pass, sorted them all
    # rather than walking the order's index until the page is full, and nested its joins over that
    # handful (22 s for 40 terms). COALESCE hides the AND from the estimate, not from the execution:
    # the probes run in order (equality tests first) and stop at the first that fails.
    rest = [_predicate(owner, child, dialect, probe=True) for child in others]
    return all_of([*rest, func.coalesce(and_(*probes), false())] if probes else rest)


def _predicate(owner: _Owner, node: Node, dialect: str, probe: bool = False) -> ColumnElement[bool]:
    """A term below the top level, or not merged into it (an OR, an attribute test).

    Under an OR, PostgreSQL never pulls semi-joins up: each IN-subquery is a subplan, which it hashes
    whole, every match of the term in the experiments searched (and when that does not fit in
    work_mem, scans the whole list again for each run: a 1,000,000-run experiment's
    `metrics.m0 < 0.1 OR tags.team = 'team-3'` ran over a minute). So in a run search on PostgreSQL
    an OR tests each run the page reads, in the page's order, with correlated probes through the
    terms' (run_uuid, key) primary keys, fenced so that none is hashed: its cost follows the page and
    the OR's selectivity (a rare OR reads the whole experiment), never the database; a count, which reads
    every match anyway, keeps the hashed IN-subqueries (`for_count`). (A semi-join on
    the UNION ALL of the terms' rows was tried: PostgreSQL cannot estimate how many runs a union
    holds, takes 200, and joins every match before sorting: 6.6 s.) `probe` asks for the same form
    for any keyed test (the top level's, past JOINED_KEYS keys)."""
    if isinstance(node, Comparison):
        if node.entity == "attribute":
            return _attribute_test(owner.attributes[node.key], node, dialect)
        if node.op == "IS NULL":
            return _absent(owner, node, dialect, probe=probe)
        return _keyed_probe(owner, node) if probe and owner.experiment_ids else _keyed(owner, [node], dialect)
    if isinstance(node, And):
        return all_of([_predicate(owner, child, dialect, probe) for child in node.children])
    probe = probe or owner.probe_ors
    return any_of([_predicate(owner, child, dialect, probe) for child in node.children])


def _keyed_probe(owner: _Owner, comp: Comparison) -> ColumnElement[bool]:
    """The owner has a row passing the comparison, looked up for each owner row through the (owner,
    key) primary key (fenced: never hashed whole)."""
    table = owner.tables[comp.entity]
    rows = select(_ONE).where(
        table.c[owner.owner_id.name] == owner.owner_id,
        *_row_tests(table, [comp], "postgresql", index_hints=False),
    )
    return exists(_fenced(rows))


def _attribute_test(column: Any, comp: Comparison, dialect: str) -> ColumnElement[bool]:
    if comp.op == "IS NULL":
        return column.is_(None)
    if comp.op == "IS NOT NULL":
        return column.is_not(None)
    return compare(column, comp.op, comp.value, dialect)


def _keyed(owner: _Owner, comps: list[Comparison], dialect: str) -> ColumnElement[bool]:
    """The owner has a row of the comparisons' key whose value passes every one of them (IS NOT
    NULL: the row exists)."""
    table = owner.tables[comps[0].entity]
    row_owner = table.c[owner.owner_id.name]
    scope = [in_experiments(table, owner.experiment_ids)] if owner.experiment_ids else []
    return owner.owner_id.in_(select(row_owner).where(*scope, *_row_tests(table, comps, dialect)))


def _probe(owner: _Owner, groups: list[list[Comparison]], dialect: str) -> ColumnElement[bool]:
    """Every group's key has a row passing the group's tests, as one correlated count over the
    owner's rows of one table (read through the (owner, key) primary key): a run has at most one row
    per key, so the rows passing their key's tests number len(groups) exactly when all pass. One
    probe per table, not per key: a probe is an index descent, the tests on its rows are cheap."""
    table = owner.tables[groups[0][0].entity]
    row_owner = table.c[owner.owner_id.name]
    passing = or_(*(and_(*_row_tests(table, comps, dialect, index_hints=False)) for comps in groups))
    keys = [comps[0].key for comps in groups]
    count = select(func.count()).where(row_owner == owner.owner_id, table.c.key.in_(keys), passing)
    return count.scalar_subquery() == len(groups)


def _row_tests(
    table: Table, comps: list[Comparison], dialect: str, index_hints: bool = True
) -> list[ColumnElement[bool]]:
    tests = [table.c.key == comps[0].key]
    tests += [_value_test(table, comp, dialect, index_hints) for comp in comps if comp.op not in NULL_OPS]
    return tests


def _absent(owner: _Owner, comp: Comparison, dialect: str, probe: bool = False) -> ColumnElement[bool]:
    """IS NULL: the owner has no row of the key (`probe`: kept from being pulled up, as above)."""
    table = owner.tables[comp.entity]
    rows = select(_ONE).where(table.c[owner.owner_id.name] == owner.owner_id, table.c.key == comp.key)
    return ~exists(_fenced(rows) if probe and dialect == "postgresql" else rows)


def _fenced(query: Select[Any]) -> Select[Any]:
    """`query OFFSET 0`: PostgreSQL does not pull a sublink with an OFFSET up into the join tree."""
    return query.offset(literal_column("0"))


def _value_test(
    table: Table, comp: Comparison, dialect: str, index_hints: bool = True
) -> ColumnElement[bool]:
    if "is_nan" in table.c:
        return _metric_value_test(table, comp, dialect)
    test = compare(table.c.value, comp.op, comp.value, dialect)
    if index_hints and dialect == "postgresql" and table in (params_t, tags_t):
        return _prefix_test(table.c.value, comp, test)
    return test


def _prefix_test(value: Any, comp: Comparison, test: ColumnElement[bool]) -> ColumnElement[bool]:
    """`=`, IN and `LIKE 'prefix...'` on a param or tag value as a test of its first VALUE_PREFIX
    characters, which the (experiment_id, key, value prefix) index holds (text_pattern_ops: a LIKE
    prefix is a range of it). When that test alone decides (values and prefixes shorter than the
    prefix), it is the whole test, so the planner estimates one condition, from the statistics on
    (key, value prefix), instead of multiplying two that say the same."""
    head = func.left(value, literal_column(str(VALUE_PREFIX)))
    if comp.op in ("=", "IN"):
        values = [comp.value] if comp.op == "=" else list(comp.value)
        if all(len(v) < VALUE_PREFIX for v in values):
            return compare(head, comp.op, comp.value, "postgresql")
        heads = [v[:VALUE_PREFIX] for v in values]
        return and_(head == heads[0] if comp.op == "=" else head.in_(heads), test)
    if comp.op == "LIKE":
        prefix, rest = like_prefix(comp.value)
        if not prefix:
            return test
        pattern = like_literal(prefix[:VALUE_PREFIX]) + "%"
        exact = rest == "%" and len(prefix) <= VALUE_PREFIX
        return (
            head.like(pattern, escape=LIKE_ESCAPE)
            if exact
            else and_(head.like(pattern, escape=LIKE_ESCAPE), test)
        )
    return test


def like_prefix(pattern: str) -> tuple[str, str]:
    """A LIKE pattern's literal prefix (escapes resolved) and the pattern from its first wildcard on."""
    prefix: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == LIKE_ESCAPE and i + 1 < len(pattern):
            prefix.append(pattern[i + 1])
            i += 2
        elif ch in "%_":
            break
        else:
            prefix.append(ch)
            i += 1
    return "".join(prefix), pattern[i:]


def like_literal(text: str) -> str:
    """`text` as a LIKE pattern that matches it exactly."""
    return "".join(LIKE_ESCAPE + ch if ch in (LIKE_ESCAPE, "%", "_") else ch for ch in text)


def _metric_value_test(table: Table, comp: Comparison, dialect: str) -> ColumnElement[bool]:
    value = comp.value
    if isinstance(value, tuple):
        value = tuple(float(v) for v in value)
    elif value is not None:
        value = float(value)
    test = compare(table.c.value, comp.op, value, dialect)
    if comp.op in ("!=", "NOT IN"):
        return or_(table.c.is_nan == true(), test)
    return and_(table.c.is_nan == false(), test)
