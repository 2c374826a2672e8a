"""Import a bundle (see `export`) into a stack, preserving what can be preserved, idempotently.

Kept: experiment and run names, run start/end times, status, user, params, tags, every metric point
(value, timestamp, step), dataset inputs, artifacts, parent/child links (remapped), registered
models with descriptions, tags, versions (their files, stage, description, tags, lineage to the
imported run) and aliases. Ids are new: `<bundle>/mapping-<target>.json` maps old ids to new
(beside a `.tar`; `--mapping` for a bundle read from stdin or S3). Where a bundle can be read from
(a folder, a `.tar`, stdin, S3) is `bundle_io`'s business.

Idempotent: every imported run carries `modelyard.import.source_run` (its id in the source) and, once
all its data is in, `modelyard.import.complete`; every imported version carries
`modelyard.import.source_version`. A re-import skips what is complete and redoes a run an interrupted
import left half-written (the half-written run is deleted).

Fast: runs go to a modelyard server in batches (`POST /api/2.0/modelyard/runs/import`, up to
`BATCH_RUNS` runs or `BATCH_POINTS` metric points per request, each batch all or nothing), complete
unless they still need their artifacts or dataset inputs, which follow run by run. A target without
that endpoint (an MLflow server) gets the runs one by one through MLflow's API.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from modelyard.entities import Metric, Param
from modelyard.entities.lifecycle import ViewType
from modelyard.exceptions import ModelyardException
from modelyard.lifecycle import bundle_io, run_folders
from modelyard.lifecycle.export import FORMAT

SOURCE_RUN_TAG = "modelyard.import.source_run"
COMPLETE_TAG = "modelyard.import.complete"
SOURCE_VERSION_TAG = "modelyard.import.source_version"
PARENT_TAG = "mlflow.parentRunId"
HOLDER_EXPERIMENT = "modelyard-imported-models"
METRICS_PER_BATCH = 1000
#: One bulk import request: at most this many runs and metric points (the server takes 1,000 / 200,000).
BATCH_RUNS = 500
BATCH_POINTS = 100_000
#: Bulk requests on their way at once (the tracking service has several workers).
IN_FLIGHT = 2

Progress = Callable[[str], None]
_POINT_FIELDS = {"key", "value", "timestamp", "step"}


def import_bundle(
    bundle: str, tracking_uri: str, progress: Progress = lambda line: None, mapping_file: str | None = None
) -> dict[str, Any]:
    """Load the bundle (see `bundle_io`) into the stack at `tracking_uri`; returns the id mapping,
    also written to `mapping_file` (by default beside a local bundle)."""
    from modelyard.client import Client

    client = Client(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    with bundle_io.opened(bundle) as root:  # unpacked whole (and checked) before anything is imported
        manifest = bundle_io.manifest(root, bundle)
        if manifest.get("format") != FORMAT:
            raise ModelyardException.invalid_parameter(f"{bundle} is not a modelyard bundle.")
        mapping: dict[str, Any] = {"source": manifest.get("source"), "experiments": {}, "runs": {}, "models": {}}
        relink: dict[str, str] = {}
        for folder in sorted((root / "experiments").glob("*")) if (root / "experiments").is_dir() else []:
            relink.update(_import_experiment(client, folder, mapping, progress))
        _relink_parents(client, mapping, relink)
        for folder in sorted((root / "models").glob("*"), key=lambda p: int(p.name)) if (root / "models").is_dir() else []:
            _import_model(client, folder, mapping, manifest.get("source", ""), progress)
    mapping_path = mapping_file or _mapping_beside(bundle, tracking_uri)
    if mapping_path:
        Path(mapping_path).write_text(json.dumps(mapping, indent=1, sort_keys=True))
    return mapping


def _mapping_beside(bundle: str, tracking_uri: str) -> str | None:
    """`<bundle>/mapping-<target>.json`, `<name>.mapping-<target>.json` beside a `.tar`; None for a
    bundle from stdin or S3 (it is written only where `--mapping` says)."""
    if bundle == bundle_io.STDIO or bundle_io.is_s3(bundle):
        return None
    target = hashlib.sha256(tracking_uri.encode()).hexdigest()[:10]
    if bundle_io.is_tar(bundle):
        return f"{bundle[:-4]}.mapping-{target}.json"
    return str(Path(bundle) / f"mapping-{target}.json")


def _import_experiment(client: Any, folder: Path, mapping: dict[str, Any], progress: Progress) -> dict[str, str]:
    """Import the experiment's runs; returns the child runs whose parent was not imported before them
    (new id -> the parent's source id), for `_relink_parents`."""
    meta = json.loads((folder / "experiment.json").read_text())
    existing = client.get_experiment_by_name(meta["name"])
    if existing is not None:
        experiment_id = existing.experiment_id
        if existing.lifecycle_stage != "active":
            client.restore_experiment(experiment_id)
    else:
        experiment_id = client.create_experiment(meta["name"], tags=meta.get("tags") or None)
    mapping["experiments"][folder.name] = experiment_id
    done = _imported_runs(client, experiment_id)
    # By name: the same order as comparing the paths, which cost ~10 us a run under pathlib.
    runs = sorted((folder / "runs").iterdir(), key=lambda p: p.name) if (folder / "runs").is_dir() else []
    todo = []
    for run_folder in runs:
        source_id = run_folder.name
        if source_id in done:
            run_id, complete = done[source_id]
            if complete:
                mapping["runs"][source_id] = run_id
                continue
            client.delete_run(run_id)  # half-written by an interrupted import: start it again
        todo.append(run_folder)
    batch = _Batch(client, experiment_id, mapping)
    try:
        for count, read in enumerate(run_folders.read_folders(todo), 1):
            batch.add(read)
            if count % 1000 == 0 or count == len(todo):
                batch.flush()
                progress(f"experiment {meta['name']}: {count}/{len(todo)} runs sent")
    finally:
        batch.drain()
    return batch.relink


class _Batch:
    """Runs waiting for one bulk import request; runs the target cannot take in bulk go one by one.

    The first request goes alone (it tells whether the target has bulk import at all); after it, up to
    `IN_FLIGHT` requests are on their way while the next batch is read from disk, so the server's
    workers, its database and this process work at the same time. Each batch is its own transaction
    of new runs, so their order does not matter; a run's results (id mapping, files, completion) are
    handled here, in the caller's thread."""

    def __init__(self, client: Any, experiment_id: str, mapping: dict[str, Any]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.client, self.experiment_id, self.mapping = client, experiment_id, mapping
        self.items: list[tuple[Path, dict[str, Any], dict[str, Any]]] = []
        self.points = 0
        self.bulk: bool | None = None  # unknown until the first request answers
        self.relink: dict[str, str] = {}
        self.pool = ThreadPoolExecutor(IN_FLIGHT)
        self.pending: deque[tuple[Future[list[str] | None], list[tuple[Path, dict[str, Any], dict[str, Any]]]]] = deque()

    def _one_by_one(self, folder: Path, data: dict[str, Any]) -> None:
        run_id = import_run(self.client, self.experiment_id, folder, {})
        self.mapping["runs"][folder.name] = run_id
        if data["tags"].get(PARENT_TAG):
            self.relink[run_id] = data["tags"][PARENT_TAG]

    def add(self, read: run_folders.ReadFolder) -> None:
        """A run's folder, as read."""
        folder, data = read.path, read.run
        metrics = _points(read.metrics)
        if self.bulk is False or len(metrics) > BATCH_POINTS:
            self._one_by_one(folder, data)
            return
        if self.items and (len(self.items) >= BATCH_RUNS or self.points + len(metrics) > BATCH_POINTS):
            self.flush()
        self.items.append((folder, data, _bulk_item(read, metrics, self.mapping["runs"])))
        self.points += len(metrics)

    def flush(self) -> None:
        """Send the waiting runs (the first time, and wait for the answer)."""
        if not self.items:
            return
        from modelyard.client.run_import import import_runs

        items, self.items, self.points = self.items, [], 0
        payload = [item for _, _, item in items]
        if self.bulk is None:
            self._done(items, import_runs(self.client.store, self.experiment_id, payload))
            return
        self.pending.append((self.pool.submit(import_runs, self.client.store, self.experiment_id, payload), items))
        while len(self.pending) >= IN_FLIGHT:
            future, sent = self.pending.popleft()
            self._done(sent, future.result())

    def drain(self) -> None:
        self.flush()
        try:
            while self.pending:
                future, sent = self.pending.popleft()
                self._done(sent, future.result())
        finally:
            self.pool.shutdown(wait=True)

    def _done(self, items: list[tuple[Path, dict[str, Any], dict[str, Any]]], ids: list[str] | None) -> None:
        if ids is None:  # no bulk import on this target: run by run from now on
            self.bulk = False
            for folder, data, _ in items:
                self._one_by_one(folder, data)
            return
        self.bulk = True
        for (folder, data, item), run_id in zip(items, ids, strict=True):
            self.mapping["runs"][folder.name] = run_id
            tags = {t["key"]: t["value"] for t in item["tags"]}
            if tags.get(PARENT_TAG) and tags[PARENT_TAG] == data["tags"].get(PARENT_TAG):
                self.relink[run_id] = tags[PARENT_TAG]  # still the source's id: its parent came later
            if COMPLETE_TAG not in tags:
                _finish(self.client, run_id, folder, data)


def _points(text: str) -> list[dict[str, Any]]:
    """metrics.jsonl's points, parsed as one JSON array (a parse per line cost more than the rest);
    the lines joined by one replace, or one by one when some are blank."""
    try:
        return list(json.loads("[" + text.strip().replace("\n", ",") + "]"))
    except ValueError:  # blank lines among them
        return list(json.loads("[" + ",".join(line for line in text.split("\n") if line.strip()) + "]"))


def _lines(path: Path) -> Iterator[str]:
    if path.is_file():
        with open(path, encoding="utf-8") as lines:
            yield from (line for line in lines if line.strip())


def _bulk_item(read: run_folders.ReadFolder, metrics: list[dict[str, Any]], imported: dict[str, str]) -> dict[str, Any]:
    """The bulk endpoint's run: complete at once unless artifacts or dataset inputs must follow."""
    data = read.run
    info = data["info"]
    tags = {k: v for k, v in data["tags"].items() if k != COMPLETE_TAG}
    tags[SOURCE_RUN_TAG] = read.path.name
    if info.get("user_id"):
        tags.setdefault("mlflow.user", info["user_id"])
    if tags.get(PARENT_TAG) in imported:  # the parent came first: point at its new id now
        tags[PARENT_TAG] = imported[tags[PARENT_TAG]]
    if not data.get("dataset_inputs") and not read.has_artifacts:
        tags[COMPLETE_TAG] = "true"
    return {
        "run_name": info.get("run_name") or tags.get("mlflow.runName") or read.path.name,
        "user_id": info.get("user_id") or "",
        "start_time": info.get("start_time"),
        "end_time": info.get("end_time"),
        "status": info.get("status") or "FINISHED",
        "lifecycle_stage": info.get("lifecycle_stage") or "active",
        "params": [{"key": k, "value": v} for k, v in data["params"].items()],
        "tags": [{"key": k, "value": v} for k, v in tags.items()],
        "metrics": _bulk_metrics(read.metrics, metrics),
    }  # fmt: skip


def _bulk_metrics(text: str, metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points as the endpoint takes them: a point with just the four fields as it is (what the
    export writes), others cut to them; non-finite values spelled as strings (only a text that has
    "NaN" or "Infinity" in it can hold one)."""
    if "NaN" in text or "Infinity" in text:
        return [{"key": m["key"], "value": _json_value(m["value"]), "timestamp": m["timestamp"], "step": m.get("step", 0)}
                for m in metrics]  # fmt: skip
    return [m if m.keys() == _POINT_FIELDS else
            {"key": m["key"], "value": m["value"], "timestamp": m["timestamp"], "step": m.get("step", 0)}
            for m in metrics]  # fmt: skip


def _json_value(value: Any) -> Any:
    """A metric value as MLflow's JSON spells it: a non-finite float as "NaN" / "Infinity" /
    "-Infinity" (a bundle written from float values holds bare NaN, which the request's strict JSON
    encoder refuses)."""
    if type(value) is not float or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _finish(client: Any, run_id: str, folder: Path, data: dict[str, Any]) -> None:
    """A bulk-imported run's dataset inputs and files, then its completion tag."""
    deleted = data["info"].get("lifecycle_stage") == "deleted"
    if deleted:
        client.restore_run(run_id)
    if data.get("dataset_inputs"):
        client.log_inputs(run_id, data["dataset_inputs"])
    if (folder / "artifacts").is_dir():
        client.log_artifacts(run_id, str(folder / "artifacts"))
    client.set_tag(run_id, COMPLETE_TAG, "true", synchronous=True)
    if deleted:
        client.delete_run(run_id)


def _imported_runs(client: Any, experiment_id: str) -> dict[str, tuple[str, bool]]:
    """source run id -> (run id here, complete?) for runs an earlier import made in this experiment."""
    out: dict[str, tuple[str, bool]] = {}
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], f"tags.`{SOURCE_RUN_TAG}` != ''", run_view_type=ViewType.ALL,
            max_results=1000, page_token=token,
        )  # fmt: skip
        for run in page:
            out[run.data.tags[SOURCE_RUN_TAG]] = (run.info.run_id, run.data.tags.get(COMPLETE_TAG) == "true")
        token = page.token
        if not token:
            return out


def import_run(client: Any, experiment_id: str, folder: Path, done: dict[str, tuple[str, bool]]) -> str:
    source_id = folder.name
    if source_id in done:
        run_id, complete = done[source_id]
        if complete:
            return run_id
        client.delete_run(run_id)  # half-written by an interrupted import: start it again
    data = json.loads((folder / "run.json").read_text())
    info = data["info"]
    tags = {k: v for k, v in data["tags"].items() if k != COMPLETE_TAG}
    tags[SOURCE_RUN_TAG] = source_id
    if info.get("user_id"):
        tags.setdefault("mlflow.user", info["user_id"])
    run = client.create_run(experiment_id, start_time=info.get("start_time"), tags=tags, run_name=info.get("run_name"))
    run_id = run.info.run_id
    params = [Param(k, v) for k, v in data["params"].items()]
    client.log_batch(run_id, params=params, synchronous=True)
    for batch in _metric_batches(folder / "metrics.jsonl"):
        client.log_batch(run_id, metrics=batch, synchronous=True)
    if data.get("dataset_inputs"):
        client.log_inputs(run_id, data["dataset_inputs"])
    if (folder / "artifacts").is_dir():
        client.log_artifacts(run_id, str(folder / "artifacts"))
    if info.get("status") not in (None, "RUNNING", "SCHEDULED"):
        client.set_terminated(run_id, info["status"], info.get("end_time"))
    client.set_tag(run_id, COMPLETE_TAG, "true", synchronous=True)
    if info.get("lifecycle_stage") == "deleted":
        client.delete_run(run_id)
    return run_id


def _metric_batches(path: Path) -> Iterator[list[Metric]]:
    batch: list[Metric] = []
    for line in _lines(path):
        batch.append(Metric.from_dict(json.loads(line)))
        if len(batch) == METRICS_PER_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _relink_parents(client: Any, mapping: dict[str, Any], relink: dict[str, str]) -> None:
    """Child runs point at their parent's new id (the bundle's tags hold the old one; a child
    imported after its parent got the new id at once, so only the others are set here)."""
    runs: dict[str, str] = mapping["runs"]
    for child, parent in relink.items():
        if parent in runs and runs[parent] != parent:
            client.set_tag(child, PARENT_TAG, runs[parent], synchronous=True)


def _import_model(client: Any, folder: Path, mapping: dict[str, Any], source: str, progress: Progress) -> None:
    meta = json.loads((folder / "model.json").read_text())
    name = meta["name"]
    try:
        client.get_registered_model(name)
    except ModelyardException:
        client.create_registered_model(name, tags=meta.get("tags") or None, description=meta.get("description"))
    existing = _imported_versions(client, name)
    versions: dict[str, str] = mapping["models"].setdefault(name, {})
    for item in meta["versions"]:
        marker = f"{source}#{name}/{item['version']}"
        if marker in existing:
            versions[item["version"]] = existing[marker]
            continue
        run_id = mapping["runs"].get(item.get("run_id") or "") or _holder_run(client)
        files = folder / "versions" / item["version"] / "files" / item.get("files", ".")
        path = f"registered-models/{name}/v{item['version']}"
        client.log_artifacts(run_id, str(files), path)
        created = client.create_model_version(
            name, f"runs:/{run_id}/{path}", run_id=run_id,
            tags={**(item.get("tags") or {}), SOURCE_VERSION_TAG: marker}, description=item.get("description"),
        )  # fmt: skip
        versions[item["version"]] = str(created.version)
        if item.get("stage") not in (None, "None"):
            client.transition_model_version_stage(name, created.version, item["stage"])
        progress(f"model {name}: version {item['version']} imported as {created.version}")
    for alias, old in (meta.get("aliases") or {}).items():
        if old in versions:
            client.set_registered_model_alias(name, alias, versions[old])


def _imported_versions(client: Any, name: str) -> dict[str, str]:
    escaped = name.replace("'", "\\'")
    out, token = {}, None
    while True:
        page = client.search_model_versions(f"name = '{escaped}'", max_results=1000, page_token=token)
        for v in page:
            if SOURCE_VERSION_TAG in v.tags:
                out[v.tags[SOURCE_VERSION_TAG]] = str(v.version)
        token = getattr(page, "token", None)
        if not token:
            return out


def _holder_run(client: Any) -> str:
    """A run to hold the files of versions whose source run was not exported."""
    experiment = client.get_experiment_by_name(HOLDER_EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(HOLDER_EXPERIMENT)
    found = client.search_runs([experiment_id], f"tags.`{SOURCE_RUN_TAG}` = 'holder'", max_results=1)
    if found:
        return str(found[0].info.run_id)
    run = client.create_run(experiment_id, tags={SOURCE_RUN_TAG: "holder"}, run_name="imported-model-files")
    return str(run.info.run_id)

