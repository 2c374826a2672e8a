"""Every knob of every service, in one typed object read from `MODELYARD_*` environment variables.

docs/operations.md documents each variable; keep the two in step. Services build `Settings.from_env()`
once at start-up and pass it down (`create_app(settings)`), so tests can build apps with explicit values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

DEFAULT_BACKEND_STORE_URI = "sqlite:///modelyard.db"
DEFAULT_LOCAL_ARTIFACT_ROOT = "./modelyard-artifacts"
#: The Host names answered when none are configured: the local machine only.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    # --- tracking service -----------------------------------------------------------------------
    #: SQLAlchemy URI of the tracking + registry database (sqlite:///..., postgresql://...).
    backend_store_uri: str = DEFAULT_BACKEND_STORE_URI
    #: Where new experiments put their artifacts when the client does not say. In proxied mode
    #: this is `mlflow-artifacts:/` and clients resolve it against the tracking URI.
    default_artifact_root: str | None = None
    #: Extra roots a client-supplied experiment artifact_location may point into (comma-separated).
    allowed_artifact_roots: tuple[str, ...] = ()
    #: SQLAlchemy connection pool size per worker (PostgreSQL only).
    db_pool_size: int = 5
    db_max_overflow: int = 10
    #: Seconds a request waits for a free pooled connection before it is answered 503 (both pools).
    db_pool_timeout: int = 30
    #: Connections per worker of the async pool that serves log-metric and metric-only log-batch on
    #: PostgreSQL without a thread (`store/tracking/async_writes.py`), on top of the pool above; 0 sends
    #: those writes through the sync pool in threads like every other request.
    db_async_pool_size: int = 5
    #: Bring the database schema up to date when the tracking service starts (an advisory lock keeps
    #: concurrent workers safe); turn off when a migrations Job owns upgrades.
    auto_migrate: bool = True
    #: Serve the web UI at `/` (experiments, runs, run pages, compare) beside the API.
    ui: bool = True
    #: Seconds one SQL statement may run on PostgreSQL (and one request's statements on SQLite)
    #: before it is cancelled and answered 400 (`store/sql/budget.py`); 0 turns the limit off.
    db_statement_timeout: int = 30
    #: Search limits (`store/search/limits.py`): filter length in characters, comparisons,
    #: parenthesis depth, IN / NOT IN values in all, order_by keys.
    search_max_filter_length: int = 100_000
    search_max_terms: int = 200
    search_max_depth: int = 32
    search_max_in_values: int = 5_000
    search_max_order_by: int = 10
    #: Largest JSON request body the tracking API reads, in bytes (artifact uploads are not JSON).
    max_request_body_bytes: int = 16 * 1024 * 1024
    #: Run the webhook delivery worker (a background thread) in each tracking worker process.
    webhook_delivery: bool = True
    #: Seconds between the delivery worker's polls for deliveries queued by other processes or due again.
    webhook_poll_interval: float = 2.0
    #: Seconds a receiver gets to connect and to answer one attempt.
    webhook_timeout: float = 10.0
    #: Attempts per delivery before it is marked failed.
    webhook_max_attempts: int = 8
    #: Seconds before the first retry; each further retry waits twice as long (at most an hour).
    webhook_backoff: float = 10.0
    #: Attempts one worker process makes at the same time.
    webhook_concurrency: int = 4
    #: Seconds a process trusts its list of the event kinds active webhooks want.
    webhook_cache_seconds: float = 2.0
    #: Webhooks may target loopback and private addresses (link-local / metadata never).
    webhook_allow_private: bool = False
    #: Finished deliveries older than this many days leave the delivery log (0: kept).
    webhook_log_days: float = 30.0
    #: Finished deliveries kept per webhook, newest first (0: no cap).
    webhook_log_rows: int = 10_000

    # --- artifacts service ----------------------------------------------------------------------
    #: Where proxied artifacts live: a local folder or s3://bucket/prefix.
    artifacts_destination: str = DEFAULT_LOCAL_ARTIFACT_ROOT
    #: Serve the artifacts API from the tracking process too (single-process mode).
    serve_artifacts: bool = True
    #: S3 endpoint (moto, MinIO, LocalStack); empty means boto3's own resolution (AWS_ENDPOINT_URL_S3).
    s3_endpoint_url: str | None = None
    #: "path" or "virtual"; path-style is what local S3 servers want.
    s3_addressing_style: str | None = None
    #: Size of one part of a multipart upload, and of a streamed chunk.
    multipart_chunk_size: int = 8 * 1024 * 1024
    #: Hand clients presigned S3 GET URLs (MLflow's `/mlflow-artifacts/presigned/<path>`, advertised as
    #: `multipart_downloads_enabled` by `/server-info`), so the mlflow client downloads from S3 directly
    #: instead of through the proxy. Off by default: clients must reach the S3 endpoint the URLs name
    #: (`s3_public_endpoint_url`), and a URL, once handed out after the permission check, reads that file
    #: for `artifacts_presigned_ttl` seconds without asking again. A local destination keeps the proxy.
    artifacts_presigned_downloads: bool = False
    #: Seconds a presigned download URL stays valid.
    artifacts_presigned_ttl: int = 300
    #: S3 endpoint as clients reach it, for the presigned URLs (e.g. MinIO's public address while the
    #: services use an in-cluster one); empty signs them for the services' own endpoint.
    s3_public_endpoint_url: str | None = None

    # --- serving service ------------------------------------------------------------------------
    #: Model to serve: models:/name/Production, models:/name@alias, runs:/..., or a directory.
    model_uri: str | None = None

    # --- endpoints service and deploy ------------------------------------------------------------
    #: Where the local SageMaker-style endpoint service keeps its definitions and unpacked models.
    endpoints_state_dir: str = ".stack/endpoints"
    #: Bucket that `modelyard deploy` uploads model.tar.gz files to.
    deploy_bucket: str = "modelyard-deploy"

    # --- every service --------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 2
    timeout: int = 120
    #: Seconds a worker gets to finish in-flight requests after SIGTERM.
    graceful_timeout: int = 30
    #: Seconds an idle keep-alive connection stays open (behind a load balancer: above its idle timeout).
    keepalive: int = 75
    #: Write one access-log line per request (off by default: it costs throughput).
    access_log: bool = False
    log_level: str = "info"
    #: Host names (any port) the services answer, comma-separated; `*.suffix` matches subdomains, `*` any
    #: Host. The default, the local machine only, stops DNS-rebinding pages from reaching a local server;
    #: add the names clients use when serving others (`modelyard.runtime.browser_guard`).
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    #: Origins (`scheme://host[:port]`) besides a request's own that browsers may send writes from, e.g.
    #: when a proxy rewrites the Host header; `*` turns the origin check off.
    allowed_origins: tuple[str, ...] = ()
    #: Origins (`scheme://host[:port]`) whose browser pages may call the API cross-origin (CORS); empty,
    #: the default, sends no CORS headers at all.
    cors_allowed_origins: tuple[str, ...] = ()

    # --- authentication and permissions (`modelyard.auth`) ----------------------------------------
    #: Require a user (password, token, session or trusted SSO proxy) and check permissions on every
    #: route of every service. Off (the default for a laptop) anyone who reaches the port may do anything.
    auth: bool = False
    #: The first admin, created at start-up when no such user exists (never a default password): the
    #: password from `admin_password`, or from the file `admin_password_file` (a mounted secret).
    admin_username: str | None = None
    admin_password: str | None = field(default=None, repr=False)
    admin_password_file: str | None = None
    #: Permission on experiments and registered models nobody granted: READ, USE, EDIT, MANAGE or NO_PERMISSIONS.
    auth_default_permission: str = "READ"
    #: Proxy addresses (CIDRs) whose user/groups headers are trusted (single sign-on behind oauth2-proxy
    #: or an ingress' auth); empty turns the header sign-in off.
    auth_trusted_proxies: tuple[str, ...] = ()
    auth_user_header: str = "X-Forwarded-User"
    #: Comma-separated group names of the signed-in user, from the same proxy.
    auth_groups_header: str = "X-Forwarded-Groups"
    #: Seconds a worker trusts a verified credential or a loaded permission set before re-checking it
    #: with one query (changes made through this instance apply to all its workers at once).
    auth_cache_seconds: float = 3.0
    #: Failed sign-ins per user name, and per client address, within `auth_failed_login_window_seconds`
    #: that lock it out: every attempt is then answered 429 for `auth_lockout_seconds`.
    auth_max_failed_logins: int = 10
    auth_max_failed_logins_per_address: int = 50
    auth_failed_login_window_seconds: int = 900
    auth_lockout_seconds: int = 300
    #: Cost of new argon2id password hashes: passes and memory (KiB) per verification; each verification
    #: holds that memory for its duration, so a small pod with many workers may want less.
    auth_password_hash_time_cost: int = 3
    auth_password_hash_memory_kib: int = 65536
    #: Lifetime of a UI sign-in session.
    auth_session_hours: float = 12.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Read `MODELYARD_<FIELD>` for every field; keyword overrides win (CLI flags)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = _env(f"MODELYARD_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _parse(f.type, raw, f.default)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _parse(type_name: Any, raw: str, default: Any) -> Any:
    kind = str(type_name)
    if kind.startswith("bool"):
        return _bool(raw, bool(default))
    if kind.startswith("int"):
        return int(raw)
    if kind.startswith("float"):
        return float(raw)
    if kind.startswith("tuple"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw
