"""The runs page's pure logic: its query-string state and how a page of runs nests."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import QueryParams

from modelyard.entities import Run, RunData, RunInfo
from modelyard.store.tracking.run_table import RunKeys
from modelyard.ui.render import two_lines
from modelyard.ui.runs_query import Column, RunsQuery, identifier
from modelyard.ui.runs_table import PARENT_TAG, fold, header_groups, nest, shown_columns


def parse(query: str) -> tuple[RunsQuery, list[str]]:
    return RunsQuery.from_params("7", QueryParams(query))


def run(run_id: str, parent: str | None = None) -> Run:
    tags = {PARENT_TAG: parent} if parent else {}
    info = RunInfo(run_id=run_id, experiment_id="7", run_name=run_id, user_id="", status="FINISHED",
                   start_time=1, end_time=2, artifact_uri="", lifecycle_stage="active")  # fmt: skip
    return Run(info=info, data=RunData(tags=tags))


def test_state_round_trips_through_the_url_leaving_defaults_out() -> None:
    query, problems = parse(
        "filter=metrics.a+%3E+1&order=params.%60b+c%60+ASC&view=deleted&size=50&cols=1&col=m:a&col=p:b+c"
        "&pin=t:x&sel=r1,r2&fold=r1&page_token=tok&skip=50"
    )
    assert problems == []
    assert query.columns == (Column("metric", "a"), Column("param", "b c"))
    assert query.sorted_by is not None and (query.sorted_by.entity, query.sorted_by.key) == ("param", "b c")
    again, problems = RunsQuery.from_params("7", QueryParams(urlsplit(query.url()).query))
    assert problems == [] and again == query
    assert parse("")[0].url() == "/experiments/7"
    # A new sort, filter or size starts at the first page; the selection and folds stay.
    first = parse_qs(urlsplit(query.first_page(size=100)).query)
    assert "page_token" not in first and "skip" not in first and first["sel"] == ["r1,r2"]


def test_bad_values_are_reported_and_replaced_by_defaults() -> None:
    query, problems = parse("size=7&view=x&col=q:1&col=a:nope&sel=ok,no%27pe&order=metrics.")
    assert len(problems) == 6
    assert (query.size, query.view, query.columns, query.sel) == (100, "active", (), ("ok",))


def test_header_sorts_toggle_and_quote_keys() -> None:
    query, _ = parse("order=metrics.loss+DESC")
    assert query.sort_state(("metric", "loss")) == "descending"
    assert "order=metrics.loss+ASC" in (query.sort_url(("metric", "loss")) or "")
    assert "order=params.%60batch+size%60+ASC" in (query.sort_url(("param", "batch size")) or "")
    assert query.sort_url(None) is None
    assert identifier("tag", "mlflow.source.name") == "tags.mlflow.source.name"
    assert identifier("metric", "val/loss") == "metrics.`val/loss`"


def test_pinned_columns_come_first_and_group_the_header() -> None:
    keys = RunKeys(["m1", "m2", "m3", "m4"], ["p1", "p2", "p3"], ["t1"])
    query, _ = parse("pin=p:p3")
    columns = shown_columns(query, keys, models=False)
    assert [c.id for c in columns] == [
        "p:p3", "a:created", "a:duration", "a:status", "a:user", "a:source", "m:m1", "m:m2", "m:m3", "p:p1", "p:p2"
    ]  # fmt: skip
    groups = [(g.label, g.span) for g in header_groups(columns, query.pins)]
    assert groups == [("Pinned", 1), ("", 5), ("Metrics", 3), ("Params", 2)]


def test_children_follow_their_parent_and_cycles_do_not_lose_runs() -> None:
    runs = [run("c1", "p"), run("x"), run("p"), run("c2", "p"), run("g", "c2"), run("o", "elsewhere")]
    rows = nest(runs)
    assert [(r.run_id, r.depth, r.children) for r in rows] == [
        ("x", 0, 0), ("p", 0, 2), ("c1", 1, 0), ("c2", 1, 1), ("g", 2, 0), ("o", 0, 0)
    ]  # fmt: skip
    assert rows[-1].parent_elsewhere == "elsewhere"
    fold(rows, ["c2"])
    assert [r.run_id for r in rows if r.hidden] == ["g"]
    fold(rows, ["p"])
    assert [r.run_id for r in rows if r.hidden] == ["c1", "c2", "g"]
    fold(rows, [])
    assert not any(r.hidden for r in rows)
    cycle = nest([run("a", "b"), run("b", "a"), run("self", "self")])
    assert sorted(r.run_id for r in cycle) == ["a", "b", "self"]


def test_a_header_key_splits_once_between_words_nearest_its_middle() -> None:
    assert two_lines("training_accuracy_score") == "<span>training_</span><wbr><span>accuracy_score</span>"
    assert two_lines("accuracy_score") == "<span>accuracy_</span><wbr><span>score</span>"
    assert two_lines("batch size") == "<span>batch </span><wbr><span>size</span>"
    assert two_lines("lr") == "<span>lr</span>"
    assert two_lines("trailing_") == "<span>trailing_</span>"
    assert two_lines("<b>_&x") == "<span>&lt;b&gt;_</span><wbr><span>&amp;x</span>"  # escaped
