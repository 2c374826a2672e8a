"""Paths and types shared by the chart tests (a uniquely named module: conftest files are not importable)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "modelyard"
PRODUCTION_VALUES = CHART / "ci" / "production-values.yaml"
TOOLS = ROOT / ".tools" / "bin"

Render = Callable[..., list[dict[str, Any]]]
