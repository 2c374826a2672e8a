"""The registry in the browser: the models list (`/models`), a model (`/model?name=`) with its
versions, aliases, stages, tags and the timeline of its history with one-click rollback.

Model names may hold any character, `/` included, so a model is addressed by query string, never by
path segment. Every form posts back and redirects (303) to the model page; each write goes through
the registry store, which records the history event in the same transaction.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from modelyard.auth.identity import readable, record_creator, record_delete, record_rename, request_user
from modelyard.client import registry_history
from modelyard.deploy.sagemaker import DELETED, DEPLOY_TAG_PREFIX, REPLACED
from modelyard.entities import ModelVersionStage
from modelyard.exceptions import ModelyardException
from modelyard.protocol import text_parsing
from modelyard.store.auth.permissions import EXPERIMENT, REGISTERED_MODEL
from modelyard.store.registry import events, history
from modelyard.store.registry.base import RegistryStore
from modelyard.store.registry.summaries import versions_of
from modelyard.ui import csrf
from modelyard.ui.access import can
from modelyard.ui.forms import FormFields, field
from modelyard.ui.grants_section import permissions_section
from modelyard.ui.render import UiRoute, bad_request, page
from modelyard.ui.search_box import name_filter

router = APIRouter(route_class=UiRoute, include_in_schema=False)
CsrfChecked = Depends(csrf.require_token)
PAGE_SIZE = 100
#: Events a timeline shows per page ("Older events" pages on): a long one costs the browser more than the server.
TIMELINE_SIZE = 50
#: A version's own history on its page (few events: one page).
VERSION_HISTORY_SIZE = 200
STAGES = ModelVersionStage.ALL


async def ui_actor(request: Request) -> None:
    """History records the browser's user like an API client's (see `registry_actor`)."""
    events.current_actor.set(request_user(request))


Acting = Depends(ui_actor)


def registry_store(request: Request) -> RegistryStore:
    return request.app.state.registry_store  # type: ignore[no-any-return]


def model_url(name: str, **extra: str) -> str:
    return "/model?" + urlencode({"name": name, **extra})



@router.get("/models")
def models_page(request: Request, q: str = "", filter: str = "", page_token: str | None = None) -> Response:
    """`q` is a name search; `filter` the registry's filter grammar, as in the API (`tags.team = 'ml'`)."""
    store = registry_store(request)
    filter_string = filter.strip() or name_filter(q)
    found = store.search_registered_models(
        filter_string=filter_string,
        max_results=PAGE_SIZE,
        order_by=["last_updated_timestamp DESC"],
        page_token=page_token or None,
        visible=readable(request, REGISTERED_MODEL),
    )
    next_url = (
        "/models?" + urlencode({"q": q, "filter": filter, "page_token": found.token}) if found.token else None
    )
    return page(request, "models.html", section="models", models=list(found), q=q, filter=filter, next_url=next_url)


@router.get("/model")
def model_page(request: Request, name: str = "", page_token: str | None = None) -> Response:
    if not name:
        raise bad_request("Which model? The page needs ?name=.")
    store = registry_store(request)
    model = store.get_registered_model(name)
    versions = versions_of(store.engine, name)  # type: ignore[attr-defined]
    timeline = history.list_events(store.engine, name, max_results=TIMELINE_SIZE, page_token=page_token or None)  # type: ignore[attr-defined]
    deployed = {v.version: deploy_statuses(v.tags) for v in versions}
    return page(
        request,
        "model.html",
        section="models",
        model=model,
        versions=versions,
        deployed=deployed,
        off_endpoint=OFF_ENDPOINT,
        timeline=list(timeline),
        older_url=model_url(name, page_token=timeline.token) if timeline.token else None,
        stages=STAGES,
        model_url=model_url,
        rollbackable=_rollbackable(list(timeline)),
        permissions=permissions_section(request, REGISTERED_MODEL, model.name),
    )


#: Deploy tag statuses of a version that served on the endpoint and no longer does ("was on").
OFF_ENDPOINT = (REPLACED, DELETED)


def deploy_statuses(tags: dict[str, str]) -> dict[str, str]:
    """Endpoint -> the status the version's deploy tag for it records (`SageMakerDeployer._record`,
    `record_off_endpoint`): "InService", "Failed", "Replaced", "Deleted"; "" when unreadable. Pages
    show a version as deployed from these alone (asking SageMaker is for fragments)."""
    out: dict[str, str] = {}
    for key, raw in tags.items():
        if key.startswith(DEPLOY_TAG_PREFIX):
            try:
                status = text_parsing.loads_json(raw).get("status")
            except (ValueError, AttributeError):
                status = None
            out[key[len(DEPLOY_TAG_PREFIX) :]] = status if isinstance(status, str) else ""
    return out


