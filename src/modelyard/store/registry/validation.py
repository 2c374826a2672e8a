"""Input rules of the registry API (names, versions, aliases, tags), as pure functions."""

from __future__ import annotations

import re
from typing import Any

from modelyard.exceptions import ModelyardException
from modelyard.protocol.validation import check_encodable, validate_key, validate_string_value

MAX_MODEL_NAME_LENGTH = 256
MAX_ALIAS_LENGTH = 255
MAX_REGISTRY_TAG_VALUE_LENGTH = 5000
MAX_DESCRIPTION_LENGTH = 5000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# `v3` would be ambiguous with version 3 in `models:/name@v3`; `latest` is a reserved URI word.
_RESERVED_ALIAS = re.compile(r"^(?:[vV]\d+|latest)$", re.IGNORECASE)


def validate_model_name(name: Any) -> str:
    if not isinstance(name, str) or name == "":
        raise ModelyardException.invalid_parameter("Registered model name cannot be empty.")
    if len(name) > MAX_MODEL_NAME_LENGTH:
        raise ModelyardException.invalid_parameter(
            f"Registered model name is {len(name)} characters long; the limit is {MAX_MODEL_NAME_LENGTH}."
        )
    if _CONTROL.search(name):
        raise ModelyardException.invalid_parameter(
            f"Invalid registered model name {name!r}: control characters are not allowed."
        )
    return check_encodable(name, "registered model name")


def parse_version(version: Any) -> int:
    """Versions travel as strings ("3"); anything but a positive integer is a 400, as in MLflow."""
    text = str(version).strip() if version is not None else ""
    if not text.isdigit() or int(text) < 1 or int(text) > 2**31 - 1:
        raise ModelyardException.invalid_parameter(
            f"Parameter 'version' must be an integer, got '{version}'."
        )
    return int(text)


def validate_alias(alias: Any) -> str:
    if not isinstance(alias, str) or alias == "":
        raise ModelyardException.invalid_parameter("Registered model alias name cannot be empty.")
    if len(alias) > MAX_ALIAS_LENGTH:
        raise ModelyardException.invalid_parameter(
            f"Registered model alias name '{alias[:50]}...' exceeds the maximum length of {MAX_ALIAS_LENGTH}."
        )
    if _RESERVED_ALIAS.match(alias):
        raise ModelyardException.invalid_parameter(
            f"Invalid alias name: '{alias}'. Aliases cannot be of the form 'v<number>' or 'latest'."
        )
    validate_key(alias, "alias")
    return alias


def validate_tag(key: Any, value: Any) -> tuple[str, str]:
    validate_key(key, "tag")
    validate_string_value(value, f"tag '{key}'", MAX_REGISTRY_TAG_VALUE_LENGTH)
    return key, value


def validate_description(description: Any) -> str | None:
    if description is None:
        return None
    return validate_string_value(description, "description", MAX_DESCRIPTION_LENGTH)
