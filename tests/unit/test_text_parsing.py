"""JSON and YAML text from outside: every failure is the parser's own error, nesting too deep included."""

from __future__ import annotations

import pytest

from modelyard.protocol import text_parsing


@pytest.mark.parametrize("text", ["[" * 5000, "[" * 5000 + "]" * 5000, '{"a":' * 3000 + "1" + "}" * 3000, "{", b"\xff"])
def test_bad_json_is_a_value_error(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        text_parsing.loads_json(text)


def test_good_json_parses_as_the_standard_library_does() -> None:
    text = '{"a": [1, 2.5, NaN, "x", null], "b": {"c": true}}'
    parsed = text_parsing.loads_json(text)
    assert parsed["a"][:2] == [1, 2.5] and parsed["a"][3:] == ["x", None] and parsed["b"] == {"c": True}
    assert text_parsing.loads_json("[" * 500 + "]" * 500) is not None  # deep, but within the parser's reach


@pytest.mark.parametrize("text", ["[" * 5000, "- " * 3000 + "x", "{a: " * 3000 + "1"])
def test_bad_yaml_is_a_yaml_error(text: str) -> None:
    import yaml

    with pytest.raises(yaml.YAMLError):
        text_parsing.load_yaml(text)


def test_good_yaml_parses_as_safe_load_does() -> None:
    assert text_parsing.load_yaml("flavors:\n  sklearn: {pickled_model: model.pkl}\n") == {
        "flavors": {"sklearn": {"pickled_model": "model.pkl"}}
    }
