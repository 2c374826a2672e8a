"""Replacing library methods with autologging wrappers, and keeping logging errors away from the user.

`patch(owner, name, make)` swaps `owner.name` for `make(original)` once per owner and name (calling
`autolog()` again changes options, not patches). `safely(...)` runs a logging step and turns any
exception into a warning (or a debug log when `silent`), so a tracking outage never fails a fit.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable
from typing import Any

_LOG = logging.getLogger("modelyard.autologging")
_patched: set[tuple[int, str]] = set()


def patch(owner: Any, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> bool:
    """Wrap `owner.name` (a class or module attribute); False when it does not exist or is wrapped."""
    key = (id(owner), name)
    original = getattr(owner, name, None)
    if key in _patched or original is None or getattr(original, "__modelyard_autolog__", False):
        return False
    wrapper = make(original)
    functools.update_wrapper(wrapper, original)
    wrapper.__modelyard_autolog__ = True  # type: ignore[attr-defined]
    setattr(owner, name, wrapper)
    _patched.add(key)
    return True


def warn(integration: str, error: BaseException, silent: bool) -> None:
    message = f"Encountered an unexpected error while {integration} autologging: {error!r}"
    if silent:
        _LOG.debug(message, exc_info=error)
    else:
        warnings.warn(message, stacklevel=3)


def safely(integration: str, silent: bool, step: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`step(*args, **kwargs)`, or None after a warning if it raised."""
    try:
        return step(*args, **kwargs)
    except Exception as error:  # autologging must never break the user's training
        warn(integration, error, silent)
        return None


def patch_method(cls: type, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> bool:
    """Wrap a class's method: a plain function is replaced on `cls`; scikit-learn's `available_if`
    descriptor (Pipeline.predict, .score, .fit_predict, ...) keeps its availability check and has
    its function wrapped in place, once for every class that shares it."""
    import inspect

    raw = inspect.getattr_static(cls, name, None)
    if inspect.isfunction(raw):
        return patch(cls, name, make)
    if (
        raw is not None
        and callable(getattr(raw, "check", None))
        and inspect.isfunction(getattr(raw, "fn", None))
    ):
        return patch(raw, "fn", make)
    return False
