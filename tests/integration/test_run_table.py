"""The runs table's store functions on SQLite and PostgreSQL: the true total of a search (it must
agree with paging through the search), an experiment's keys (newest first) and run summaries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text as sa_text

from modelyard import errors
from modelyard.entities import Metric, Param, RunTag, ViewType
from modelyard.exceptions import ModelyardException
from modelyard.store.sql import migrate
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.tracking.run_table import RunTotal, count_runs, experiment_keys, run_summaries
from modelyard.store.tracking.sql_store import SqlTrackingStore


@pytest.fixture
def store(db_uri: str, tmp_path: Path) -> Iterator[SqlTrackingStore]:
    migrate.upgrade(db_uri)
    engine = create_engine_for(db_uri)
    yield SqlTrackingStore(engine, str(tmp_path / "artifacts"))
    engine.dispose()


def _all_pages(store: SqlTrackingStore, experiment_id: str, filter_string: str, view: int) -> list[str]:
    ids: list[str] = []
    token = None
    while True:
        page = store.search_runs([experiment_id], filter_string, view, 7, None, token)
        ids += [run.info.run_id for run in page]
        token = page.token
        if not token:
            return ids


def test_count_agrees_with_paging_for_and_or_and_parentheses(store: SqlTrackingStore) -> None:
    experiment_id = store.create_experiment("counted")
    other = store.create_experiment("other")
    store.create_run(other, "bob", 1)  # another experiment's run is never counted
    for i in range(40):
        run = store.create_run(experiment_id, "alice", 1000 + i)
        store.log_batch(
            run.info.run_id,
            metrics=[Metric("loss", i / 40, 1)],
            params=[Param("optimizer", ("adam", "sgd")[i % 2])],
            tags=[RunTag("team", f"t{i % 3}")] if i % 5 else [],
        )
        if i % 10 == 9:
            store.delete_run(run.info.run_id)
    filters = [
        "",
        "metrics.loss < 0.25",
        "metrics.loss < 0.25 OR params.optimizer = 'sgd'",
        "(metrics.loss < 0.25 OR tags.team = 't1') AND params.optimizer = 'adam'",
        "tags.team IS NULL",
        "attributes.status = 'RUNNING' AND metrics.loss >= 0.5",
    ]
    for view in (ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL):
        for text in filters:
            expected = len(_all_pages(store, experiment_id, text, view))
            assert count_runs(store.engine, [experiment_id], text, view) == RunTotal(expected), (text, view)
    assert count_runs(store.engine, [experiment_id], "", ViewType.ACTIVE_ONLY) == RunTotal(36)
    assert count_runs(store.engine, [experiment_id], "", ViewType.DELETED_ONLY) == RunTotal(4)
    assert count_runs(store.engine, [], "", ViewType.ALL) == RunTotal(0)


@pytest.mark.postgres
def test_totals_of_large_experiments_are_estimates_and_say_so(
    postgres_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over EXACT_VIEW_LIMIT runs, a filtered total is the share of the newest SAMPLE_RUNS runs that
    match (when SAMPLE_MATCHES do), the unfiltered one the planner's estimate; a rare filter is counted."""
    from modelyard.store.tracking import run_table

    migrate.upgrade(postgres_uri)
    engine = create_engine_for(postgres_uri)
    try:
        store = SqlTrackingStore(engine, str(tmp_path / "artifacts"))
        experiment_id = store.create_experiment("estimated")
        for i in range(60):
            store.log_batch(
                store.create_run(experiment_id, "u", i).info.run_id, params=[Param("p", str(i % 3))]
            )
        with engine.begin() as conn:
            conn.execute(sa_text("ANALYZE"))
        assert count_runs(engine, [experiment_id], "params.p = '1'", ViewType.ACTIVE_ONLY) == RunTotal(20)
        monkeypatch.setattr(run_table, "EXACT_VIEW_LIMIT", 10)
        monkeypatch.setattr(run_table, "SAMPLE_RUNS", 30)
        monkeypatch.setattr(run_table, "SAMPLE_MATCHES", 5)
        # The newest 30 runs (start times 59..30): 10 have p = '1', scaled to the 60 runs of the view.
        sampled = count_runs(engine, [experiment_id], "params.p = '1'", ViewType.ACTIVE_ONLY)
        assert sampled == RunTotal(20, exact=False, sampled=10, sample=30), sampled
        everything = count_runs(engine, [experiment_id], "", ViewType.ACTIVE_ONLY)
        assert not everything.exact and 30 <= everything.value <= 120, everything
        assert count_runs(engine, [experiment_id], "params.p = 'none'", ViewType.ACTIVE_ONLY) == RunTotal(0)
        rare = count_runs(
            engine, [experiment_id], "params.p = '2' AND attributes.start_time < 9", ViewType.ACTIVE_ONLY
        )
        assert rare == RunTotal(3), rare  # 2 in the sample, under SAMPLE_MATCHES: counted
        # Every lifecycle stage: the newest 30 of both stages' runs (the 6 deleted among them, merged).
        for run_id in [r.info.run_id for r in store.search_runs([experiment_id], max_results=60)][:12:2]:
            store.delete_run(run_id)
        all_stages = count_runs(engine, [experiment_id], "params.p = '1'", ViewType.ALL)
        assert all_stages == RunTotal(20, exact=False, sampled=10, sample=30), all_stages
        assert RunTotal(987_654, exact=False).shown == 990_000 and RunTotal(987_654).shown == 987_654
    finally:
        engine.dispose()


