"""Helpers for the real-browser UI tests (fixtures are in tests/ui/conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Git-ignored; every browser test leaves its pages here so a person can look at them.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "ui-screenshots"


def screenshot(page: Any, name: str) -> Path:
    """A full-page PNG of what the browser shows now, for a person to look at."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
