"""The run page (`/runs/{run_id}`): overview, params and metrics, charts, artifacts; and its edits.

Three tabs, chosen by `?tab=` (overview, charts, artifacts), each rendered only when asked for, so a
page costs what its tab needs. Edits (name, description, tags) are CSRF-checked POSTs that redirect
(303) back to the page, as the experiments page's forms do. The description is markdown kept in
the run's `mlflow.note.content` tag, as MLflow keeps it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from modelyard.auth.identity import readable
from modelyard.entities import Run, RunTag, ViewType
from modelyard.exceptions import ModelyardException
from modelyard.store.auth.permissions import EXPERIMENT, REGISTERED_MODEL
from modelyard.ui import csrf
from modelyard.ui.access import can
from modelyard.ui.forms import FormFields, field
from modelyard.ui.markdown import render_markdown
from modelyard.ui.render import UiRoute, bad_request, page
from modelyard.ui.routes.experiments import tracking_store
from modelyard.ui.routes.run_artifacts import artifacts_context, run_logged_models
from modelyard.ui.routes.run_charts import charts_context

router = APIRouter(route_class=UiRoute, include_in_schema=False)
CsrfChecked = Depends(csrf.require_token)

NOTE_TAG = "mlflow.note.content"
PARENT_TAG = "mlflow.parentRunId"
TABS = ("overview", "charts", "artifacts")
#: Child runs listed on the page; the runs page filtered by parent has the rest.
CHILDREN_SHOWN = 50
SOURCE_TAGS = {
    "mlflow.source.name": "Source",
    "mlflow.source.type": "Source type",
    "mlflow.source.git.commit": "Git commit",
    "mlflow.source.git.branch": "Git branch",
    "mlflow.source.git.repoURL": "Git repository",
    "mlflow.user": "User",
}


@dataclass(frozen=True)
class Related:
    """The run's neighbours: parent, children, logged models and registered versions."""

    parent: Run | None
    parent_id: str
    children: list[Run]
    more_children: bool
    logged_models: list[Any]
    versions: list[Any]


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, tab: str = "overview") -> Response:
    if tab not in TABS:
        raise bad_request(f"tab must be one of {', '.join(TABS)}, not {tab!r}.")
    store = tracking_store(request)
    run = store.get_run(run_id)
    experiment = store.get_experiment(run.info.experiment_id)
    tags = dict(run.data.tags)
    context: dict[str, Any] = {
        "run": run,
        "experiment": experiment,
        "tab": tab,
        "run_name": run.info.run_name or run.info.run_id,
        "duration": _duration(run),
        "source": [(label, tags[key]) for key, label in SOURCE_TAGS.items() if tags.get(key)],
        "metric_keys": sorted(run.data.metrics),
    }
    if tab == "overview":
        context.update(_overview(request, run, tags))
    elif tab == "charts":
        context.update(charts_context(request, run))
    else:
        context.update(artifacts_context(request, run))
    return page(request, "run.html", **context)


def _overview(request: Request, run: Run, tags: dict[str, str]) -> dict[str, Any]:
    return {
        "description": tags.get(NOTE_TAG, ""),
        "description_html": render_markdown(tags.get(NOTE_TAG, "")),
        "user_tags": sorted((k, v) for k, v in tags.items() if not k.startswith("mlflow.")),
        "system_tags": sorted((k, v) for k, v in tags.items() if k.startswith("mlflow.") and k != NOTE_TAG),
        "params": sorted(run.data.params.items()),
        "metrics": sorted(((m.key, m) for m in run.data.metric_objects), key=lambda item: item[0]),
        "datasets": [_dataset(item) for item in run.inputs.dataset_inputs],
        "related": _related(request, run, tags),
    }


