"""Static assets: content-hashed URLs, precompressed bodies, cached for a year.

Every file under `ui/static/` is read once per worker (the first time the UI is mounted), hashed and
gzipped in memory. Templates link `asset("app.css")`, which yields `/static/app.3f9c1a2b.css`; a new
release changes the hash, so browsers may cache each URL forever (`immutable`) and a cold page load
fetches each file once. The whole folder is ~150 KB, so holding it in memory is cheaper than any
per-request file I/O.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/static/"
#: Immutable: the URL changes whenever the content does.
CACHE_FOREVER = "public, max-age=31536000, immutable"
_TEXT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@dataclass(frozen=True)
class Asset:
    name: str
    url: str
    body: bytes
    gzipped: bytes
    content_type: str


def _hashed_name(name: str, body: bytes) -> str:
    digest = hashlib.sha256(body).hexdigest()[:12]
    stem, dot, ext = name.rpartition(".")
    return f"{stem}.{digest}.{ext}" if dot else f"{name}.{digest}"


class AssetTable:
    """The static files by logical name (`vendor/htmx-2.0.11.min.js`) and by hashed URL path."""

    def __init__(self, root: Path = STATIC_DIR) -> None:
        self.by_name: dict[str, Asset] = {}
        self.by_url: dict[str, Asset] = {}
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.suffix in {".md", ".txt"}:
                continue
            name = path.relative_to(root).as_posix()
            body = path.read_bytes()
            url = STATIC_PREFIX + _hashed_name(name, body)
            content_type = _TEXT_TYPES.get(path.suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
            asset = Asset(name, url, body, gzip.compress(body, compresslevel=9, mtime=0), content_type)
            self.by_name[name] = asset
            self.by_url[url] = asset

    def url(self, name: str) -> str:
        """The hashed URL of a static file; a typo in a template fails loudly at render time."""
        return self.by_name[name].url
