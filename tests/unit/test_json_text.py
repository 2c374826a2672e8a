"""JSON text from outside: every failure is a ValueError, nesting too deep included."""

from __future__ import annotations

import pytest

from modelyard.protocol import json_text


@pytest.mark.parametrize("text", ["[" * 5000, "[" * 5000 + "]" * 5000, '{"a":' * 3000 + "1" + "}" * 3000, "{", b"\xff"])
def test_bad_json_is_a_value_error(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        json_text.loads(text)


def test_good_json_parses_as_the_standard_library_does() -> None:
    text = '{"a": [1, 2.5, NaN, "x", null], "b": {"c": true}}'
    parsed = json_text.loads(text)
    assert parsed["a"][:2] == [1, 2.5] and parsed["a"][3:] == ["x", None] and parsed["b"] == {"c": True}
    assert json_text.loads("[" * 500 + "]" * 500) is not None  # deep, but within the parser's reach
