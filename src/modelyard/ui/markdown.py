"""Descriptions as markdown, rendered safely (MLflow keeps a run's in the `mlflow.note.content` tag).

CommonMark via markdown-it-py with raw HTML off: a `<script>` or `<img onerror>` typed into a
description is shown as text. Links may only go to http(s) or relative URLs (no `javascript:`,
`data:`, `file:`, ...); anything else stays as plain text. Images are off too: the page's
Content-Security-Policy would block foreign ones anyway, and a description should not fetch anything.
"""

from __future__ import annotations

import re
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup

_SCHEME = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.\-]*):")
_ALLOWED_SCHEMES = {"http", "https"}
_renderer: MarkdownIt | None = None


def link_allowed(url: str) -> bool:
    """http(s) or a relative URL (no scheme at all); control characters never."""
    if any(ord(c) < 32 for c in url):
        return False
    match = _SCHEME.match(url)
    return match is None or match.group(1).lower() in _ALLOWED_SCHEMES


def _markdown() -> MarkdownIt:
    global _renderer
    if _renderer is None:
        md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
        md.disable("image")
        md.validateLink = link_allowed  # type: ignore[method-assign]

        def open_link(renderer: Any, tokens: list[Any], idx: int, options: Any, env: Any) -> str:
            tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
            return str(renderer.renderToken(tokens, idx, options, env))

        md.add_render_rule("link_open", open_link)
        _renderer = md
    return _renderer


def render_markdown(text: str) -> Markup:
    """The markdown as HTML, safe to put into a page as it is."""
    return Markup(_markdown().render(text or ""))
