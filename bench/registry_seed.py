"""Seed the same model registry into both databases with COPY (issue #16's size: 100 models x 50
versions, and one model with 1,000 history events), for the UI benchmark's registry pages.

Registered models, versions, tags and aliases are MLflow's tables on both sides (MLflow-only columns
with defaults, such as `workspace`, keep them; modelyard's `last_version` counter is set). modelyard
also gets the events its registry writes for such a history (`registry_events`: model created,
version created, and 1,000 alias moves on the measured model); MLflow keeps no history, so its side
gets the same final state without one. Every version points at one real model folder (an MLflow-
written sklearn model with a 10-column signature, uploaded through each side's artifacts API), so
both version pages can read its MLmodel.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.httpc import Conn, HttpError
from bench.seed import _required_extras, analyze
from bench.stack import BenchStack, Side
from bench.workloads.common import API, create_experiment, create_run, now_ms

ALIAS = "champion"


@dataclass(frozen=True)
class Registry:
    models: int = 100
    versions: int = 50
    #: Alias moves recorded on the measured model (modelyard's history).
    events: int = 1000

    @property
    def model_name(self) -> str:
        """The measured model (the middle one)."""
        return self.name(self.models // 2)

    @staticmethod
    def name(i: int) -> str:
        return f"ui-model-{i:04d}"


def _columns(cur: Any, table: str) -> set[str]:
    cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s", (table,))
    return {name for (name,) in cur.fetchall()}


def copy_dicts(conn: Any, table: str, rows: Iterable[dict[str, Any]]) -> None:
    """COPY rows given as dicts; keys the table lacks are dropped (MLflow has no `last_version`),
    NOT NULL columns without a default that no row names get a neutral value."""
    rows = list(rows)
    if not rows:
        return
    with conn.cursor() as cur:
        present = _columns(cur, table)
        names = [k for k in rows[0] if k in present]
        extras = _required_extras(cur, table, names)
        columns = ", ".join([*names, *(n for n, _ in extras)])
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[k] for k in names] + [v for _, v in extras])


def upload_model(side: Side, conn: Conn, model_dir: Path) -> tuple[str, str]:
    """A run holding the model folder under `model/`, uploaded through the side's artifacts API:
    (run id, the folder's `mlflow-artifacts:` URI)."""
    run_id = create_run(conn, create_experiment(conn, "ui-registry"))
    artifact_uri = conn.call("GET", f"{API}/runs/get?run_id={run_id}")["run"]["info"]["artifact_uri"]
    prefix = artifact_uri.removeprefix("mlflow-artifacts:").lstrip("/")
    with Conn(side.artifacts_url) as files:
        for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
            rel = path.relative_to(model_dir).as_posix()
            url = f"/api/2.0/mlflow-artifacts/artifacts/{quote(prefix)}/model/{quote(rel)}"
            status, body = files.request("PUT", url, path.read_bytes(), {"Content-Type": "application/octet-stream"})
            if status != 200:
                raise HttpError(status, body, f"PUT {url}")
    return run_id, f"{artifact_uri}/model"


def rows(registry: Registry, run_id: str, source: str, now: int, history: bool) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {
        "registered_models": [], "model_versions": [], "registered_model_tags": [],
        "registered_model_aliases": [], "registry_events": [],
    }  # fmt: skip
    events = out["registry_events"]

    def event(when: int, name: str, kind: str, version: int | None = None, subject: str | None = None, **details: Any) -> None:
        events.append({"event_time": when, "model_name": name, "version": version, "kind": kind, "subject": subject,
                       "endpoint": None, "actor": "bench", "details": json.dumps(details, separators=(",", ":"))})  # fmt: skip

    for m in range(registry.models):
        name = registry.name(m)
        created = now - (registry.models - m) * 600_000
        updated = created + registry.versions * 1000
        out["registered_models"].append({"name": name, "creation_time": created, "last_updated_time": updated,
                                         "description": f"Model {m}: predicts churn for segment {m % 7}.",
                                         "last_version": registry.versions})  # fmt: skip
        out["registered_model_tags"] += [{"name": name, "key": "team", "value": f"team-{m % 7}"},
                                         {"name": name, "key": "task", "value": "classification"}]  # fmt: skip
        out["registered_model_aliases"].append({"name": name, "alias": ALIAS, "version": registry.versions})
        event(created, name, "model_created")
        for v in range(1, registry.versions + 1):
            when = created + v * 1000
            stage = "Production" if v == registry.versions - 1 else "Staging" if v == registry.versions else "None"
            out["model_versions"].append({
                "name": name, "version": v, "creation_time": when, "last_updated_time": when,
                "description": f"v{v}", "user_id": "bench", "current_stage": stage, "source": source,
                "storage_location": source, "run_id": run_id, "run_link": "", "status": "READY",
                "status_message": None,
            })  # fmt: skip
            event(when, name, "version_created", v)
        event(updated, name, "alias_set", registry.versions, ALIAS)
    target = registry.model_name
    start = now - registry.events * 1000
    for i in range(registry.events):
        back = (registry.events - 1 - i) % 2  # back and forth between the two newest, ending on the newest
        event(start + i * 1000, target, "alias_set", registry.versions - back, ALIAS,
              from_version=registry.versions - 1 + back)  # fmt: skip
    if not history:
        out.pop("registry_events")
    return out


def seed_registry(stack: BenchStack, sides: list[Side], registry: Registry, model_dir: Path) -> None:
    """The same registry on both sides (each side's own run holds the model files)."""
    now = now_ms()
    for side in sides:
        with Conn(side.tracking_url) as conn:
            run_id, source = upload_model(side, conn, model_dir)
        tables = rows(registry, run_id, source, now, history=side.name == "modelyard")
        with stack.psql(side.database) as pg:
            for table, items in tables.items():
                copy_dicts(pg, table, items)
            pg.commit()
            analyze(pg)


#: The Deployments page's endpoints: one serving the measured model's newest version, one with a
#: canary (the version before, and the newest at weight 0.2).
ENDPOINTS = (("bench-churn", "replace", 1.0, 0), ("bench-canary", "replace", 1.0, 1), ("bench-canary", "add", 0.2, 0))


def deploy_endpoints(stack: BenchStack, side: Side, registry: Registry, model_dir: Path) -> None:
    """Real deploys to modelyard's endpoint service (three serving variants), recorded in its history
    through its REST API as `modelyard deploy` records them; the model files come from `model_dir`."""
    import os
    import shutil

    from modelyard.client import Client
    from modelyard.deploy import DeployOptions, SageMakerDeployer

    os.environ.setdefault("MODELYARD_S3_ENDPOINT_URL", stack.s3.endpoint)
    client = Client(tracking_uri=side.tracking_url)

    def fetch(uri: str, dst: Path) -> str:
        shutil.copytree(model_dir, dst)
        return str(dst)

    created: set[str] = set()
    for endpoint, mode, weight, back in ENDPOINTS:
        options = DeployOptions(region="us-east-1", endpoint_url=stack.endpoints_url, bucket="bench", mode=mode,
                                variant_weight=weight, timeout_seconds=300, poll_seconds=0.5)  # fmt: skip
        deployer = SageMakerDeployer(options, tracking_client=client, fetch_model=fetch)
        uri = f"models:/{registry.model_name}/{registry.versions - back}"
        if endpoint in created:
            deployer.update(endpoint, uri)
        else:
            deployer.create(endpoint, uri)
            created.add(endpoint)