def _rollbackable(timeline: list[events.RegistryEvent]) -> set[int]:
    """The events a rollback would undo: the newest move of each alias and into each stage."""
    seen: set[tuple[str, str]] = set()
    out: set[int] = set()
    for event in timeline:  # newest first
        if event.kind in (events.ALIAS_SET, events.ALIAS_DELETED) and event.subject:
            key = ("alias", event.subject)
        elif event.kind == events.STAGE_TRANSITIONED and event.subject and "archived_by" not in event.details:
            key = ("stage", event.subject)
        else:
            continue
        if key not in seen:
            seen.add(key)
            out.add(event.event_id)
    return out


# --- actions -------------------------------------------------------------------------------------
Actions = [CsrfChecked, Acting]


@router.post("/models", dependencies=Actions)
def create_model(request: Request, form: FormFields) -> Response:
    name = field(form, "name")
    registry_store(request).create_registered_model(name, description=form.get("description") or None)
    record_creator(request, REGISTERED_MODEL, name)
    return RedirectResponse(model_url(name), status_code=303)


@router.post("/model/rename", dependencies=Actions)
def rename_model(request: Request, form: FormFields) -> Response:
    renamed = registry_store(request).rename_registered_model(field(form, "name"), field(form, "new_name"))
    record_rename(request, REGISTERED_MODEL, field(form, "name"), renamed.name)
    return RedirectResponse(model_url(renamed.name), status_code=303)


@router.post("/model/delete", dependencies=Actions)
def delete_model(request: Request, form: FormFields) -> Response:
    """Once the model's name has been typed out (the page's confirmation)."""
    name = field(form, "name")
    if form.get("confirm_name", "").strip() != name:
        raise ModelyardException.invalid_parameter(f"To delete the model, type its name ({name}) exactly.")
    registry_store(request).delete_registered_model(name, purge_history=bool(form.get("purge_history")))
    record_delete(request, REGISTERED_MODEL, name)
    return RedirectResponse("/models", status_code=303)


@router.post("/model/description", dependencies=Actions)
def set_description(request: Request, form: FormFields) -> Response:
    name = field(form, "name")
    text = form.get("description", "")
    store = registry_store(request)
    if form.get("version"):
        store.update_model_version(name, form["version"], text or None)
        return RedirectResponse("/model-version?" + urlencode({"name": name, "version": form["version"]}), 303)
    store.update_registered_model(name, text or None)
    return _back_to_model(name)


@router.post("/model/tag", dependencies=Actions)
def set_tag(request: Request, form: FormFields) -> Response:
    name, key = field(form, "name"), field(form, "key")
    store = registry_store(request)
    if form.get("delete"):
        store.delete_registered_model_tag(name, key)
    else:
        store.set_registered_model_tag(name, key, form.get("value", ""))
    return _back_to_model(name)


@router.get("/model/version-actions")
def version_action(request: Request, name: str = "", version: str = "", kind: str = "") -> Response:
    """One version's stage or alias form: the model page fetches it when the row's action opens
    (htmx); without JavaScript the row's link opens it as a page."""
    if not name or not version or kind not in ("stage", "alias"):
        raise bad_request("Which form? It needs ?name=&version=&kind=stage|alias.")
    found = registry_store(request).get_model_version(name, version)
    template = "_version_action.html" if request.headers.get("hx-request") else "version_action.html"
    return page(request, template, section="models", version=found, kind=kind, stages=STAGES)


@router.post("/model/alias", dependencies=Actions)
def set_alias(request: Request, form: FormFields) -> Response:
    name, alias = field(form, "name"), field(form, "alias")
    store = registry_store(request)
    if form.get("delete"):
        store.delete_registered_model_alias(name, alias)
    else:
        store.set_registered_model_alias(name, alias, field(form, "version"))
    return _back_to_model(name)


@router.post("/model/stage", dependencies=Actions)
def transition_stage(request: Request, form: FormFields) -> Response:
    name = field(form, "name")
    registry_store(request).transition_model_version_stage(
        name, field(form, "version"), field(form, "stage"), archive_existing_versions=bool(form.get("archive_existing"))
    )
    return _back_to_model(name)


