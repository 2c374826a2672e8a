"""Export experiments and registered models from any MLflow-API server (modelyard's or MLflow's) to a
self-contained bundle that `modelyard import` loads into another stack.

A bundle is a folder, or a `.tar` of one written as the export goes (`bundle_io`: a file, stdout, an
S3 object or an S3 prefix):

    manifest.json                           format, version, source URI, what it holds
    experiments/<id>/experiment.json        name, tags
    experiments/<id>/runs/<run>/run.json    info, params, tags, dataset inputs
    experiments/<id>/runs/<run>/metrics.jsonl   every metric point, one JSON object per line
    experiments/<id>/runs/<run>/artifacts/  the run's files
    models/<n>/model.json                   name, description, tags, aliases, versions
    models/<n>/versions/<v>/files/          each version's files (from its download URI)

Everything goes through the REST API with modelyard's client, so a team can migrate off an MLflow
server as well as promote between two modelyard stacks. A modelyard server streams an experiment's
runs with every metric point in one answer (`GET /api/2.0/modelyard/runs/export`, JSON lines read as
they arrive and written out run by run). Elsewhere (an MLflow server) runs are read a page at a time
through runs/search, so memory follows a page, not the experiment; per page, metric histories come
100 runs at a time per key (`get-history-bulk`, which MLflow's UI uses too; a run whose history may
have been cut at its 25,000-point cap is read alone, page by page). Either way, which runs have files
at all comes from one listing of the experiment's artifact folder, so a run without files costs no
request of its own.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from modelyard.entities.lifecycle import ViewType
from modelyard.lifecycle import bundle_io, run_folders

FORMAT = "modelyard-bundle"
FORMAT_VERSION = 1
RUNS_PAGE = 500
#: get-history-bulk's limits (MLflow's and modelyard's): run ids per request, points per answer.
BULK_RUNS = 100
BULK_POINTS = 25_000
#: get-history-bulk requests in flight at once (the server answers each with one statement).
READERS = 4
#: Threads writing a page's run folders (file writes release the GIL).
WRITERS = 4
#: Finished runs waiting in the staging folder of a streamed bundle (a tar, S3), at most: the export
#: waits for the oldest (its files still downloading) beyond this, so disk use stays bounded.
STAGED_RUNS = 500

Progress = Callable[[str], None]


def export_bundle(
    tracking_uri: str,
    output: str,
    experiments: Sequence[str] = (),
    models: Sequence[str] = (),
    progress: Progress = lambda line: None,
    versions: dict[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Write the named experiments (by name) and registered models to `output` (a folder, a path
    ending in `.tar`, `-` for stdout, or an s3:// URI: see `bundle_io`); `versions` limits a model
    to some of its versions. Returns the manifest."""
    from modelyard.client import Client

    with bundle_io.writing(output) as bundle:  # first: a bad output fails before any work
        client = Client(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        return _export_folder(client, bundle, experiments, models, versions or {}, progress)


def _export_folder(
    client: Any,
    bundle: bundle_io.BundleWriter,
    experiment_names: Sequence[str],
    model_names: Sequence[str],
    versions: dict[str, Sequence[str]],
    progress: Progress,
) -> dict[str, Any]:
    root = bundle.root
    exported_runs = 0
    experiment_ids = []
    for name in experiment_names:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            from modelyard.exceptions import ModelyardException

            raise ModelyardException.not_found(f"No experiment named {name!r} on {client.tracking_uri}.")
        experiment_ids.append(experiment.experiment_id)
        where = f"experiments/{experiment.experiment_id}"
        _write_json(root / where / "experiment.json", {"name": experiment.name, "tags": experiment.tags})
        bundle.done(f"{where}/experiment.json")
        finished = partial(_run_done, bundle, where) if bundle.staged else None
        add = partial(_run_file, bundle, where) if bundle.staged else None
        exported_runs += _export_runs(client, experiment.experiment_id, root / where / "runs", progress, finished, add)
    for index, name in enumerate(model_names):
        _export_model(client, name, root / "models" / str(index), versions.get(name), progress)
        bundle.done(f"models/{index}")
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "source": client.tracking_uri,
        "created": int(time.time() * 1000),
        "experiments": experiment_ids,
        "models": list(model_names),
        "runs": exported_runs,
    }
    _write_json(root / bundle_io.MANIFEST, manifest)
    bundle.done(bundle_io.MANIFEST)  # last: a bundle without it is incomplete
    return manifest


