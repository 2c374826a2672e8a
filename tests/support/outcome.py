"""Whether the running test failed, for fixtures that dump server logs only when they help."""

from __future__ import annotations

import pytest


def test_failed(request: pytest.FixtureRequest) -> bool:
    """True when this test's setup or call failed (reports are kept on the item by tests/conftest.py)."""
    node = request.node
    return any(getattr(getattr(node, f"rep_{when}", None), "failed", False) for when in ("setup", "call"))


test_failed.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test