def test_count_refuses_a_bad_filter_like_the_search(store: SqlTrackingStore) -> None:
    experiment_id = store.create_experiment("bad")
    with pytest.raises(ModelyardException) as info:
        count_runs(store.engine, [experiment_id], "metrics.loss <", ViewType.ACTIVE_ONLY)
    assert info.value.error_code == errors.INVALID_PARAMETER_VALUE
    assert "Invalid filter" in info.value.message


def test_experiment_keys_newest_first_from_the_newest_runs(store: SqlTrackingStore) -> None:
    experiment_id = store.create_experiment("keys")
    old = store.create_run(experiment_id, "alice", 1000).info.run_id
    store.log_batch(old, [Metric("old_metric", 1, 1)], [Param("old_param", "1")], [RunTag("old_tag", "x")])
    new = store.create_run(experiment_id, "alice", 2000).info.run_id
    store.log_batch(new, [Metric("b_new", 1, 1), Metric("a_new", 1, 1)], [Param("new_param", "2")])
    deleted = store.create_run(experiment_id, "alice", 3000).info.run_id
    store.log_batch(deleted, [Metric("gone", 1, 1)])
    store.delete_run(deleted)

    keys = experiment_keys(store.engine, experiment_id)
    # Newest run's keys first (ties by name), then the older run's.
    assert keys.metrics == ["a_new", "b_new", "old_metric"]
    assert keys.params == ["new_param", "old_param"]
    assert "old_tag" in keys.tags
    # Only the newest run when asked for one.
    assert experiment_keys(store.engine, experiment_id, recent_runs=1).metrics == ["a_new", "b_new"]
    assert experiment_keys(store.engine, experiment_id, ViewType.DELETED_ONLY).metrics == ["gone"]
    assert experiment_keys(store.engine, "not-an-id").metrics == []


def test_run_summaries_name_experiment_and_stage(store: SqlTrackingStore) -> None:
    experiment_id = store.create_experiment("summaries")
    run = store.create_run(experiment_id, "alice", 1000, run_name="first")
    store.delete_run(run.info.run_id)
    found = run_summaries(store.engine, [run.info.run_id, "0" * 32, ""])
    assert list(found) == [run.info.run_id]
    summary = found[run.info.run_id]
    assert (summary.name, summary.experiment_id, summary.lifecycle_stage) == (
        "first",
        experiment_id,
        "deleted",
    )
