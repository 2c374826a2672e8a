"""Lazy set-up that a service's workers do together: once one worker needed it, the others prepare too.

Some set-up is deferred to the first request that needs it because it is heavy and not every
deployment uses it (the artifacts service's S3 client: ~38 MB and ~0.2-0.5 s for boto3 per worker).
Deferred per worker, though, every worker's first such request pays the delay, one at a time, as the
connections happen to land on them. `SIBLINGS_WARM` is a flag in memory shared by a gunicorn master's
workers (created when the master imports this module, before it forks them, as the load board in
`modelyard.runtime.balance` is): the first worker that did the set-up raises it, and every other worker,
which checks it a few times a second while it has not done the set-up itself, then does its own in the
background. An idle service never loads the heavy parts; a used one has them in every worker.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
from collections.abc import Callable

logger = logging.getLogger("modelyard.runtime")

#: How often a worker that has not done the set-up looks at the flag.
POLL_SECONDS = 0.25


class SharedFlag:
    """One byte of anonymous shared memory: set by any process forked after it was created, seen by all."""

    def __init__(self) -> None:
        self._page = mmap.mmap(-1, 1)  # MAP_SHARED | MAP_ANONYMOUS: shared across fork

    def set(self) -> None:
        self._page[0] = 1

    def is_set(self) -> bool:
        return self._page[0] == 1


#: Raised by the first worker of this gunicorn master that did its deferred set-up; see the module docstring.
SIBLINGS_WARM = SharedFlag()
#: The same for the web UI's lazy clients in the tracking service: the artifact store it reads model
#: files and previews from, and the SageMaker API of the Deployments pages (`modelyard.ui.warm_ups`).
UI_FILES_WARM = SharedFlag()
UI_SAGEMAKER_WARM = SharedFlag()
#: Raised by the first page any worker renders: then every worker compiles all the UI's templates.
UI_TEMPLATES_WARM = SharedFlag()


async def warm_up_with_siblings(
    needed: Callable[[], bool],
    warm_up: Callable[[], None],
    flag: SharedFlag = SIBLINGS_WARM,
    poll: float = POLL_SECONDS,
) -> None:
    """Run for a worker's life (a lifespan task): while `needed()` says the set-up is still to do, wait
    for a sibling to raise `flag`, then run the blocking `warm_up` in a thread. When this worker did the
    set-up itself (a request needed it), raise the flag for the others."""
    while needed():
        if flag.is_set():
            try:
                await asyncio.to_thread(warm_up)
            except Exception as exc:  # noqa: BLE001 - a request will report it as it would without this
                logger.warning("warm-up after a sibling worker's failed: %s", exc)
            return
        await asyncio.sleep(poll)
    flag.set()
