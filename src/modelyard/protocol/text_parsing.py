"""JSON and YAML text from outside (a page token, a tag's value, an artifact, an MLmodel file, a request
body read with the standard library) parsed with nesting too deep for the parser reported as what it is:
invalid input.

Python's `json.loads` and PyYAML's pure-Python `safe_load` recurse per nesting level and raise
RecursionError, not ValueError or YAMLError, for text nested deeper than the interpreter's recursion limit
(`[` x 5,000 fits in a tag's 8,000 characters), so a caller that caught the parser's own error let it through
as a 500. orjson, which parses request bodies, has its own depth limit and raises a ValueError.
"""

from __future__ import annotations

import json
from typing import Any


class JsonTooDeep(ValueError):
    """The text nests arrays/objects deeper than the parser goes."""


def loads_json(text: str | bytes) -> Any:
    """`json.loads(text)`; every failure is a ValueError (JSONDecodeError, UnicodeDecodeError, JsonTooDeep)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise JsonTooDeep("JSON nested too deeply") from None


def load_yaml(text: str) -> Any:
    """`yaml.safe_load(text)`; every failure is a `yaml.YAMLError`, nesting too deep included."""
    import yaml

    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise yaml.YAMLError("YAML nested too deeply") from None
