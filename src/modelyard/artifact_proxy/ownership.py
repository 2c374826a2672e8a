"""Run ownership of artifact paths: a write under `<experiment_id>/<run_id>/...` must name a run of
that experiment.

Proxied locations are `mlflow-artifacts:/<experiment_id>/<run_id>/artifacts/...`; without this check any
client could write into another experiment's run folder by editing the path. The check needs the
tracking database: the tracking app passes its store in single-process mode, the standalone artifacts
service opens one when `MODELYARD_BACKEND_STORE_URI` is set. Paths of another shape are not runs'.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from modelyard import errors
from modelyard.exceptions import ModelyardException

_RUN_ID = re.compile(r"[0-9a-f]{32}")

#: run id -> its experiment id, or None when there is no such run.
RunLookup = Callable[[str], str | None]


class RunOwnership:
    def __init__(self, lookup: RunLookup, cache_size: int = 65536) -> None:
        self._lookup = lookup
        # A run never moves between experiments, so known owners are kept; misses are not (the run
        # may be created a moment later).
        self._owners: dict[str, str] = {}
        self._cache_size = cache_size

    def owner(self, run_id: str) -> str | None:
        owner = self._owners.get(run_id)
        if owner is None:
            owner = self._lookup(run_id)
            if owner is not None:
                if len(self._owners) >= self._cache_size:
                    self._owners.clear()
                self._owners[run_id] = owner
        return owner

    def check_write(self, rel_path: str) -> None:
        parts = rel_path.split("/")
        if len(parts) < 2 or not parts[0].isdigit() or not _RUN_ID.fullmatch(parts[1]):
            return
        experiment_id, run_id = parts[0], parts[1]
        owner = self.owner(run_id)
        if owner != experiment_id:
            where = f"experiment {owner}" if owner is not None else "no experiment (unknown run)"
            raise ModelyardException(
                f"Run {run_id} belongs to {where}, not experiment {experiment_id}: refusing to write there.",
                errors.PERMISSION_DENIED,
            )


def store_lookup(store: object) -> RunLookup:
    """A lookup over a TrackingStore: `get_run_info` (the run's row alone) where the store has it,
    else `get_run`."""
    read = getattr(store, "get_run_info", None)

    def lookup(run_id: str) -> str | None:
        try:
            if read is not None:
                return str(read(run_id).experiment_id)
            return str(store.get_run(run_id).info.experiment_id)  # type: ignore[attr-defined]
        except ModelyardException as exc:
            if exc.error_code == errors.RESOURCE_DOES_NOT_EXIST:
                return None
            raise

    return lookup
