"""`OrderedWorker` (client/async_logging.py): the one thread behind `synchronous=False` logging and
autologging's background plots. Calls run in submission order, `flush()` waits for those queued before
it, and a forked child gets a thread of its own (its parent's does not exist there). `Tasks`: calls on
kept shared threads, all waited for at the end of the `with` block."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from modelyard.client.async_logging import SHARED_THREADS, OrderedWorker, Tasks


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


def test_tasks_wait_for_all_their_calls_and_keep_their_threads() -> None:
    gate = threading.Event()
    done: list[int] = []
    with Tasks() as tasks:
        tasks.submit(gate.wait, 10)
        for index in range(3):
            tasks.submit(done.append, index)
        gate.set()
    assert sorted(done) == [0, 1, 2]  # the block's end waited for every call
    names: set[str] = set()
    for _ in range(40):  # one call at a time: kept threads take them (never more than the pool's)
        with Tasks() as tasks:
            tasks.submit(lambda: names.add(threading.current_thread().name))
    assert len(names) <= SHARED_THREADS
    assert all(name.startswith("modelyard-io") for name in names)


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_tasks_in_a_forked_child_get_threads_of_its_own() -> None:
    with Tasks() as tasks:
        tasks.submit(lambda: None)  # the parent's shared threads exist before the fork
    pid = os.fork()
    if pid == 0:
        try:
            with Tasks() as tasks:
                answer = tasks.submit(lambda: 42)
            code = 0 if answer.result(timeout=10) == 42 else 1
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
