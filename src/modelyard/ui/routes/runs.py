"""The runs page of an experiment (`/experiments/{id}`): the page a user lives in.

A server-rendered table (no JavaScript needed to see it) of one page of a runs search: the REST
API's filter grammar, sorting on any attribute, metric, param or tag, keyset paging with the total
(counted, or in a large experiment estimated and shown as an estimate: `run_table.count_runs`),
chosen and pinned columns, nested runs under their parents, registered model versions. All of its
state is in the query string (`ui.runs_query`). Around it:

- `/experiments/{id}/live`: the page's RUNNING rows again, which htmx polls while there are any;
- `/experiments/{id}/runs.csv`: the whole filtered set as CSV, streamed (`ui.runs_csv`);
- POST `/experiments/{id}/runs/delete|restore`: the selected runs (CSRF-checked), back to the page.

Selecting runs links to `/compare?runs=ID,ID,...` (the selection is in the URL as `sel`; runs.js keeps
it, the Compare link and the links that keep the selection up to date as boxes are ticked).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from modelyard.auth.identity import readable
from modelyard.entities import ViewType
from modelyard.entities.run import Run
from modelyard.exceptions import ModelyardException
from modelyard.store.auth.permissions import EXPERIMENT, REGISTERED_MODEL
from modelyard.store.tracking.run_table import (
    RunKeys,
    RunTotal,
    count_runs,
    experiment_keys,
    registered_versions,
    run_summaries,
)
from modelyard.ui import csrf, runs_csv
from modelyard.ui.concurrency import concurrently
from modelyard.ui.forms import read_form_pairs
from modelyard.ui.grants_section import permissions_section
from modelyard.ui.render import UiRoute, bad_request, page
from modelyard.ui.routes.experiments import tracking_store
from modelyard.ui.runs_query import PAGE_SIZES, Column, RunsQuery
from modelyard.ui.runs_table import (
    ModelLink,
    Row,
    fill,
    fold,
    header_groups,
    nest,
    now_ms,
    picker,
    search_page,
    shown_columns,
)

router = APIRouter(route_class=UiRoute, include_in_schema=False)
CsrfChecked = Depends(csrf.require_token)
#: Runs one delete/restore may name (a page shows at most 200).
MAX_SELECTION = 1000
_RUN_ID = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
FormPairs = Annotated[list[tuple[str, str]], Depends(read_form_pairs)]


@router.get("/experiments/{experiment_id}")
def runs_page(request: Request, experiment_id: str) -> Response:
    store = tracking_store(request)
    experiment = store.get_experiment(experiment_id)
    query, problems = RunsQuery.from_params(experiment.experiment_id, request.query_params)

    def keys_of() -> RunKeys:
        return experiment_keys(store.engine, experiment.experiment_id, query.view_type)  # type: ignore[attr-defined]

    rows: list[Row] = []
    models: dict[str, list[ModelLink]] = {}
    total: RunTotal | None = None
    next_url = None
    if problems:
        keys = keys_of()
    else:
        try:  # the page's rows, its total and the key list are independent reads
            keys, found, total = concurrently(
                keys_of,
                lambda: search_page(store, query, query.size, query.page_token or None),
                lambda: count_runs(store.engine, [experiment.experiment_id], query.filter, query.view_type),  # type: ignore[attr-defined]
            )
        except ModelyardException as exc:
            if exc.http_status >= 500:
                raise
            problems.append(exc.message)
            keys = keys_of()
        else:
            rows = nest(list(found))
            fold(rows, query.fold)
            models = _model_links(request, [row.run_id for row in rows])
            if found.token:
                next_url = query.next_page(found.token, len(found))
    columns = shown_columns(query, keys, models=bool(models))
    _fill(request, rows, columns, models)
    return page(
        request,
        "runs.html",
        status_code=400 if problems else 200,
        experiment=experiment,
        query=query,
        problems=problems,
        rows=rows,
        total=total,
        next_url=next_url,
        columns=columns,
        groups=header_groups(columns, query.pins),
        picker=picker(keys, columns, query.pins),
        keys={"metrics": keys.metrics, "params": keys.params, "tags": keys.tags},
        sizes=PAGE_SIZES,
        live_url=_live_url(query, columns, rows),
        csv_url=query.url("/runs.csv", page_token="", skip=0, sel=(), fold=()),
        now=now_ms(),
        permissions=permissions_section(request, EXPERIMENT, experiment.experiment_id),
    )


@router.get("/experiments/{experiment_id}/live")
def live_rows(request: Request, experiment_id: str, live: str = "") -> Response:
    """The rows named by `live` (`<run id>:<depth>:<children>`, comma-separated) drawn again, each
    swapped in by id, and the poller again for those still running (none left: polling stops)."""
    store = tracking_store(request)
    experiment = store.get_experiment(experiment_id)
    query, problems = RunsQuery.from_params(experiment.experiment_id, request.query_params)
    if problems:
        raise bad_request(problems[0])
    placed: dict[str, tuple[int, int]] = {}
    for entry in live.split(",")[:200]:
        run_id, _, rest = entry.partition(":")
        depth, _, children = rest.partition(":")
        if _RUN_ID.match(run_id) and depth.isdigit() and children.isdigit():
            placed[run_id] = (min(int(depth), 64), min(int(children), 10_000))
    if not placed:
        raise bad_request("live names the rows to refresh as <run id>:<depth>:<children>, comma-separated.")
    # The poller names its columns (`_live_url`); without them, the experiment's defaults.
    keys = (
        RunKeys([], [], [])
        if query.columns is not None
        else experiment_keys(store.engine, experiment.experiment_id, query.view_type)  # type: ignore[attr-defined]
    )
    columns = shown_columns(query, keys)
    found = _runs_by_id(request, experiment.experiment_id, list(placed))
    rows = [Row(run, *placed[run.info.run_id]) for run in found]
    _fill(request, rows, columns, _model_links(request, list(placed)))
    return page(
        request,
        "runs_live.html",
        query=query,
        rows=rows,
        columns=columns,
        live_url=_live_url(query, columns, rows),
        now=now_ms(),
    )


@router.get("/experiments/{experiment_id}/runs.csv")
def runs_csv_export(request: Request, experiment_id: str) -> Response:
    store = tracking_store(request)
    experiment = store.get_experiment(experiment_id)
    query, problems = RunsQuery.from_params(experiment.experiment_id, request.query_params)
    if problems:
        raise bad_request(problems[0])
    keys = experiment_keys(store.engine, experiment.experiment_id, query.view_type)  # type: ignore[attr-defined]
    columns = shown_columns(query, keys)
    # The first page before the response starts: a bad filter is an error page, not a broken file.
    first = search_page(store, query, runs_csv.EXPORT_PAGE, None)
    return StreamingResponse(
        runs_csv.export(store, query, columns, first),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{runs_csv.filename(experiment.name)}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@router.post("/experiments/{experiment_id}/runs/{action}", dependencies=[CsrfChecked])
def change_runs(request: Request, experiment_id: str, action: str, form: FormPairs) -> Response:
    """Delete or restore the selected runs, then back to the page the form came from."""
    store = tracking_store(request)
    change = {"delete": store.delete_run, "restore": store.restore_run}.get(action)
    if change is None:
        raise ModelyardException.not_found(f"Runs can be deleted or restored, not {action[:40]!r}.")
    for run_id in _selection(request, experiment_id, form):
        change(run_id)
    return RedirectResponse(_back(experiment_id, form), status_code=303)


# ---- helpers ------------------------------------------------------------------------------------
def _fill(
    request: Request, rows: Sequence[Row], columns: Sequence[Column], models: dict[str, list[ModelLink]]
) -> None:
    """Cell values, the model versions registered from each run, names of parents on other pages."""
    elsewhere = [row.parent_elsewhere for row in rows if row.parent_elsewhere]
    names = {k: v.name for k, v in run_summaries(tracking_store(request).engine, elsewhere).items()}  # type: ignore[attr-defined]
    fill(rows, columns, models, names)


def _model_links(request: Request, run_ids: Sequence[str]) -> dict[str, list[ModelLink]]:
    """The versions registered from each run, of the models the caller may read."""
    found = registered_versions(tracking_store(request).engine, run_ids)  # type: ignore[attr-defined]
    visible = readable(request, REGISTERED_MODEL)
    links = {
        run_id: [ModelLink(name, str(version)) for name, version in pairs if visible is None or visible.allows(name)]
        for run_id, pairs in found.items()
    }
    return {run_id: found_links for run_id, found_links in links.items() if found_links}


def _runs_by_id(request: Request, experiment_id: str, run_ids: Sequence[str]) -> list[Run]:
    """The experiment's runs with these ids (deleted ones too), in the order given."""
    ids = [i for i in run_ids if _RUN_ID.match(i)]
    if not ids:
        return []
    found = tracking_store(request).search_runs(
        [experiment_id],
        "attributes.run_id IN (" + ",".join(f"'{i}'" for i in ids) + ")",
        ViewType.ALL,
        len(ids),
    )
    by_id = {run.info.run_id: run for run in found}
    return [by_id[i] for i in ids if i in by_id]


