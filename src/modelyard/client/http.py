"""HTTP to a tracking server: one pooled `requests.Session` per host, bounded retries, MLflow's errors.

Retries cover what a healthy server answers under load or during a rolling restart (429 and the
5xx gateway family) with exponential backoff, bounded in attempts so a dead server fails in seconds,
not minutes. Client mistakes (4xx) are never retried: they come back at once as `RestException`
with the server's MLflow error code. Every request carries a connect and a read timeout.

Environment (MODELYARD_* wins over MLflow's name, so existing MLflow set-ups keep working):
  MODELYARD_HTTP_REQUEST_TIMEOUT / MLFLOW_HTTP_REQUEST_TIMEOUT          read timeout, seconds [120]
  MODELYARD_HTTP_REQUEST_MAX_RETRIES / MLFLOW_HTTP_REQUEST_MAX_RETRIES  retries [5]
  MODELYARD_HTTP_REQUEST_BACKOFF_FACTOR / MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR  seconds [0.5]
  MODELYARD_TRACKING_USERNAME / MLFLOW_TRACKING_USERNAME + MODELYARD_TRACKING_PASSWORD /
  MLFLOW_TRACKING_PASSWORD (basic: a password, or a personal access token as the password), or
  MODELYARD_TRACKING_TOKEN / MLFLOW_TRACKING_TOKEN (bearer), which wins when both are set
  MLFLOW_TRACKING_INSECURE_TLS=true skips certificate checks; MLFLOW_TRACKING_SERVER_CERT_PATH sets a CA.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from modelyard import errors
from modelyard.credentials import credentials_from_env, env_value
from modelyard.exceptions import ModelyardException, RestException
from modelyard.http_session import EnvironmentCachingSession
from modelyard.version import __version__

RETRY_STATUSES = (429, 500, 502, 503, 504)
CONNECT_TIMEOUT = 10.0
_MAX_BACKOFF_SECONDS = 30.0


def _env_float(default: float, *names: str) -> float:
    raw = env_value(*names)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ModelyardException.invalid_parameter(f"{names[0]} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class HttpConfig:
    """What shapes every request; read from the environment when a session is first made."""

    read_timeout: float = 120.0
    max_retries: int = 5
    backoff_factor: float = 0.5
    username: str | None = None
    password: str | None = None
    token: str | None = None
    verify: bool | str = True

    @classmethod
    def from_env(cls) -> HttpConfig:
        insecure = (env_value("MLFLOW_TRACKING_INSECURE_TLS") or "").lower() in ("1", "true", "yes")
        cert = env_value("MLFLOW_TRACKING_SERVER_CERT_PATH")
        return cls(
            read_timeout=_env_float(120.0, "MODELYARD_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_TIMEOUT"),
            max_retries=int(
                _env_float(5, "MODELYARD_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_MAX_RETRIES")
            ),
            backoff_factor=_env_float(
                0.5, "MODELYARD_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"
            ),
            **credentials_from_env(),
            verify=False if insecure else (cert or True),
        )


_sessions: dict[tuple[str, HttpConfig], requests.Session] = {}
_sessions_lock = threading.Lock()


def _retry(config: HttpConfig) -> Retry:
    # POST is retried too: every MLflow write we send is idempotent or fails cleanly on replay
    # (create-experiment answers RESOURCE_ALREADY_EXISTS), and a 503 during a restart must not lose a batch.
    return Retry(
        total=config.max_retries,
        connect=config.max_retries,
        read=config.max_retries,
        status=config.max_retries,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}),
        backoff_factor=config.backoff_factor,
        backoff_max=_MAX_BACKOFF_SECONDS,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


def session_for(base_url: str, config: HttpConfig | None = None) -> requests.Session:
    """The pooled session for `base_url`'s scheme+host (shared across threads, as requests allows)."""
    config = config or HttpConfig.from_env()
    parts = urllib.parse.urlsplit(base_url)
    key = (f"{parts.scheme}://{parts.netloc}", config)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = EnvironmentCachingSession()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=_retry(config))
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = f"modelyard/{__version__}"
            if config.token:
                session.headers["Authorization"] = f"Bearer {config.token}"
            elif config.username is not None and config.password is not None:
                session.auth = (config.username, config.password)
            session.verify = config.verify
            _sessions[key] = session
        return session


def call(
    base_url: str,
    method: str,
    path: str,
    *,
    json_body: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    config: HttpConfig | None = None,
) -> dict[str, Any]:
    """One API call; the parsed JSON answer, or `RestException` / `ModelyardException` on an error.

    GET sends `params` as a query string (lists become repeated keys, None values are dropped);
    every other method sends `json_body` as JSON, DELETE included (MLflow's DELETEs carry bodies).
    """
    config = config or HttpConfig.from_env()
    url = base_url.rstrip("/") + "/" + path.lstrip("/")
    kwargs: dict[str, Any] = {"timeout": (CONNECT_TIMEOUT, config.read_timeout)}
    if method.upper() == "GET":
        kwargs["params"] = query_pairs(params or json_body or {})
    else:
        kwargs["json"] = dict(json_body or {})
    try:
        response = session_for(base_url, config).request(method.upper(), url, **kwargs)
    except requests.exceptions.RetryError as exc:
        raise ModelyardException(
            f"{method} {url} kept failing after {config.max_retries} retries: {exc}",
            errors.TEMPORARILY_UNAVAILABLE,
        ) from exc
    except requests.exceptions.RequestException as exc:
        raise ModelyardException(f"{method} {url} failed: {exc}", errors.TEMPORARILY_UNAVAILABLE) from exc
    return parse_response(response)


def query_pairs(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if item is None:
                continue
            if isinstance(item, bool):
                item = "true" if item else "false"
            pairs.append((key, str(item)))
    return pairs


def parse_response(response: requests.Response) -> dict[str, Any]:
    if 200 <= response.status_code < 300:
        if not response.content:
            return {}
        try:
            body = response.json()
        except ValueError as exc:
            raise ModelyardException(
                f"{response.request.method} {response.url} answered {response.status_code} "
                f"with a body that is not JSON: {response.text[:200]!r}"
            ) from exc
        return body if isinstance(body, dict) else {"value": body}
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and "error_code" in payload:
        raise RestException(payload, status_code=response.status_code)
    raise ModelyardException(
        f"{response.request.method} {response.url} answered HTTP {response.status_code}: "
        f"{response.text[:500]}",
        _code_for_status(response.status_code),
        status_code=response.status_code,
    )


def no_such_route(exc: ModelyardException) -> bool:
    """Whether a call failed because the server has no such endpoint (an MLflow server asked for one of
    modelyard's own): MLflow's JSON ENDPOINT_NOT_FOUND, or a 404/405 that is not JSON at all."""
    if isinstance(exc, RestException):
        return exc.error_code == errors.ENDPOINT_NOT_FOUND
    return exc.details.get("status_code") in (404, 405)


def _code_for_status(status: int) -> str:
    for code, code_status in errors.HTTP_STATUS.items():
        if code_status == status:
            return code
    return errors.INTERNAL_ERROR if status >= 500 else errors.BAD_REQUEST
