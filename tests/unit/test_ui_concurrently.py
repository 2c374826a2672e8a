"""`ui.concurrency.concurrently`: the version page's independent file reads wait together."""

from __future__ import annotations

import contextvars
import threading
import time

import pytest

from modelyard.ui.concurrency import concurrently


def test_results_come_back_in_call_order() -> None:
    assert concurrently(lambda: 1, lambda: "two", lambda: [3]) == [1, "two", [3]]


def test_calls_overlap() -> None:
    # Each call waits for the other to start: sequential calls would time out on the barrier.
    barrier = threading.Barrier(2, timeout=5)
    assert concurrently(lambda: barrier.wait() >= 0, lambda: barrier.wait() >= 0) == [True, True]


def test_an_exception_is_raised_after_every_call_finished() -> None:
    finished: list[str] = []

    def slow() -> str:
        time.sleep(0.05)
        finished.append("slow")
        return "slow"

    def failing() -> str:
        raise KeyError("missing")

    with pytest.raises(KeyError):
        concurrently(failing, slow)
    assert finished == ["slow"]
    with pytest.raises(KeyError):
        concurrently(slow, failing)


def test_calls_see_the_callers_context() -> None:
    # The request's query budget lives in a context variable: a read on the pool must obey it too.
    budget: contextvars.ContextVar[str] = contextvars.ContextVar("budget", default="none")
    budget.set("this request's")
    assert concurrently(budget.get, budget.get) == ["this request's", "this request's"]


def test_a_call_on_the_pool_runs_its_own_calls_in_turn() -> None:
    # A pool thread waiting on the pool's queue could wait forever; nested calls run inline instead.
    def name() -> str:
        return threading.current_thread().name

    _, inner = concurrently(lambda: [], lambda: concurrently(name, name))
    assert inner[0].startswith("ui-reads") and inner[0] == inner[1]
