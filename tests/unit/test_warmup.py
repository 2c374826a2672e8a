"""Deferred set-up shared by a service's workers: once one worker did it, the others do theirs."""

from __future__ import annotations

import asyncio
import logging
import os
import threading

import pytest

from modelyard.runtime.warmup import SharedFlag, warm_up_with_siblings


def test_the_flag_raised_in_a_forked_worker_is_seen_by_the_others() -> None:
    flag = SharedFlag()  # as the gunicorn master creates it, before forking
    assert not flag.is_set()
    pid = os.fork()
    if pid == 0:
        flag.set()
        os._exit(0)
    os.waitpid(pid, 0)
    assert flag.is_set()


class _Repo:
    """A repository whose deferred set-up is recorded (with the thread it ran in)."""

    def __init__(self, fail: bool = False) -> None:
        self.ready = False
        self.fail = fail
        self.threads: list[str] = []

    def needed(self) -> bool:
        return not self.ready

    def warm_up(self) -> None:
        self.threads.append(threading.current_thread().name)
        if self.fail:
            raise RuntimeError("no S3 today")
        self.ready = True


def test_a_worker_warms_up_in_a_thread_once_a_sibling_raised_the_flag() -> None:
    flag, repo = SharedFlag(), _Repo()

    async def main() -> None:
        task = asyncio.create_task(warm_up_with_siblings(repo.needed, repo.warm_up, flag, poll=0.01))
        await asyncio.sleep(0.05)
        assert repo.threads == [] and not task.done()  # nobody needed it yet: stays idle and small
        flag.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert repo.ready and len(repo.threads) == 1
    assert repo.threads[0] != threading.main_thread().name  # never on the event loop


def test_a_worker_that_did_the_set_up_for_a_request_raises_the_flag() -> None:
    flag, repo = SharedFlag(), _Repo()

    async def main() -> None:
        task = asyncio.create_task(warm_up_with_siblings(repo.needed, repo.warm_up, flag, poll=0.01))
        await asyncio.sleep(0.03)
        repo.ready = True  # a request built the S3 client
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert flag.is_set() and repo.threads == []


def test_a_failed_warm_up_is_logged_and_left_to_the_requests(caplog: pytest.LogCaptureFixture) -> None:
    flag, repo = SharedFlag(), _Repo(fail=True)
    flag.set()
    with caplog.at_level(logging.WARNING, logger="modelyard.runtime"):
        asyncio.run(warm_up_with_siblings(repo.needed, repo.warm_up, flag, poll=0.01))
    assert not repo.ready and len(repo.threads) == 1
    assert "no S3 today" in caplog.text
