"""`--dist loadgroup` that works: the groups each pytest process computed, handed to xdist's scheduler.

pytest-xdist (3.8) tells its scheduler a test's `xdist_group` by appending `@group` to the test's node
id on the worker (`item._nodeid`); pytest 9 keeps the id elsewhere (`item.nodeid` reads `item._id`),
so the suffix never arrives and every test is scheduled on its own: a module's tests alternate between
the processes and its module-scoped fixtures (a browser, a server of the module's own) start over and
over. Here the workers write the groups to a file (they collect identically, so any one will do) and
the controller's scheduler reads it; an id that carries `@group` (an xdist that works) is split as
xdist splits it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

#: Where the workers leave {node id: group}; set by the controller before the workers start.
ENV = "MODELYARD_TEST_GROUPS"


def configure(config: pytest.Config) -> None:
    """On the controller of a `--dist loadgroup` run: choose the file (the workers inherit the variable)."""
    if hasattr(config, "workerinput") or config.getoption("dist", "no") != "loadgroup":
        return
    os.environ[ENV] = str(Path(tempfile.mkdtemp(prefix="modelyard-groups-")) / "groups.json")


def publish(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a worker: write each grouped test's group, whole or not at all (a rename)."""
    path = os.environ.get(ENV)
    if not path or not hasattr(config, "workerinput"):
        return
    groups: dict[str, str] = {}
    for item in items:
        marker = item.get_closest_marker("xdist_group")
        if marker is not None:
            groups[item.nodeid] = str(marker.args[0] if marker.args else marker.kwargs.get("name", "default"))
    partial = f"{path}.{os.getpid()}"
    Path(partial).write_text(json.dumps(groups))
    os.replace(partial, path)


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's loadgroup scheduler, reading each test's group from the workers' file (None: xdist's
    own choice, for any other `--dist`)."""
    if config.getoption("dist", "no") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class FileGroupScheduling(LoadGroupScheduling):  # type: ignore[misc]
        _groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self._groups is None:
                path = os.environ.get(ENV)
                self._groups = json.loads(Path(path).read_text()) if path and Path(path).exists() else {}
            group = self._groups.get(nodeid)
            return group if group is not None else str(super()._split_scope(nodeid))

    return FileGroupScheduling(config, log)
