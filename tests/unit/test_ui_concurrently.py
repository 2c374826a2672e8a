"""`ui.artifact_access.concurrently`: the version page's independent file reads wait together."""

from __future__ import annotations

import threading
import time

import pytest

from modelyard.ui.artifact_access import concurrently


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