def _live_url(query: RunsQuery, columns: Sequence[Column], rows: Sequence[Row]) -> str | None:
    """What the poller fetches while rows on the page are RUNNING: those rows, with these columns."""
    running = [row for row in rows if row.running]
    if not running:
        return None
    pairs = [("cols", "1"), *(("col", c.id) for c in columns if c not in query.pins)]
    pairs += [("pin", c.id) for c in query.pins]
    pairs.append(("live", ",".join(f"{r.run_id}:{r.depth}:{r.children}" for r in running)))
    return f"/experiments/{query.experiment_id}/live?{urlencode(pairs)}"


def _selection(request: Request, experiment_id: str, form: list[tuple[str, str]]) -> list[str]:
    """The form's `run` ids, all of them runs of this experiment (else nothing is changed)."""
    ids = list(dict.fromkeys(value for name, value in form if name == "run"))
    if not ids:
        raise bad_request("Select at least one run first.")
    if len(ids) > MAX_SELECTION:
        raise bad_request(f"Select at most {MAX_SELECTION} runs at a time.")
    found = run_summaries(tracking_store(request).engine, ids)  # type: ignore[attr-defined]
    strangers = [i for i in ids if i not in found or found[i].experiment_id != str(experiment_id)]
    if strangers:
        raise ModelyardException.not_found(f"No run with id {strangers[0]!r} in experiment {experiment_id}.")
    return ids


def _back(experiment_id: str, form: list[tuple[str, str]]) -> str:
    """The page the form came from (its `next` field, when it is this experiment's runs page),
    without the selection, whose runs just moved."""
    target = dict(form).get("next", "")
    base = f"/experiments/{experiment_id}"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path != base:
        return base
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "sel"]
    return f"{base}?{urlencode(kept)}" if kept else base
