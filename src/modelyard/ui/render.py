"""Rendering: one Jinja2 environment (autoescaping everything), compressed HTML responses, error pages.

Routes build a context and call `page(request, "runs.html", ...)`, for a whole page or a fragment
that htmx swaps in. It answers with the UI's
Content-Security-Policy, which allows scripts and styles from this origin only: no inline scripts,
no `eval`. A `ModelyardException` or a bad query-string value raised by a UI route becomes an HTML
error page with the exception's status (`UiRoute`), never a 500 or a JSON body in the browser.
"""

from __future__ import annotations

import gzip
import logging
import math
import re
from collections.abc import Callable, Coroutine
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.responses import Response

from modelyard import errors
from modelyard.auth.identity import current_identity
from modelyard.exceptions import ModelyardException
from modelyard.runtime.warmup import UI_TEMPLATES_WARM
from modelyard.ui import csrf
from modelyard.ui.assets import AssetTable
from modelyard.ui.markdown import render_markdown

log = logging.getLogger("modelyard.ui")

TEMPLATES_DIR = Path(__file__).parent / "templates"
#: Same origin only; `data:`/`blob:` images for chart exports and previews; no framing by anyone.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: Responses under this size are sent as they are: gzip's header costs more than it saves.
_COMPRESS_MIN_BYTES = 1024

_assets: AssetTable | None = None
_env: Environment | None = None
#: Every template compiled in this worker (`compile_all`).
_all_compiled = False


def assets() -> AssetTable:
    global _assets
    if _assets is None:
        _assets = AssetTable()
    return _assets


def environment() -> Environment:
    """The worker's Jinja2 environment, built on first use (templates compile once per worker)."""
    global _env
    if _env is None:
        env = Environment(
            loader=FileSystemLoader(TEMPLATES_DIR),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        env.globals["asset"] = assets().url
        env.filters["num"] = format_number
        env.filters["timestamp"] = format_timestamp
        env.filters["duration"] = format_duration
        env.filters["markdown"] = render_markdown
        env.filters["two_lines"] = two_lines
        _env = env
    return _env


def compile_all() -> None:
    """Compile every template now. Jinja compiles a template on its first render, ~10-100 ms each
    (~0.3 s of CPU for all of them), which the first load of each page in each worker would pay; the
    UI's warm-up (`modelyard.ui.warm_ups`) calls this in the background once any worker served a page."""
    global _all_compiled
    env = environment()
    for name in env.list_templates():
        env.get_template(name)
    _all_compiled = True


def all_compiled() -> bool:
    return _all_compiled


# --- filters -------------------------------------------------------------------------------------
def format_number(value: Any) -> str:
    """A metric for a table cell: 6 significant digits, never 17; integers as integers."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def format_timestamp(millis: int | None) -> Markup:
    """A `<time>` element: UTC in the page (and on hover); app.js rewrites the text to local time."""
    if not millis:
        return Markup("")
    moment = datetime.fromtimestamp(millis / 1000, tz=timezone.utc)
    iso = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    text = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{0}" title="{1}">{1}</time>').format(iso, text)


_WORD_END = re.compile(r"[_./:\- ]")


def two_lines(key: str) -> Markup:
    """A column header's key as two unbreakable halves split after the `_ . / - :` or space nearest its
    middle, so a narrow column shows `training_` over `accuracy_score`, never `accuracy_sc` over `ore`,
    and never a third line; one line when the column is wide enough. Escaped."""
    middle = len(key) / 2
    cuts = [m.end() for m in _WORD_END.finditer(key) if m.end() < len(key)]
    if not cuts:
        return Markup("<span>{}</span>").format(key)
    cut = min(cuts, key=lambda end: abs(end - middle))
    return Markup("<span>{}</span><wbr><span>{}</span>").format(key[:cut], key[cut:])


def format_duration(millis: int | None) -> str:
    if millis is None or millis < 0:
        return ""
    seconds = millis / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


# --- responses -----------------------------------------------------------------------------------
def html_response(request: Request, html: str, status_code: int = 200) -> Response:
    """HTML with the UI's security headers, gzipped when the browser accepts it and it pays."""
    body = html.encode()
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
        "Vary": "Accept-Encoding",
    }
    if len(body) >= _COMPRESS_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=5, mtime=0)
        headers["Content-Encoding"] = "gzip"
    response = Response(body, status_code=status_code, media_type="text/html; charset=utf-8", headers=headers)
    csrf.set_cookie(request, response)
    return response


def render(request: Request, template: str, **context: Any) -> str:
    if not _all_compiled:
        UI_TEMPLATES_WARM.set()  # the UI is in use: every worker compiles the rest in the background
    context.setdefault("request", request)
    context.setdefault("csrf_token", csrf.token_for(request))
    # The layout's account corner: shown only when auth is on and someone is signed in.
    context.setdefault("auth_on", getattr(request.app.state, "auth", None) is not None)
    context.setdefault("me", current_identity(request))
    return environment().get_template(template).render(**context)


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """A template as a response: a whole page (extends base.html) or a fragment htmx swaps in."""
    return html_response(request, render(request, template, **context), status_code)


def error_page(request: Request, status_code: int, message: str) -> Response:
    """The error as HTML: a whole page for a navigation, a small notice for an htmx request."""
    template = "error_fragment.html" if request.headers.get("hx-request") else "error.html"
    return html_response(request, render(request, template, status_code=status_code, message=message), status_code)


def refusal_page(scope: dict[str, Any], exc: ModelyardException) -> Response:
    """The auth middleware's refusal of a UI page or form (401, 403, 429) as the UI's error page,
    not MLflow's JSON: what a browser should show (`app.state.page_error`, see `modelyard.ui.mount`)."""
    response = error_page(Request(scope), exc.http_status, exc.message)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


class UiRoute(APIRoute):
    """A route whose failures are HTML pages: what a browser shows, with the right status.

    `ModelyardException` (bad filter, unknown run, ...) keeps its MLflow status; FastAPI's own
    parameter validation is a 400. Anything else stays a server fault and goes to the app's handlers.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ModelyardException as exc:
                if exc.http_status >= 500:
                    log.error("%s %s failed: %s", request.method, request.url.path, exc.message, exc_info=exc)
                return error_page(request, exc.http_status, exc.message)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', '')}" for e in exc.errors()
                )
                return error_page(request, 400, f"Invalid request: {problems}")

        return handle


def bad_request(message: str) -> ModelyardException:
    """A bad query-string value: shown on the page as a 400."""
    return ModelyardException(message, errors.INVALID_PARAMETER_VALUE)
