"""What a user types in a page's search box, turned into the filter grammar the stores take."""

from __future__ import annotations

from modelyard.ui.render import bad_request


def name_filter(text: str) -> str | None:
    """`q` as the filter grammar's case-insensitive substring match on the name (experiments,
    registered models); None for an empty box."""
    text = text.strip()
    if not text:
        return None
    if "'" not in text:
        return f"name ILIKE '%{text}%'"
    if '"' not in text:
        return f'name ILIKE "%{text}%"'
    raise bad_request("Search for a name with either single or double quotes, not both.")
