"""Every route of every service, and the permission it requires: the one table the middleware enforces.

A rule says who may call a route:
- PUBLIC: anyone, no credentials needed (health, version, static files, the sign-in page);
- AUTHENTICATED: any signed-in user; a route whose answer depends on the caller filters it itself
  (searches pass the caller's readable set to the store, `/graphql` checks each resolver);
- ADMIN: admins only;
- SELF: the user named by the `username` parameter, or an admin;
- RESOURCE: the caller's permission on the resources its `targets` name must allow `action` (MLflow's
  can_read / can_update / can_delete / can_manage), for every one of them.
A target says where a resource's id comes from (a parameter of the query string or JSON/form body, or
a path parameter) and what it names: an experiment, a run (checked by its experiment), a logged
model (by its experiment), a registered model, an artifact path (by the experiment folder it lies
in), a version's source (by what it points into).

`table(service)` lists the rules of one service as {(METHOD, path template): Rule}, the templates
exactly as the app declares its routes. The middleware matches requests against the app's own routes
and fails closed: a route of the app without a rule here is admins-only (and logged), and
`tests/unit/test_auth_rules.py` fails on any such route of any service.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

PUBLIC = "public"
AUTHENTICATED = "authenticated"
ADMIN = "admin"
SELF = "self"
RESOURCE = "resource"

READ, UPDATE, DELETE, MANAGE = "read", "update", "delete", "manage"

# What a target names.
EXPERIMENT = "experiment"  # an experiment id
EXPERIMENTS = "experiments"  # a list of experiment ids
EXPERIMENT_NAME = "experiment_name"  # an experiment's name
RUN = "run"  # a run id -> its experiment
RUNS = "runs"  # a list of run ids (repeated parameter and/or comma-separated) -> their experiments
LOGGED_MODEL = "logged_model"  # a logged model id -> its experiment
MODEL = "model"  # a registered model's name
MODEL_OR_ADMIN = "model_or_admin"  # a registered model's name; absent: admins only (a list across models)
ARTIFACT_PATH = "artifact_path"  # a path in the artifact store -> the experiment folder it is in
VERSION_SOURCE = "version_source"  # model-versions/create: what `source`, `run_id` and `model_id` point into
GRANTED = "granted"  # the auth API's `resource_type` + `resource_id`
SERVED_MODEL = "served_model"  # the serving service's model (its registered model or run)

#: Where a target's value is read: a request parameter (query string, JSON body or form), or the path.
ARG, PATH = "arg", "path"


@dataclass(frozen=True)
class Target:
    names: str
    where: str = ARG
    #: Parameter names to try in order (`run_id`, then the `run_uuid` older clients send).
    fields: tuple[str, ...] = ()
    #: The value when the parameter is absent (runs/create: the Default experiment).
    default: str | None = None


@dataclass(frozen=True)
class Rule:
    kind: str
    action: str | None = None
    targets: tuple[Target, ...] = ()
    #: An HTML page: an unauthenticated GET is sent to the sign-in page instead of a 401.
    page: bool = False
    #: A form post of the UI (parameters come from an urlencoded body, stripped as the UI reads them).
    form: bool = False
    #: The route reads its parameters from the query string whatever the method (its body is data).
    query: bool = False
    note: str = ""

    @functools.cached_property
    def needs_args(self) -> bool:
        return any(t.where == ARG for t in self.targets) or self.kind == SELF


def _arg(names: str, *fields: str, default: str | None = None) -> Target:
    return Target(names, ARG, fields, default)


def _path(names: str, param: str) -> Target:
    return Target(names, PATH, (param,))


def resource(action: str, *targets: Target, page: bool = False, form: bool = False) -> Rule:
    return Rule(RESOURCE, action, targets, page=page, form=form)


PUBLIC_RULE = Rule(PUBLIC)
AUTH_RULE = Rule(AUTHENTICATED)
ADMIN_RULE = Rule(ADMIN)
SELF_RULE = Rule(SELF, targets=())
FILTERED = Rule(AUTHENTICATED, note="the answer holds only what the caller may read")
PAGE = Rule(AUTHENTICATED, page=True)

RUN_ID = _arg(RUN, "run_id", "run_uuid")
EXPERIMENT_ID = _arg(EXPERIMENT, "experiment_id")
MODEL_NAME = _arg(MODEL, "name")
LOGGED_MODEL_ID = _path(LOGGED_MODEL, "model_id")


def _both(prefixes: tuple[str, ...], rules: dict[tuple[str, str], Rule]) -> dict[tuple[str, str], Rule]:
    return {(method, prefix + path): rule for prefix in prefixes for (method, path), rule in rules.items()}


API2 = ("/api/2.0", "/ajax-api/2.0")
API3 = ("/api/3.0", "/ajax-api/3.0")

#: MLflow's tracking and registry API, under /api/2.0 and /ajax-api/2.0.
MLFLOW_API: dict[tuple[str, str], Rule] = {
    ("POST", "/mlflow/runs/create"): resource(UPDATE, _arg(EXPERIMENT, "experiment_id", default="0")),
    ("GET", "/mlflow/runs/get"): resource(READ, RUN_ID),
    ("POST", "/mlflow/runs/update"): resource(UPDATE, RUN_ID),
    ("POST", "/mlflow/runs/delete"): resource(DELETE, RUN_ID),
    ("POST", "/mlflow/runs/restore"): resource(DELETE, RUN_ID),
    ("POST", "/mlflow/runs/set-tag"): resource(UPDATE, RUN_ID),
    ("POST", "/mlflow/runs/delete-tag"): resource(UPDATE, RUN_ID),
    ("POST", "/mlflow/runs/log-parameter"): resource(UPDATE, RUN_ID),
    ("POST", "/mlflow/runs/log-metric"): resource(UPDATE, RUN_ID),
    ("POST", "/mlflow/runs/log-batch"): resource(UPDATE, RUN_ID),
    ("POST", "/mlflow/runs/log-inputs"): resource(UPDATE, RUN_ID),
    ("POST", "/mlflow/runs/outputs"): resource(UPDATE, RUN_ID),
    ("POST", "/mlflow/runs/search"): resource(READ, _arg(EXPERIMENTS, "experiment_ids")),
    ("GET", "/mlflow/metrics/get-history"): resource(READ, RUN_ID),
    ("GET", "/mlflow/metrics/get-history-bulk-interval"): resource(READ, _arg(RUNS, "run_ids")),
    ("GET", "/mlflow/artifacts/list"): resource(READ, RUN_ID),
    ("POST", "/mlflow/experiments/create"): Rule(AUTHENTICATED, note="the creator is granted MANAGE"),
    ("GET", "/mlflow/experiments/get"): resource(READ, EXPERIMENT_ID),
    ("GET", "/mlflow/experiments/get-by-name"): resource(READ, _arg(EXPERIMENT_NAME, "experiment_name")),
    ("GET", "/mlflow/experiments/search"): FILTERED,
    ("POST", "/mlflow/experiments/search"): FILTERED,
    ("POST", "/mlflow/experiments/update"): resource(UPDATE, EXPERIMENT_ID),
    ("POST", "/mlflow/experiments/delete"): resource(DELETE, EXPERIMENT_ID),
    ("POST", "/mlflow/experiments/restore"): resource(DELETE, EXPERIMENT_ID),
    ("POST", "/mlflow/experiments/set-experiment-tag"): resource(UPDATE, EXPERIMENT_ID),
    ("POST", "/mlflow/experiments/delete-experiment-tag"): resource(UPDATE, EXPERIMENT_ID),
    ("POST", "/mlflow/registered-models/create"): Rule(AUTHENTICATED, note="the creator is granted MANAGE"),
    ("GET", "/mlflow/registered-models/get"): resource(READ, MODEL_NAME),
    ("POST", "/mlflow/registered-models/rename"): resource(UPDATE, MODEL_NAME),
    ("PATCH", "/mlflow/registered-models/update"): resource(UPDATE, MODEL_NAME),
    ("DELETE", "/mlflow/registered-models/delete"): resource(DELETE, MODEL_NAME),
    ("GET", "/mlflow/registered-models/search"): FILTERED,
    ("POST", "/mlflow/registered-models/search"): FILTERED,
    ("GET", "/mlflow/registered-models/get-latest-versions"): resource(READ, MODEL_NAME),
    ("POST", "/mlflow/registered-models/get-latest-versions"): resource(READ, MODEL_NAME),
    ("POST", "/mlflow/registered-models/set-tag"): resource(UPDATE, MODEL_NAME),
    ("DELETE", "/mlflow/registered-models/delete-tag"): resource(UPDATE, MODEL_NAME),
    ("POST", "/mlflow/registered-models/alias"): resource(UPDATE, MODEL_NAME),
    ("DELETE", "/mlflow/registered-models/alias"): resource(UPDATE, MODEL_NAME),
    ("GET", "/mlflow/registered-models/alias"): resource(READ, MODEL_NAME),
    ("POST", "/mlflow/model-versions/create"): Rule(
        RESOURCE, UPDATE, (MODEL_NAME, _arg(VERSION_SOURCE, "source")), note="and READ on what the source is in"
    ),
    ("GET", "/mlflow/model-versions/get"): resource(READ, MODEL_NAME),
    ("PATCH", "/mlflow/model-versions/update"): resource(UPDATE, MODEL_NAME),
    ("DELETE", "/mlflow/model-versions/delete"): resource(DELETE, MODEL_NAME),
    ("POST", "/mlflow/model-versions/transition-stage"): resource(UPDATE, MODEL_NAME),
    ("GET", "/mlflow/model-versions/search"): FILTERED,
    ("POST", "/mlflow/model-versions/search"): FILTERED,
    ("GET", "/mlflow/model-versions/get-download-uri"): resource(READ, MODEL_NAME),
    ("POST", "/mlflow/model-versions/set-tag"): resource(UPDATE, MODEL_NAME),
    ("DELETE", "/mlflow/model-versions/delete-tag"): resource(UPDATE, MODEL_NAME),
    ("POST", "/mlflow/logged-models"): resource(UPDATE, EXPERIMENT_ID),
    ("POST", "/mlflow/logged-models/search"): resource(READ, _arg(EXPERIMENTS, "experiment_ids")),
    ("GET", "/mlflow/logged-models/{model_id}"): resource(READ, LOGGED_MODEL_ID),
    ("PATCH", "/mlflow/logged-models/{model_id}"): resource(UPDATE, LOGGED_MODEL_ID),
    ("DELETE", "/mlflow/logged-models/{model_id}"): resource(DELETE, LOGGED_MODEL_ID),
    ("PATCH", "/mlflow/logged-models/{model_id}/tags"): resource(UPDATE, LOGGED_MODEL_ID),
    ("DELETE", "/mlflow/logged-models/{model_id}/tags/{tag_key:path}"): resource(UPDATE, LOGGED_MODEL_ID),
    ("POST", "/mlflow/logged-models/{model_id}/params"): resource(UPDATE, LOGGED_MODEL_ID),
    ("GET", "/mlflow/logged-models/{model_id}/artifacts/directories"): resource(READ, LOGGED_MODEL_ID),
    # modelyard's registry history and webhooks
    ("GET", "/modelyard/registry/events"): resource(READ, _arg(MODEL_OR_ADMIN, "name")),
    ("GET", "/modelyard/registry/held"): resource(READ, MODEL_NAME),
    ("POST", "/modelyard/registry/rollback"): resource(UPDATE, MODEL_NAME),
    ("POST", "/modelyard/registry/events/deploy"): resource(UPDATE, MODEL_NAME),
    # `modelyard import`: new runs in one experiment, as runs/create + log-batch there would make them.
    ("POST", "/modelyard/runs/import"): resource(UPDATE, EXPERIMENT_ID),
    # `modelyard export`: every run of one experiment, as search-runs and get-history read them.
    ("GET", "/modelyard/runs/export"): resource(READ, EXPERIMENT_ID),
    ("POST", "/modelyard/webhooks/create"): ADMIN_RULE,
    ("GET", "/modelyard/webhooks/list"): ADMIN_RULE,
    ("GET", "/modelyard/webhooks/get"): ADMIN_RULE,
    ("PATCH", "/modelyard/webhooks/update"): ADMIN_RULE,
    ("DELETE", "/modelyard/webhooks/delete"): ADMIN_RULE,
    ("POST", "/modelyard/webhooks/test"): ADMIN_RULE,
    ("GET", "/modelyard/webhooks/deliveries"): ADMIN_RULE,
}

#: Routes MLflow's UI calls, under /ajax-api/2.0 only.
AJAX_ONLY: dict[tuple[str, str], Rule] = {
    ("GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk"): resource(READ, _arg(RUNS, "run_id")),
    ("POST", "/ajax-api/2.0/mlflow/experiments/search-datasets"): resource(
        READ, _arg(EXPERIMENTS, "experiment_ids")
    ),
    ("POST", "/ajax-api/2.0/mlflow/upload-artifact"): Rule(RESOURCE, UPDATE, (RUN_ID,), query=True),
    ("GET", "/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files"): resource(READ, LOGGED_MODEL_ID),
}

#: MLflow 3.17's auth API (`modelyard.auth.routes`), plus modelyard's tokens and audit log.
AUTH_API: dict[tuple[str, str], Rule] = {
    **_both(
        API2,
        {
            ("POST", "/mlflow/users/create"): ADMIN_RULE,
            ("GET", "/mlflow/users/get"): SELF_RULE,
            ("GET", "/mlflow/users/list"): ADMIN_RULE,
            ("GET", "/mlflow/users/current"): AUTH_RULE,
            ("PATCH", "/mlflow/users/update-password"): SELF_RULE,
            ("PATCH", "/mlflow/users/update-admin"): ADMIN_RULE,
            ("DELETE", "/mlflow/users/delete"): ADMIN_RULE,
            # MLflow 2.x's per-resource permission endpoints, for older clients.
            **{
                (method, f"/mlflow/experiments/permissions/{op}"): resource(MANAGE, EXPERIMENT_ID)
                for method, op in (("POST", "create"), ("GET", "get"), ("PATCH", "update"), ("DELETE", "delete"))
            },
            **{
                (method, f"/mlflow/registered-models/permissions/{op}"): resource(MANAGE, MODEL_NAME)
                for method, op in (("POST", "create"), ("GET", "get"), ("PATCH", "update"), ("DELETE", "delete"))
            },
            ("POST", "/modelyard/tokens/create"): Rule(AUTHENTICATED, note="for oneself; admins for anyone"),
            ("GET", "/modelyard/tokens/list"): Rule(AUTHENTICATED, note="one's own; admins anyone's"),
            ("POST", "/modelyard/tokens/revoke"): Rule(AUTHENTICATED, note="one's own; admins anyone's"),
            ("GET", "/modelyard/audit/list"): ADMIN_RULE,
        },
    ),
    **_both(
        API3,
        {
            ("POST", "/mlflow/users/permissions/grant"): resource(MANAGE, _arg(GRANTED, "resource_id")),
            ("POST", "/mlflow/users/permissions/revoke"): resource(MANAGE, _arg(GRANTED, "resource_id")),
            ("GET", "/mlflow/users/permissions/get"): SELF_RULE,
            ("GET", "/mlflow/users/permissions/list"): SELF_RULE,
            ("GET", "/mlflow/users/current/permissions"): AUTH_RULE,
            ("GET", "/mlflow/users/roles/list"): SELF_RULE,
            ("POST", "/mlflow/roles/create"): ADMIN_RULE,
            ("GET", "/mlflow/roles/get"): ADMIN_RULE,
            ("GET", "/mlflow/roles/list"): ADMIN_RULE,
            ("PATCH", "/mlflow/roles/update"): ADMIN_RULE,
            ("DELETE", "/mlflow/roles/delete"): ADMIN_RULE,
            ("POST", "/mlflow/roles/assign"): ADMIN_RULE,
            ("DELETE", "/mlflow/roles/unassign"): ADMIN_RULE,
            ("GET", "/mlflow/roles/users/list"): ADMIN_RULE,
            ("POST", "/mlflow/roles/permissions/add"): ADMIN_RULE,
            ("GET", "/mlflow/roles/permissions/list"): ADMIN_RULE,
            ("PATCH", "/mlflow/roles/permissions/update"): ADMIN_RULE,
            ("DELETE", "/mlflow/roles/permissions/remove"): ADMIN_RULE,
        },
    ),
}

#: MLflow's artifacts API: by the experiment folder a path lies in (`<experiment_id>/...`).
ARTIFACTS_API: dict[tuple[str, str], Rule] = _both(
    API2,
    {
        ("GET", "/mlflow-artifacts/artifacts"): Rule(RESOURCE, READ, (_arg(ARTIFACT_PATH, "path"),), query=True),
        ("GET", "/mlflow-artifacts/artifacts/{path:path}"): resource(READ, _path(ARTIFACT_PATH, "path")),
        ("PUT", "/mlflow-artifacts/artifacts/{path:path}"): resource(UPDATE, _path(ARTIFACT_PATH, "path")),
        ("PUT", "/mlflow-artifacts/modelyard-bundle/{path:path}"): resource(UPDATE, _path(ARTIFACT_PATH, "path")),
        ("DELETE", "/mlflow-artifacts/artifacts/{path:path}"): resource(DELETE, _path(ARTIFACT_PATH, "path")),
        ("POST", "/mlflow-artifacts/mpu/create/{path:path}"): resource(UPDATE, _path(ARTIFACT_PATH, "path")),
        ("POST", "/mlflow-artifacts/mpu/complete/{path:path}"): resource(UPDATE, _path(ARTIFACT_PATH, "path")),
        ("POST", "/mlflow-artifacts/mpu/abort/{path:path}"): resource(UPDATE, _path(ARTIFACT_PATH, "path")),
        ("GET", "/mlflow-artifacts/presigned/{path:path}"): resource(READ, _path(ARTIFACT_PATH, "path")),
    },
)

#: Every service's own small routes.
SERVICE_META: dict[tuple[str, str], Rule] = {
    ("GET", "/health"): PUBLIC_RULE,
    ("GET", "/version"): PUBLIC_RULE,
    ("GET", "/metrics"): Rule(PUBLIC, note="Prometheus scrapes it; request counts, no data"),
    ("HEAD", "/metrics"): PUBLIC_RULE,
    ("GET", "/openapi.json"): PUBLIC_RULE,
    ("HEAD", "/openapi.json"): PUBLIC_RULE,
}
SERVER_INFO: dict[tuple[str, str], Rule] = {
    ("GET", "/api/3.0/mlflow/server-info"): AUTH_RULE,
    ("GET", "/ajax-api/3.0/mlflow/server-info"): AUTH_RULE,
}

#: The web UI (`modelyard.ui`): pages by the resource they show, form posts by what they change.
UI: dict[tuple[str, str], Rule] = {
    ("GET", "/login"): Rule(PUBLIC, note="reserved for the UI's sign-in page"),
    ("POST", "/login"): Rule(PUBLIC, note="reserved: the sign-in form (rate-limited by the UI route)"),
    ("POST", "/logout"): Rule(PUBLIC, note="reserved: ends the session cookie's session"),
    ("GET", "/static/{path:path}"): PUBLIC_RULE,
    ("GET", "/"): PAGE,
    ("GET", "/experiments"): Rule(AUTHENTICATED, page=True, note="lists only readable experiments"),
    ("POST", "/experiments"): Rule(AUTHENTICATED, form=True, note="the creator is granted MANAGE"),
    ("GET", "/experiments/{experiment_id}"): resource(READ, _path(EXPERIMENT, "experiment_id"), page=True),
    ("GET", "/experiments/{experiment_id}/live"): resource(READ, _path(EXPERIMENT, "experiment_id"), page=True),
    ("GET", "/experiments/{experiment_id}/runs.csv"): resource(
        READ, _path(EXPERIMENT, "experiment_id"), page=True
    ),
    ("POST", "/experiments/{experiment_id}/rename"): resource(
        UPDATE, _path(EXPERIMENT, "experiment_id"), form=True
    ),
    ("POST", "/experiments/{experiment_id}/delete"): resource(
        DELETE, _path(EXPERIMENT, "experiment_id"), form=True
    ),
    ("POST", "/experiments/{experiment_id}/restore"): resource(
        DELETE, _path(EXPERIMENT, "experiment_id"), form=True
    ),
    ("POST", "/experiments/{experiment_id}/runs/{action}"): resource(
        DELETE, _path(EXPERIMENT, "experiment_id"), form=True
    ),
    ("GET", "/runs/{run_id}"): resource(READ, _path(RUN, "run_id"), page=True),
    ("GET", "/runs/{run_id}/metric-series"): resource(READ, _path(RUN, "run_id"), page=True),
    ("GET", "/runs/{run_id}/artifacts/list"): resource(READ, _path(RUN, "run_id"), page=True),
    ("GET", "/runs/{run_id}/artifacts/file"): resource(READ, _path(RUN, "run_id"), page=True),
    ("GET", "/runs/{run_id}/artifacts/preview"): resource(READ, _path(RUN, "run_id"), page=True),
    ("POST", "/runs/{run_id}/rename"): resource(UPDATE, _path(RUN, "run_id"), form=True),
    ("POST", "/runs/{run_id}/description"): resource(UPDATE, _path(RUN, "run_id"), form=True),
    ("POST", "/runs/{run_id}/tags"): resource(UPDATE, _path(RUN, "run_id"), form=True),
    ("POST", "/runs/{run_id}/tags/delete"): resource(UPDATE, _path(RUN, "run_id"), form=True),
    ("GET", "/compare"): resource(READ, _arg(RUNS, "runs"), page=True),
    ("GET", "/compare/series"): resource(READ, _arg(RUNS, "runs"), page=True),
    ("GET", "/models"): Rule(AUTHENTICATED, page=True, note="lists only readable models"),
    ("POST", "/models"): Rule(AUTHENTICATED, form=True, note="the creator is granted MANAGE"),
    ("GET", "/model"): resource(READ, MODEL_NAME, page=True),
    ("GET", "/model-version"): resource(READ, MODEL_NAME, page=True),
    ("GET", "/model/version-actions"): resource(READ, MODEL_NAME, page=True),
    ("GET", "/model-version/file"): resource(READ, MODEL_NAME, page=True),
    ("POST", "/model/rename"): resource(UPDATE, MODEL_NAME, form=True),
    ("POST", "/model/delete"): resource(DELETE, MODEL_NAME, form=True),
    ("POST", "/model/description"): resource(UPDATE, MODEL_NAME, form=True),
    ("POST", "/model/tag"): resource(UPDATE, MODEL_NAME, form=True),
    ("POST", "/model/alias"): resource(UPDATE, MODEL_NAME, form=True),
    ("POST", "/model/stage"): resource(UPDATE, MODEL_NAME, form=True),
    ("POST", "/model/rollback"): resource(UPDATE, MODEL_NAME, form=True),
    ("GET", "/deployments"): PAGE,
    ("GET", "/deployments/{name}"): PAGE,
    ("POST", "/deployments/{name}/weights"): Rule(ADMIN, form=True, note="endpoints are operated by admins"),
    ("POST", "/deployments/{name}/delete"): Rule(ADMIN, form=True, note="endpoints are operated by admins"),
    ("POST", "/deployments/deploy"): Rule(ADMIN, form=True, note="endpoints are operated by admins (review and deploy)"),
    ("GET", "/deployments/{name}/progress"): PAGE,
    ("GET", "/deployments/{name}/invocations"): PAGE,
    # The version page's score box: which variants serve the version, and one prediction from one of them.
    ("GET", "/model-version/score-box"): resource(READ, MODEL_NAME, page=True),
    ("POST", "/model-version/score"): resource(READ, MODEL_NAME, form=True),
    # The signed-in user's own page (`ui.routes.account`): their password and tokens only.
    ("GET", "/account"): PAGE,
    ("POST", "/account/password"): Rule(AUTHENTICATED, form=True, note="one's own; needs the current password"),
    ("POST", "/account/tokens"): Rule(AUTHENTICATED, form=True, note="for oneself"),
    ("POST", "/account/tokens/revoke"): Rule(AUTHENTICATED, form=True, note="one's own (the route checks the owner)"),
    # A resource's permissions section (`ui.routes.permissions`); grants to groups are for admins (the route).
    ("POST", "/experiments/{experiment_id}/permissions"): resource(
        MANAGE, _path(EXPERIMENT, "experiment_id"), form=True
    ),
    ("POST", "/model/permissions"): resource(MANAGE, MODEL_NAME, form=True),
    # The admin pages (`ui.routes.admin`, `ui.routes.permissions`).
    **{("GET", path): Rule(ADMIN, page=True) for path in ("/admin", "/admin/users", "/admin/groups", "/admin/permissions", "/admin/audit")},
    **{
        ("POST", path): Rule(ADMIN, form=True)
        for path in (
            "/admin/users",
            "/admin/users/admin",
            "/admin/users/password",
            "/admin/users/delete",
            "/admin/groups",
            "/admin/groups/members",
            "/admin/groups/delete",
            "/admin/permissions",
        )
    },
}

#: The tracking service's own artifact downloads and /graphql.
TRACKING_EXTRA: dict[tuple[str, str], Rule] = {
    ("GET", "/get-artifact"): resource(READ, RUN_ID),
    ("GET", "/model-versions/get-artifact"): resource(READ, MODEL_NAME),
    ("POST", "/graphql"): Rule(AUTHENTICATED, note="each resolver checks or filters by the caller's permissions"),
}

SERVING: dict[tuple[str, str], Rule] = {
    ("GET", "/ping"): PUBLIC_RULE,
    ("GET", "/health"): PUBLIC_RULE,
    ("GET", "/version"): PUBLIC_RULE,
    ("POST", "/invocations"): resource(READ, Target(SERVED_MODEL, ARG, ())),
}

ENDPOINTS: dict[tuple[str, str], Rule] = {
    ("POST", "/"): Rule(ADMIN, note="the SageMaker-style control plane: deploying is an admin's job"),
    ("POST", "/endpoints/{name}/invocations"): AUTH_RULE,
    ("GET", "/modelyard/endpoints/{name}/invocations"): Rule(AUTHENTICATED, note="counts, as readable as invoking"),
}

GATEWAY: dict[tuple[str, str], Rule] = {
    ("GET", "/gateway/health"): PUBLIC_RULE,
    ("HEAD", "/gateway/health"): PUBLIC_RULE,
    **{
        (method, "/{path:path}"): Rule(PUBLIC, note="a proxy: the tracking and artifacts services behind it enforce")
        for method in ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
    },
}


def table(service: str) -> dict[tuple[str, str], Rule]:
    """The rules of "tracking" (API, artifacts when served too, UI, auth API), "artifacts", "serving",
    "endpoints" or "gateway"."""
    if service == "tracking":
        return {
            **SERVICE_META,
            **SERVER_INFO,
            **_both(API2, MLFLOW_API),
            **AJAX_ONLY,
            **AUTH_API,
            **ARTIFACTS_API,
            **TRACKING_EXTRA,
            **UI,
        }
    if service == "artifacts":
        return {**SERVICE_META, ("GET", "/api/3.0/mlflow/server-info"): AUTH_RULE, **ARTIFACTS_API}
    if service == "serving":
        return {**SERVICE_META, **SERVING}
    if service == "endpoints":
        return {**{k: v for k, v in SERVICE_META.items() if k[1] != "/version"}, **ENDPOINTS}
    if service == "gateway":
        return dict(GATEWAY)
    raise ValueError(f"unknown service {service!r}")


@dataclass
class RouteInfo:
    """One route of an app: its methods and path template, as Starlette/FastAPI declare it."""

    methods: frozenset[str]
    path: str
    name: str = ""
    extra: dict[str, str] = field(default_factory=dict)
