"""From a rule's targets to the resources a request touches: (resource type, id, action) needs.

Values are read the way the route reads them, so both see the same resource: API parameters through
`protocol.parsing`'s getters over the same `Args` (query string for a GET that has one, else the JSON
body), UI parameters as FastAPI and `ui/forms.py` read them (a name given twice with different values
is refused: the route would see one and the check the other). Runs and logged models are checked by
their experiment, artifact paths by the experiment folder they lie in; look-ups of facts that never
change (a run's experiment) are cached per worker, and run in the thread pool when they miss.

A need whose id is None can be met by an admin only (a path outside any experiment's folder, a
registry history listing across all models).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool

from modelyard.artifact_repos.paths import safe_relative_path
from modelyard.auth import rules
from modelyard.auth.cache import ForeverCache
from modelyard.exceptions import ModelyardException
from modelyard.protocol.parsing import Args, get_str, get_str_list
from modelyard.store.auth.permissions import EXPERIMENT, REGISTERED_MODEL, validate_resource_type
from modelyard.store.sql.engine import READ_ONLY
from modelyard.store.sql.logged_model_schema import SqlLoggedModel
from modelyard.store.sql.schema import SqlExperiment, SqlRun

PROXIED = "mlflow-artifacts:/"


@dataclass(frozen=True)
class Need:
    resource_type: str
    #: None: only an admin may.
    resource_id: str | None
    action: str


class Lookups:
    """Which experiment a run or logged model belongs to, and an experiment's id by name."""

    def __init__(self, engine: Engine, artifact_roots: tuple[str, ...] = ()) -> None:
        self._engine = engine.execution_options(**READ_ONLY)
        self._runs: ForeverCache[str] = ForeverCache()
        self._logged_models: ForeverCache[str] = ForeverCache()
        #: Artifact roots whose first folder is an experiment id (besides `mlflow-artifacts:/`).
        self.artifact_roots = tuple(r.rstrip("/") + "/" for r in artifact_roots if r)

    async def run_experiment(self, run_id: str) -> str:
        found = self._runs.get(run_id)
        if found is None:
            found = await run_in_threadpool(self._scalar, select(SqlRun.experiment_id).where(SqlRun.run_uuid == run_id))
            if found is None:
                raise ModelyardException.not_found(f"Run with id={run_id} not found")
            self._runs.put(run_id, found)
        return found

    async def logged_model_experiment(self, model_id: str) -> str:
        found = self._logged_models.get(model_id)
        if found is None:
            found = await run_in_threadpool(
                self._scalar, select(SqlLoggedModel.experiment_id).where(SqlLoggedModel.model_id == model_id)
            )
            if found is None:
                raise ModelyardException.not_found(f"Logged model with id={model_id} not found")
            self._logged_models.put(model_id, found)
        return found

    async def experiment_by_name(self, name: str) -> str | None:
        return await run_in_threadpool(self._scalar, select(SqlExperiment.experiment_id).where(SqlExperiment.name == name))

    def _scalar(self, query: Any) -> str | None:
        with self._engine.connect() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else str(value)


def artifact_experiment(path: str | None) -> str | None:
    """The experiment whose folder a proxied artifact path lies in (`<id>/...`, normalised as the
    artifacts service normalises it); None for anything else. A bad path is the service's 400."""
    rel = safe_relative_path(path)
    first = rel.split("/", 1)[0]
    if first.isdigit() and first.isascii() and str(int(first)) == first:
        return first
    return None


@dataclass
class RequestArgs:
    """A request's parameters as its route reads them."""

    args: Args
    query: Mapping[str, list[str]]
    path_params: dict[str, str]
    #: UI routes: FastAPI/forms semantics (last value, stripped form fields); a repeated name is refused.
    ui: bool = False

    def one(self, target: rules.Target) -> str | None:
        """The target's value; two of its names (`run_id`, `run_uuid`) given different values are
        refused, since routes differ in which one they read first."""
        values = {v for v in (self._value(target.where, name) for name in target.fields) if v}
        if len(values) > 1:
            raise ModelyardException.invalid_parameter(
                f"Parameters {', '.join(repr(f) for f in target.fields)} name different resources."
            )
        return values.pop() if values else target.default

    def many(self, target: rules.Target) -> list[str]:
        values: list[str] = []
        for name in target.fields:
            if target.where == rules.PATH:
                values.append(self.path_params.get(name, ""))
            elif self.ui:
                values.extend(self.query.get(name, []))
            else:
                values.extend(get_str_list(self.args, name))
        return values

    def _value(self, where: str, name: str) -> str | None:
        if where == rules.PATH:
            return self.path_params.get(name)
        if not self.ui:
            return get_str(self.args, name)
        values = self.query.get(name) or []
        if len(set(values)) > 1:
            raise ModelyardException.invalid_parameter(f"Parameter '{name}' is given more than once.")
        return values[-1] if values else None


