"""The headers of an artifact download, decided by the server from the file's name, as MLflow's server does.

Observed on MLflow 3.17's server (both `/get-artifact` and the artifacts API): every download is an
attachment named after the file; text-like files (`MLmodel` and a fixed list of extensions, compared
case-sensitively) are `text/plain` without a charset; everything else takes its registered type, or
`application/octet-stream`; `nosniff` always. The request never chooses the type.

Issue #15 asked for inline display only for an allow-list of safe types; MLflow's rule (no download is
ever inline) is stricter and equally usable (a page can still `fetch()` or `<img src>` an attachment),
so it wins. On top of it modelyard never *names* active content: HTML, XHTML, SVG, JavaScript and CSS
are sent as `text/plain` (MLflow sends their own types, relying on the attachment alone).
"""

from __future__ import annotations

import mimetypes
import re
import urllib.parse

#: Extensions MLflow's server sends as text/plain (and `MLmodel`).
TEXT_EXTENSIONS = frozenset(
    "txt log err cfg conf cnf cf ini properties prop hocon toml yaml yml xml json js py py3 csv tsv md rst ipynb".split()
)
TEXT_FILE_NAMES = frozenset({"MLmodel"})
#: Types a browser would execute or render as a document under our origin.
ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/javascript",
        "application/javascript",
        "text/css",
        "application/xml",
        "text/xml",
    }
)
_TOKEN = re.compile(r"^[A-Za-z0-9!#$&+.^_`|~-]+$")


def media_type(path: str) -> str:
    """The Content-Type of the artifact at `path` (a relative path; only its name counts)."""
    name = path.rsplit("/", 1)[-1]
    extension = name.rsplit(".", 1)[-1] if "." in name else ""
    if name in TEXT_FILE_NAMES or extension in TEXT_EXTENSIONS:
        return "text/plain"
    guessed, _ = mimetypes.guess_type(name, strict=False)
    if guessed is None:
        return "application/octet-stream"
    return "text/plain" if guessed in ACTIVE_TYPES else guessed


def content_disposition(path: str) -> str:
    """`attachment; filename=<name>` (quoted, with an RFC 5987 `filename*` for non-ASCII names, when
    the name is not a plain token)."""
    name = path.rsplit("/", 1)[-1] or "artifact"
    if _TOKEN.match(name):
        return f"attachment; filename={name}"
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "_" for c in name)
    encoded = urllib.parse.quote(name, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def download_headers(path: str) -> dict[str, str]:
    """Every header of a download but its length. The type goes in as a header, not as Starlette's
    `media_type`, which would append `; charset=utf-8` to text types (MLflow sends none)."""
    return {
        "Content-Type": media_type(path),
        "Content-Disposition": content_disposition(path),
        "X-Content-Type-Options": "nosniff",
    }
