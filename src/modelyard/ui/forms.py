"""HTML form bodies (`application/x-www-form-urlencoded`), read without a multipart dependency.

The UI's forms carry a few short fields, so a body is read whole, capped at `MAX_FORM_BYTES`
(a larger one is a 413), and decoded as UTF-8 (anything else is a 400). Starlette caches the body
on the request, so the CSRF check and the route's `FormFields` dependency read it once.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Request

from modelyard import errors
from modelyard.exceptions import ModelyardException

MAX_FORM_BYTES = 256 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


async def read_form(request: Request) -> dict[str, str]:
    """The form's fields (the last value wins for a repeated name); {} for a body of another type."""
    return dict(await read_form_pairs(request))


async def read_form_pairs(request: Request) -> list[tuple[str, str]]:
    """The form's fields in order, repeated names included (checkboxes); [] for a body of another type."""
    if not request.headers.get("content-type", "").startswith(FORM_TYPE):
        return []
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise ModelyardException("The form is too large.", errors.BAD_REQUEST)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ModelyardException("The form is too large.", errors.BAD_REQUEST)
    try:
        text = body.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelyardException(f"The form is not valid UTF-8 form data: {exc}", errors.BAD_REQUEST) from exc


FormFields = Annotated[dict[str, str], Depends(read_form)]


def field(form: dict[str, str], name: str) -> str:
    """A required field, stripped; a 400 naming it when it is missing or blank."""
    value = form.get(name, "").strip()
    if not value:
        raise ModelyardException(f"Fill in '{name}'.", errors.INVALID_PARAMETER_VALUE)
    return value