def ui_params(pairs: list[tuple[str, str]], strip: bool) -> dict[str, list[str]]:
    """A UI request's parameters by name (form fields stripped, as `ui.forms.field` reads them)."""
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value.strip() if strip else value)
    return out


async def needs_of(rule: rules.Rule, request: RequestArgs, lookups: Lookups, served: Callable[[], tuple[str, str] | None]) -> list[Need]:
    """What the request must be allowed to do, for a RESOURCE rule."""
    action = rule.action or rules.READ
    out: list[Need] = []
    for target in rule.targets:
        kind = target.names
        if kind == rules.EXPERIMENT:
            out.append(Need(EXPERIMENT, _required(request.one(target), target), action))
        elif kind == rules.EXPERIMENTS:
            out.extend(Need(EXPERIMENT, eid, action) for eid in request.many(target))
        elif kind == rules.EXPERIMENT_NAME:
            experiment_id = await lookups.experiment_by_name(_required(request.one(target), target))
            if experiment_id is not None:  # no such experiment: the route answers 404
                out.append(Need(EXPERIMENT, experiment_id, action))
        elif kind == rules.RUN:
            run_id = _required(request.one(target), target)
            out.append(Need(EXPERIMENT, await lookups.run_experiment(run_id), action))
        elif kind == rules.RUNS:
            for value in request.many(target):
                for run_id in (part.strip() for part in value.split(",")):
                    experiment_id = await _run_or_none(lookups, run_id) if run_id else None
                    if experiment_id is not None:  # an unknown run has nothing to read
                        out.append(Need(EXPERIMENT, experiment_id, action))
        elif kind == rules.LOGGED_MODEL:
            model_id = _required(request.one(target), target)
            out.append(Need(EXPERIMENT, await lookups.logged_model_experiment(model_id), action))
        elif kind == rules.MODEL:
            out.append(Need(REGISTERED_MODEL, _required(request.one(target), target), action))
        elif kind == rules.MODEL_OR_ADMIN:
            out.append(Need(REGISTERED_MODEL, request.one(target), action))
        elif kind == rules.ARTIFACT_PATH:
            out.append(Need(EXPERIMENT, artifact_experiment(request.one(target)), action))
        elif kind == rules.GRANTED:
            resource_type = validate_resource_type(get_str(request.args, "resource_type"))
            out.append(Need(resource_type, _required(request.one(target), target), action))
        elif kind == rules.VERSION_SOURCE:
            out.extend(await _source_needs(request, lookups))
        elif kind == rules.SERVED_MODEL:
            served_model = served()
            if served_model is not None:
                resource_type, resource_id = served_model
                if resource_type == "run":
                    resource_type, resource_id = EXPERIMENT, await lookups.run_experiment(resource_id)
                out.append(Need(resource_type, resource_id, action))
        else:  # pragma: no cover - a typo in the table
            raise ValueError(f"unknown target {kind!r}")
    return out


async def _run_or_none(lookups: Lookups, run_id: str) -> str | None:
    try:
        return await lookups.run_experiment(run_id)
    except ModelyardException:
        return None


def _required(value: str | None, target: rules.Target) -> str:
    if not value:
        name = target.fields[0] if target.fields else target.names
        raise ModelyardException.invalid_parameter(
            f"Missing value for required parameter '{name}'. See the API docs for more information about request parameters."
        )
    return value


async def _source_needs(request: RequestArgs, lookups: Lookups) -> list[Need]:
    """model-versions/create: READ on whatever the new version will read from (its run, its logged
    model, the experiment folder or registered model its source names), so registering a version
    never opens a way to artifacts the caller cannot read."""
    needs: list[Need] = []
    run_id = get_str(request.args, "run_id")
    model_id = get_str(request.args, "model_id")
    source = get_str(request.args, "source") or ""
    if run_id:
        needs.append(Need(EXPERIMENT, await lookups.run_experiment(run_id), rules.READ))
    if model_id:
        needs.append(Need(EXPERIMENT, await lookups.logged_model_experiment(model_id), rules.READ))
    if source.startswith("runs:/"):
        source_run = source[len("runs:/") :].split("/", 1)[0]
        if source_run:
            needs.append(Need(EXPERIMENT, await lookups.run_experiment(source_run), rules.READ))
    elif source.startswith("models:/"):
        rest = source[len("models:/") :]
        if rest.startswith("m-") and "/" not in rest.rstrip("/"):
            needs.append(Need(EXPERIMENT, await lookups.logged_model_experiment(rest.rstrip("/")), rules.READ))
        elif rest:
            needs.append(Need(REGISTERED_MODEL, rest.split("@", 1)[0].split("/", 1)[0], rules.READ))
    else:
        for root in (PROXIED, *lookups.artifact_roots):
            if source.startswith(root):
                try:
                    experiment_id = artifact_experiment(source[len(root) :])
                except ModelyardException:
                    experiment_id = None  # the store refuses such a source with its own 400
                needs.append(Need(EXPERIMENT, experiment_id, rules.READ))
                break
    return needs