def _run_done(bundle: bundle_io.BundleWriter, experiment_folder: str, run_id: str) -> None:
    bundle.done(f"{experiment_folder}/runs/{run_id}")


def _run_file(bundle: bundle_io.BundleWriter, experiment_folder: str, path: str, data: bytes) -> None:
    bundle.add(f"{experiment_folder}/runs/{path}", data)


def export_version(tracking_uri: str, name: str, version: str, output: str) -> dict[str, Any]:
    """One registered version with its source run (in its experiment, alone): what `promote` moves."""
    from modelyard.client import Client

    client = Client(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    root = Path(output)
    found = client.get_model_version(name, version)
    experiment_ids = []
    if found.run_id:
        run = client.get_run(found.run_id)
        experiment = client.get_experiment(run.info.experiment_id)
        folder = root / "experiments" / experiment.experiment_id
        _write_json(folder / "experiment.json", {"name": experiment.name, "tags": experiment.tags})
        export_run(client, run, folder / "runs" / run.info.run_id)
        experiment_ids.append(experiment.experiment_id)
    _export_model(client, name, root / "models" / "0", [str(version)], lambda line: None)
    manifest = {
        "format": FORMAT, "version": FORMAT_VERSION, "source": client.tracking_uri,
        "created": int(time.time() * 1000), "experiments": experiment_ids, "models": [name], "runs": len(experiment_ids),
    }  # fmt: skip
    _write_json(root / "manifest.json", manifest)
    return manifest


@dataclass(frozen=True)
class _RunDoc:
    """What a run's folder is written from: its run.json document, and what the bulk reads need."""

    run_id: str
    artifact_uri: str
    metric_keys: tuple[str, ...]
    document: dict[str, Any]

    @classmethod
    def of_entity(cls, run: Any) -> _RunDoc:
        document = {
            "info": run.info.to_dict(),
            "params": dict(run.data.params),
            "tags": dict(run.data.tags),
            "dataset_inputs": list(run.inputs.dataset_inputs),
        }
        return cls(run.info.run_id, str(run.info.artifact_uri or ""), tuple(run.data.metrics), document)

    @classmethod
    def of_json(cls, run: dict[str, Any]) -> _RunDoc:
        """From the REST answer as it came (a Run entity per run cost ~1 ms of a page's export)."""
        info, data = run["info"], run.get("data", {})
        document = {
            "info": info,
            "params": {p["key"]: p.get("value", "") for p in data.get("params", [])},
            "tags": {t["key"]: t.get("value", "") for t in data.get("tags", [])},
            "dataset_inputs": list(run.get("inputs", {}).get("dataset_inputs", [])),
        }
        keys = tuple(dict.fromkeys(m["key"] for m in data.get("metrics", [])))
        return cls(info["run_id"], str(info.get("artifact_uri") or ""), keys, document)


def _pages(client: Any, experiment_id: str) -> Iterator[list[_RunDoc]]:
    """Every run of the experiment (deleted ones too), a page at a time."""
    from modelyard.client import http
    from modelyard.client.rest_store import RestTrackingStore

    store, token = client.store, None
    while True:
        if isinstance(store, RestTrackingStore):
            body = {"experiment_ids": [experiment_id], "run_view_type": "ALL", "max_results": RUNS_PAGE, "page_token": token}
            answer = http.call(store.base_url, "POST", "/api/2.0/mlflow/runs/search", json_body=body, config=store._config)
            yield [_RunDoc.of_json(r) for r in answer.get("runs", [])]
            token = answer.get("next_page_token") or None
        else:
            page = client.search_runs([experiment_id], run_view_type=ViewType.ALL, max_results=RUNS_PAGE, page_token=token)
            yield [_RunDoc.of_entity(r) for r in page]
            token = page.token
        if not token:
            return


#: Told the id of each run whose folder is complete (a streamed bundle packs it then).
Finished = Callable[[str], None]
#: Puts a file (its path under the experiment's runs folder, its bytes) straight into a streamed bundle.
AddFile = Callable[[str, bytes], None]


def _export_runs(
    client: Any, experiment_id: str, folder: Path, progress: Progress, finished: Finished | None = None,
    add: AddFile | None = None,
) -> int:  # fmt: skip
    from modelyard.client.run_export import export_lines

    with_files = _runs_with_files(client, experiment_id)
    lines = export_lines(client.store, experiment_id)
    if lines is None:
        return _export_pages(client, experiment_id, folder, with_files, progress, finished)
    return _export_stream(client, lines, folder, with_files, lambda n: progress(f"experiment {experiment_id}: {n} runs exported"),
                          finished, add)  # fmt: skip


class _MemoryRuns:
    """`run_folders.FolderWriter`'s part for a streamed bundle: a run's run.json and metrics.jsonl go
    into the bundle from memory when its lines have ended (the next run begins, or `close`), never
    through the disk (a file written, read back and removed per run was ~1 ms of CPU a run); its
    artifacts, if any, are still downloaded to the staging folder. Memory: the run being read."""

    def __init__(self, add: AddFile) -> None:
        self.add = add
        self.current: tuple[str, str, list[str]] | None = None
        self.written: Future[None] = Future()
        self.written.set_result(None)

    def write(self, run_id: str, run: str, metrics: str) -> Future[None]:
        self._flush()
        self.current = (run_id, run, [metrics])
        return self.written

    def append(self, run_id: str, metrics: str) -> None:
        assert self.current is not None and self.current[0] == run_id
        self.current[2].append(metrics)

    def _flush(self) -> None:
        if self.current is not None:
            run_id, run, metrics = self.current
            self.current = None
            self.add(f"{run_id}/{run_folders.RUN_FILE}", run.encode())
            self.add(f"{run_id}/{run_folders.METRICS_FILE}", "".join(metrics).encode())

    def close(self) -> None:
        self._flush()


def _export_stream(
    client: Any,
    lines: Iterator[dict[str, Any]],
    folder: Path,
    with_files: set[str] | None,
    progress: Callable[[int], None],
    finished: Finished | None = None,
    add: AddFile | None = None,
) -> int:
    """Each run's folder written as its lines arrive (a run's points may span several lines), by
    `run_folders`' threads (or, with `add`, its two files handed to `add` from memory);
    files are downloaded by `WRITERS` threads meanwhile. With `finished`, a run whose folder and
    files are written, and whose lines have ended (the next run began), is handed to it, oldest
    first (with `add`: only runs with files, whose folder holds just those)."""
    from concurrent.futures import ThreadPoolExecutor

    count = 0
    run_id = ""
    writer = run_folders.FolderWriter(folder) if add is None else _MemoryRuns(add)
    downloads: list[Future[None]] = []
    staged: deque[tuple[str, list[Future[None]]]] = deque()  # only with `finished`
    with ThreadPoolExecutor(WRITERS) as pool:
        try:
            for line in lines:
                if "run" not in line:
                    if line.get("metrics"):
                        writer.append(run_id, run_folders.metric_lines(line["metrics"]))
                    continue
                run = _RunDoc.of_json(line["run"])
                run_id = run.run_id
                written = writer.write(run_id, run_folders.run_text(run.document), run_folders.metric_lines(line.get("metrics") or ()))
                files = None if with_files is None or not _under_experiment(run) else run_id in with_files
                if files is not False:
                    downloads.append(pool.submit(_download_files, client, run_id, folder / run_id))
                if finished is not None and (add is None or files is not False):
                    staged.append((run_id, [written, downloads[-1]] if files is not False else [written]))
                    _pack_finished(staged, finished, keep_last=True)
                count += 1
                if count % RUNS_PAGE == 0:
                    progress(count)
        finally:
            writer.close()
        for done in downloads:
            done.result()
    if finished is not None:
        _pack_finished(staged, finished, keep_last=False)
    progress(count)
    return count


def _pack_finished(staged: deque[tuple[str, list[Future[None]]]], finished: Finished, keep_last: bool) -> None:
    """Hand over the oldest staged runs that are complete, waiting for them beyond `STAGED_RUNS`;
    `keep_last`: the newest run may still get points."""
    last = 1 if keep_last else 0
    while len(staged) > last:
        run_id, futures = staged[0]
        if len(staged) <= STAGED_RUNS and keep_last and not all(f.done() for f in futures):
            return
        for future in futures:
            future.result()
        staged.popleft()
        finished(run_id)


def _export_pages(
    client: Any,
    experiment_id: str,
    folder: Path,
    with_files: set[str] | None,
    progress: Progress,
    finished: Finished | None = None,
) -> int:
    """Page by page through MLflow's API; a page's files are written by `WRITERS` threads while the
    next page and its histories are read, so the server's work and the disk's overlap (at most two
    pages in memory). With `finished`, a page's runs are handed to it once all are written."""
    from concurrent.futures import ThreadPoolExecutor

    count = 0
    writing: list[Future[None]] = []
    written: list[str] = []
    with ThreadPoolExecutor(WRITERS) as writers:
        for page in _pages(client, experiment_id):
            histories = _histories(client, page)
            for done in writing:
                done.result()  # the page before: written (or its error raised) before going on
            for run_id in written if finished is not None else ():
                finished(run_id)
            writing, written = [], [run.run_id for run in page]
            for run in page:
                files = None if with_files is None or not _under_experiment(run) else run.run_id in with_files
                writing.append(writers.submit(_write_run, client, run, folder / run.run_id, histories.get(run.run_id), files))
            count += len(page)
            progress(f"experiment {experiment_id}: {count} runs exported")
        for done in writing:
            done.result()
        for run_id in written if finished is not None else ():
            finished(run_id)
    return count


def export_run(client: Any, run: Any, folder: Path) -> None:
    """One run's folder (`promote`'s single run); histories and files are asked for this run alone."""
    _write_run(client, _RunDoc.of_entity(run), folder, None, None)


def _write_run(
    client: Any, run: _RunDoc, folder: Path, histories: dict[str, list[Any]] | None, has_files: bool | None
) -> None:
    """`histories` (key -> points) and `has_files` come from the page's bulk reads when the server
    answered them; what is missing is asked for this run alone."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / run_folders.RUN_FILE).write_text(run_folders.run_text(run.document), encoding="utf-8")
    with open(folder / run_folders.METRICS_FILE, "w", encoding="utf-8") as out:
        for key in sorted(run.metric_keys):
            points = (histories or {}).get(key)
            if points is None:
                points = client.get_metric_history(run.run_id, key)
            out.write(run_folders.metric_lines(p if isinstance(p, dict) else p.to_dict() for p in points))
    if has_files is not False:
        _download_files(client, run.run_id, folder)


def _download_files(client: Any, run_id: str, folder: Path) -> None:
    if client.list_artifacts(run_id):
        client.download_artifacts(run_id, "", str(folder / "artifacts"))


def _under_experiment(run: _RunDoc) -> bool:
    """The run's files are `<experiment folder>/<run id>/artifacts` (what servers give new runs)."""
    return run.artifact_uri.rstrip("/").endswith(f"/{run.run_id}/artifacts")


def _runs_with_files(client: Any, experiment_id: str) -> set[str] | None:
    """Ids of the runs with a folder in the experiment's artifact folder, from one listing; None when
    it cannot be listed (every run is then listed alone)."""
    from modelyard.client.artifacts import get_artifact_repository
    from modelyard.exceptions import ModelyardException

    location = client.get_experiment(experiment_id).artifact_location
    try:
        listing = get_artifact_repository(location, client.tracking_uri).list_artifacts(None)
    except (ModelyardException, OSError, ValueError):
        return None
    return {entry.path.rstrip("/").rsplit("/", 1)[-1] for entry in listing if entry.is_dir}


def _histories(client: Any, runs: list[_RunDoc]) -> dict[str, dict[str, list[Any]]]:
    """run id -> key -> every point, for a page of runs, through get-history-bulk (`READERS` requests
    at a time); {} when the tracking URI is not a server that has it (each history is then read alone)."""
    from concurrent.futures import ThreadPoolExecutor

    from modelyard.client.rest_store import RestTrackingStore

    store = client.store
    if not isinstance(store, RestTrackingStore):
        return {}
    by_key: dict[str, list[str]] = {}
    for run in runs:
        for key in run.metric_keys:
            by_key.setdefault(key, []).append(run.run_id)
    jobs = [(key, ids[i : i + BULK_RUNS]) for key, ids in by_key.items() for i in range(0, len(ids), BULK_RUNS)]
    with ThreadPoolExecutor(READERS) as pool:
        answers = list(pool.map(lambda job: _history_bulk(store, *job), jobs))
    if any(answer is None for answer in answers):
        return {}
    out: dict[str, dict[str, list[Any]]] = {}
    for (key, chunk), answer in zip(jobs, answers, strict=True):
        assert answer is not None
        if len(answer) == BULK_POINTS:
            continue  # an older modelyard cut the whole answer there: each of these runs is read alone
        points: dict[str, list[Any]] = {}
        for item in answer:  # as the server wrote them (MLflow's metric JSON), no entity round trip
            points.setdefault(item.pop("run_id"), []).append(item)
        for run_id in chunk:
            got = points.get(run_id, [])
            if got and len(got) < BULK_POINTS:  # a run at the cap may have more: read alone
                out.setdefault(run_id, {})[key] = got
    return out


def _history_bulk(store: Any, key: str, run_ids: list[str]) -> list[dict[str, Any]] | None:
    from modelyard.client import http
    from modelyard.exceptions import ModelyardException

    params = {"run_id": run_ids, "metric_key": key, "max_results": BULK_POINTS}
    try:
        answer = http.call(store.base_url, "GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk", params=params,
                           config=store._config)  # fmt: skip
    except ModelyardException as exc:
        if http.no_such_route(exc):
            return None
        raise
    return list(answer.get("metrics", []))


def _export_model(client: Any, name: str, folder: Path, only: Sequence[str] | None, progress: Progress) -> None:
    model = client.get_registered_model(name)
    escaped = name.replace("'", "\\'")
    found, token = [], None
    while True:
        page = client.search_model_versions(f"name = '{escaped}'", max_results=1000, page_token=token)
        found.extend(page)
        token = getattr(page, "token", None)
        if not token:
            break
    chosen = [v for v in found if only is None or str(v.version) in {str(o) for o in only}]
    chosen.sort(key=lambda v: int(v.version))
    from modelyard.client.artifacts import download_artifacts

    for version in chosen:
        uri = client.get_model_version_download_uri(name, version.version)
        target = folder / "versions" / str(version.version) / "files"
        target.mkdir(parents=True, exist_ok=True)
        download_artifacts(artifact_uri=uri, dst_path=str(target), tracking_uri=client.tracking_uri)
        progress(f"model {name} version {version.version} exported")
    _write_json(
        folder / "model.json",
        {
            "name": model.name,
            "description": model.description,
            "tags": model.tags,
            "aliases": {a.alias: str(a.version) for a in model.aliases},
            "versions": [
                {
                    "version": str(v.version),
                    "stage": v.current_stage,
                    "description": v.description,
                    "tags": v.tags,
                    "run_id": v.run_id,
                    "source": v.source,
                    "creation_timestamp": v.creation_timestamp,
                    # the download placed the files either in files/ or in files/<last segment>/
                    "files": _files_root(folder / "versions" / str(v.version) / "files"),
                }
                for v in chosen
            ],
        },
    )


def _files_root(folder: Path) -> str:
    """The folder holding the MLmodel file, relative to the version's `files/`."""
    for dirpath, _dirs, names in os.walk(folder):
        if "MLmodel" in names:
            return os.path.relpath(dirpath, folder).replace(os.sep, "/")
    return "."


def _write_json(path: Path, data: Any) -> None:
    """Indented: the files a person may open (runs' are `run_folders`' one-liners)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
