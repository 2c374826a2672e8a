"""Import a bundle (see `export`) into a stack, preserving what can be preserved, idempotently.

Kept: experiment and run names, run start/end times, status, user, params, tags, every metric point
(value, timestamp, step), dataset inputs, artifacts, parent/child links (remapped), registered
models with descriptions, tags, versions (their files, stage, description, tags, lineage to the
imported run) and aliases. Ids are new: `<bundle>/mapping-<target>.json` maps old ids to new.

Idempotent: every imported run carries `modelyard.import.source_run` (its id in the source) and, once
all its data is in, `modelyard.import.complete`; every imported version carries
`modelyard.import.source_version`. A re-import skips what is complete and redoes a run an interrupted
import left half-written (the half-written run is deleted).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelyard.entities import Metric, Param
from modelyard.entities.lifecycle import ViewType
from modelyard.exceptions import ModelyardException
from modelyard.lifecycle.export import FORMAT

SOURCE_RUN_TAG = "modelyard.import.source_run"
COMPLETE_TAG = "modelyard.import.complete"
SOURCE_VERSION_TAG = "modelyard.import.source_version"
PARENT_TAG = "mlflow.parentRunId"
HOLDER_EXPERIMENT = "modelyard-imported-models"
METRICS_PER_BATCH = 1000

Progress = Callable[[str], None]


@contextmanager
def opened(bundle: str) -> Iterator[Path]:
    """The bundle as a folder (a `.tar` is unpacked to a temporary one, refusing unsafe members)."""
    if bundle.endswith(".tar"):
        with tempfile.TemporaryDirectory(prefix="modelyard-import-") as tmp, tarfile.open(bundle) as tar:
            tar.extractall(tmp, filter="data")
            yield Path(tmp)
        return
    yield Path(bundle)


def import_bundle(bundle: str, tracking_uri: str, progress: Progress = lambda line: None) -> dict[str, Any]:
    """Load the bundle into the stack at `tracking_uri`; returns the id mapping (also written beside it)."""
    from modelyard.client import Client

    client = Client(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    with opened(bundle) as root:
        manifest = json.loads((root / "manifest.json").read_text())
        if manifest.get("format") != FORMAT:
            raise ModelyardException.invalid_parameter(f"{bundle} is not a modelyard bundle.")
        mapping: dict[str, Any] = {"source": manifest.get("source"), "experiments": {}, "runs": {}, "models": {}}
        for folder in sorted((root / "experiments").glob("*")) if (root / "experiments").is_dir() else []:
            _import_experiment(client, folder, mapping, progress)
        _relink_parents(client, mapping)
        for folder in sorted((root / "models").glob("*"), key=lambda p: int(p.name)) if (root / "models").is_dir() else []:
            _import_model(client, folder, mapping, manifest.get("source", ""), progress)
    target = hashlib.sha256(tracking_uri.encode()).hexdigest()[:10]
    out = Path(bundle[:-4] if bundle.endswith(".tar") else bundle)
    mapping_path = out.parent / f"{out.name}.mapping-{target}.json" if bundle.endswith(".tar") else out / f"mapping-{target}.json"
    mapping_path.write_text(json.dumps(mapping, indent=1, sort_keys=True))
    return mapping


def _import_experiment(client: Any, folder: Path, mapping: dict[str, Any], progress: Progress) -> None:
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
    runs = sorted((folder / "runs").glob("*")) if (folder / "runs").is_dir() else []
    for count, run_folder in enumerate(runs, 1):
        mapping["runs"][run_folder.name] = import_run(client, experiment_id, run_folder, done)
        if count % 100 == 0 or count == len(runs):
            progress(f"experiment {meta['name']}: {count}/{len(runs)} runs imported")


def _imported_runs(client: Any, experiment_id: str) -> dict[str, tuple[str, bool]]:
    """source run id -> (run id here, complete?) for runs an earlier import made in this experiment."""
    out: dict[str, tuple[str, bool]] = {}
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], f"tags.`{SOURCE_RUN_TAG}` != ''", run_view_type=ViewType.ACTIVE_ONLY,
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
    if info.get("lifecycle_stage") == "deleted":
        client.delete_run(run_id)
        return run_id
    client.set_tag(run_id, COMPLETE_TAG, "true", synchronous=True)
    return run_id


def _metric_batches(path: Path) -> Iterator[list[Metric]]:
    batch: list[Metric] = []
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            batch.append(Metric.from_dict(json.loads(line)))
            if len(batch) == METRICS_PER_BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def _relink_parents(client: Any, mapping: dict[str, Any]) -> None:
    """Child runs point at their parent's new id (the bundle's tags hold the old one)."""
    runs: dict[str, str] = mapping["runs"]
    for new_id in runs.values():
        parent = client.get_run(new_id).data.tags.get(PARENT_TAG)
        if parent in runs and runs[parent] != parent:
            client.set_tag(new_id, PARENT_TAG, runs[parent], synchronous=True)


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