@router.post("/model/rollback", dependencies=Actions)
def rollback(request: Request, form: FormFields) -> Response:
    name = field(form, "name")
    alias, stage = form.get("alias") or None, form.get("stage") or None
    if (alias is None) == (stage is None):
        raise ModelyardException.invalid_parameter("Roll back either an alias or a stage.")
    store = registry_store(request)
    changed = history.rollback(store.engine, name, alias=alias, stage=stage)  # type: ignore[attr-defined]
    endpoints = registry_history.deployed_endpoints(store, name, alias, stage)
    if not endpoints:
        return _back_to_model(name)
    # As `modelyard models rollback`: offer to redeploy the endpoints that were deployed from it.
    uri = f"models:/{name}@{alias}" if alias else f"models:/{name}/{stage}"
    return page(
        request, "rollback_redeploy.html", section="models", name=name, what=f"@{alias}" if alias else stage,
        uri=uri, endpoints=endpoints, changed=changed, model_url=model_url,
    )  # fmt: skip


def _back_to_model(name: str) -> Response:
    return RedirectResponse(model_url(name), status_code=303)


@router.get("/model-version")
def version_page(request: Request, name: str = "", version: str = "") -> Response:
    """A version: its run (and the run's datasets), tags, description, stage and aliases, the
    endpoints its deployments went to, and its own history."""
    if not name or not version:
        raise bad_request("Which version? The page needs ?name=&version=.")
    store = registry_store(request)
    found = store.get_model_version(name, version)
    run = None
    run_hidden = False
    if found.run_id:
        try:
            run = request.app.state.tracking_store.get_run(found.run_id)
        except ModelyardException:  # the source run lives elsewhere or was removed: show the id alone
            run = None
        if run is not None and not can(request, EXPERIMENT, run.info.experiment_id, "read"):
            run, run_hidden = None, True  # READ on the model is not READ on the experiment its run is in
    own_history = list(history.list_events(store.engine, name, version=found.version, max_results=VERSION_HISTORY_SIZE))  # type: ignore[attr-defined]
    files = version_files(request, found)
    endpoints = history.deployed_endpoints(store.engine, name, found.version)  # type: ignore[attr-defined]
    statuses = deploy_statuses(found.tags)
    serving = sorted(e for e, status in statuses.items() if status == "InService")
    # Where it served before: endpoints a deploy of it succeeded on that its tag does not say it serves.
    served = sorted({*endpoints, *(e for e, status in statuses.items() if status in OFF_ENDPOINT)} - set(serving))
    return page(
        request,
        "model_version.html",
        section="models",
        version=found,
        run=run,
        run_hidden=run_hidden,
        datasets=[d.get("dataset", {}) for d in (run.inputs.dataset_inputs if run else [])],
        serving=serving,
        served=served,
        timeline=own_history,
        stages=STAGES,
        files=files,
        env_files=ENV_FILES,
        model_uri=f"models:/{found.name}/{found.version}",
    )


#: The environment files a version's folder may hold besides requirements.txt: shown when asked for
#: (`/model-version/file`), so the page reads two files from the store, not four.
ENV_FILES = ("conda.yaml", "python_env.yaml")


@router.get("/model-version/file")
def version_file(request: Request, name: str = "", version: str = "", path: str = "") -> Response:
    """One of a version's environment files, previewed: the version page fetches it when its
    section opens (htmx); without JavaScript the link opens it as a page."""
    if not name or not version or path not in ENV_FILES:
        raise bad_request(f"Which file? It needs ?name=&version=&path= with a path among {', '.join(ENV_FILES)}.")
    found = registry_store(request).get_model_version(name, version)
    files = version_files(request, found, (path,))
    template = "_version_file.html" if request.headers.get("hx-request") else "version_file.html"
    return page(request, template, section="models", version=found, files=files, path=path)


def version_files(request: Request, version: Any, paths: tuple[str, ...] = ("MLmodel", "requirements.txt")) -> dict[str, Any]:
    """Previews of files in the version's folder (by default its MLmodel: flavors, signature, input
    example; and its requirements), read as the run page's previews are (bounded, inert), keyed by
    path; a store that cannot be read is a note, not an error page."""
    from modelyard.ui.artifact_access import run_artifacts
    from modelyard.ui.concurrency import concurrently
    from modelyard.ui.previews import build_preview

    run_id = version.run_id or ""
    location = registry_store(request).get_model_version_download_uri(version.name, version.version)
    if not location:
        return {"note": "This version has no files location."}
    try:
        artifacts = run_artifacts(request, run_id, location)
        previews = concurrently(*(lambda p=p: build_preview(artifacts, p, image_url="") for p in paths))
        return {"previews": dict(zip(paths, previews, strict=True)), "location": location}
    except ModelyardException as exc:
        return {"note": f"The version's files at {location} could not be read: {exc.message}"}
