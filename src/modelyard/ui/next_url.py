"""Where to send the browser after signing in (or after a form that names its way back): only a
path on this site, never an open redirect.

The auth middleware sends an unauthenticated page GET to `/login?next=<path and query>`; anyone can
craft such a link, so the value is checked before it becomes a `Location`. Accepted: an absolute
path (`/experiments/1?view=deleted`). Refused (the default page instead): anything with a scheme or
a host (`https://evil`, `//evil`, `javascript:...`), backslashes (browsers read `/\\evil` as
`//evil`), whitespace and control characters (browsers drop tabs and newlines from URLs, so
`/\\t/evil` becomes `//evil`, and CR/LF would split headers), relative paths, over-long values,
and the sign-in and sign-out pages themselves.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

DEFAULT = "/experiments"
MAX_CHARS = 2048
_LOOPS = ("/login", "/logout")


def safe_next(value: object, default: str = DEFAULT) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_CHARS:
        return default
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return default
    if parts.path.rstrip("/") in _LOOPS:
        return default
    return value



def here(request: Any, **params: str) -> str:
    """The request's own path and query with `params` set: what a form on the page names as its way
    back (the page as it was, e.g. with its permissions section open)."""
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k not in params] + list(params.items())
    return request.url.path + ("?" + urlencode(pairs) if pairs else "")
