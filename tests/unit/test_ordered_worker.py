"""`OrderedWorker` (client/async_logging.py): the one thread behind `synchronous=False` logging and
autologging's background plots. Calls run in submission order, `flush()` waits for those queued before
it, and a forked child gets a thread of its own (its parent's does not exist there). `in_order`: a few
calls in order on a thread of their own (autologging's requests during a fit), or here at shutdown."""

from __future__ import annotations

import concurrent.futures
import os
import sys
import threading

import pytest

from modelyard.client.async_logging import OrderedWorker, in_order


def test_calls_run_in_order_and_flush_waits_for_them() -> None:
    worker = OrderedWorker("test-ordered")
    gate = threading.Event()
    done: list[int] = []
    worker.submit(gate.wait, 10)
    for index in range(5):
        worker.submit(done.append, index)
    assert done == []  # all behind the gate
    gate.set()
    worker.flush()
    assert done == [0, 1, 2, 3, 4]


def test_flush_before_any_call_returns_at_once() -> None:
    OrderedWorker("test-idle").flush()


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_a_forked_child_runs_its_own_calls() -> None:
    worker = OrderedWorker("test-fork")
    worker.submit(lambda: None).result()  # the parent's thread exists before the fork
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 only if its call ran
        try:
            code = 0 if worker.submit(lambda: 42).result(timeout=10) == 42 else 1
            worker.flush()
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_in_order_runs_calls_one_after_the_other_on_one_new_thread() -> None:
    seen: list[tuple[str, str]] = []

    def step(name: str) -> str:
        seen.append((name, threading.current_thread().name))
        return name.upper()

    first, second = in_order("test-in-order", (step, "a"), (step, "b"))
    assert (first.result(timeout=10), second.result(timeout=10)) == ("A", "B")
    assert [name for name, _ in seen] == ["a", "b"]
    threads = {thread for _, thread in seen}
    assert len(threads) == 1 and threads.pop().startswith("test-in-order")


def test_in_order_runs_the_calls_here_once_no_thread_can_start(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    monkeypatch.setattr(concurrent.futures.ThreadPoolExecutor, "submit", refuse)

    def fails() -> None:
        raise ValueError("step failed")

    here, failed = in_order("test-in-order", (threading.current_thread,), (fails,))
    assert here.result() is threading.current_thread()
    with pytest.raises(ValueError, match="step failed"):
        failed.result()
