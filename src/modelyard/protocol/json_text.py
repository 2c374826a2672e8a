"""JSON text from outside (a page token, a tag's value, an artifact, a request body read with the
standard library) parsed with nesting too deep for the parser reported as what it is: invalid input.

`json.loads` raises RecursionError, not ValueError, for text nested deeper than the interpreter's recursion
limit (`[` x 5,000 fits in a tag's 8,000 characters), so a caller that catches ValueError for bad JSON let
it through as a 500. orjson, which parses request bodies, has its own depth limit and raises a ValueError.
"""

from __future__ import annotations

import json
from typing import Any


class JsonTooDeep(ValueError):
    """The text nests arrays/objects deeper than the parser goes."""


def loads(text: str | bytes) -> Any:
    """`json.loads(text)`; every failure is a ValueError (JSONDecodeError, UnicodeDecodeError, JsonTooDeep)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise JsonTooDeep("JSON nested too deeply") from None