def _related(request: Request, run: Run, tags: dict[str, str]) -> Related:
    store = tracking_store(request)
    run_id = run.info.run_id  # the stored id: safe inside a filter string
    parent_id = tags.get(PARENT_TAG, "")
    parent = None
    if parent_id:
        try:
            parent = store.get_run(parent_id)
        except ModelyardException:
            parent = None
        if parent is not None and not can(request, EXPERIMENT, parent.info.experiment_id, "read"):
            parent = None  # a parent in an experiment the caller may not read: its id only
    children = store.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{run_id}'",
        run_view_type=ViewType.ACTIVE_ONLY,
        max_results=CHILDREN_SHOWN,
        order_by=["attributes.start_time DESC"],
    )
    # Registered from this run: by run id, or by the `models:/<id>` source of one of its logged models
    # (MLflow 3 registers those without a run id). Ids come from the database: safe inside quotes.
    logged_models = run_logged_models(request, run)
    filter_string = f"run_id = '{run_id}'"
    if logged_models:
        sources = ", ".join(f"'models:/{m.model_id}'" for m in logged_models)
        filter_string += f" OR source_path IN ({sources})"
    versions = request.app.state.registry_store.search_model_versions(
        filter_string=filter_string, max_results=100, visible=readable(request, REGISTERED_MODEL)
    )
    return Related(
        parent=parent,
        parent_id=parent_id,
        children=list(children),
        more_children=children.token is not None,
        logged_models=logged_models,
        versions=sorted(versions, key=lambda v: (v.name, int(v.version))),
    )


def _dataset(item: dict[str, Any]) -> dict[str, str]:
    dataset = item.get("dataset") or {}
    context = next(
        (t.get("value", "") for t in item.get("tags") or [] if t.get("key") == "mlflow.data.context"), ""
    )
    return {
        "name": str(dataset.get("name", "")),
        "digest": str(dataset.get("digest", "")),
        "source_type": str(dataset.get("source_type", "")),
        "source": str(dataset.get("source", "")),
        "context": str(context),
        "profile": str(dataset.get("profile", "")),
    }


def _duration(run: Run) -> int | None:
    start, end = run.info.start_time, run.info.end_time
    if not start:
        return None
    return (end or int(time.time() * 1000)) - start


# --- edits ------------------------------------------------------------------------------------------
def _back(run_id: str, anchor: str = "") -> Response:
    return RedirectResponse(f"/runs/{run_id}" + (f"#{anchor}" if anchor else ""), status_code=303)


@router.post("/runs/{run_id}/rename", dependencies=[CsrfChecked])
def rename_run(request: Request, run_id: str, form: FormFields) -> Response:
    tracking_store(request).update_run_info(run_id, run_name=field(form, "name"))
    return _back(run_id)


@router.post("/runs/{run_id}/description", dependencies=[CsrfChecked])
def set_description(request: Request, run_id: str, form: FormFields) -> Response:
    """An empty description removes the tag (as clearing it in MLflow's UI does)."""
    store = tracking_store(request)
    text = form.get("description", "").replace("\r\n", "\n").strip()
    if text:
        store.set_tag(run_id, RunTag(NOTE_TAG, text))
    elif NOTE_TAG in store.get_run(run_id).data.tags:
        store.delete_tag(run_id, NOTE_TAG)
    return _back(run_id, "description")


@router.post("/runs/{run_id}/tags", dependencies=[CsrfChecked])
def set_tag(request: Request, run_id: str, form: FormFields) -> Response:
    """Add a tag, or change one's value (the key is the tag's identity)."""
    key = field(form, "key")
    if key.startswith("mlflow."):
        raise bad_request(
            "Tags starting with 'mlflow.' are set by MLflow; edit the name or description instead."
        )
    tracking_store(request).set_tag(run_id, RunTag(key, form.get("value", "")))
    return _back(run_id, "tags")


@router.post("/runs/{run_id}/tags/delete", dependencies=[CsrfChecked])
def delete_tag(request: Request, run_id: str, form: FormFields) -> Response:
    tracking_store(request).delete_tag(run_id, field(form, "key"))
    return _back(run_id, "tags")
