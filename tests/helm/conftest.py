"""Chart fixtures: the real helm binary (installed offline into .tools/bin on first use) and renders."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_chart_support import CHART, ROOT, TOOLS, Render


@pytest.fixture(scope="session")
def helm() -> Path:
    subprocess.run(["bash", str(ROOT / "infra/tools/install-k8s-tools.sh"), str(TOOLS)], check=True, cwd=ROOT)
    return TOOLS / "helm"


@pytest.fixture(scope="session")
def render(helm: Path) -> Render:
    """Render the chart with helm template; returns the manifests as dicts."""

    def _render(*values_files: Path, chart: Path = CHART, sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        cmd = [str(helm), "template", "rel", str(chart), "--namespace", "ml"]
        for f in values_files:
            cmd += ["-f", str(f)]
        for s in sets:
            cmd += ["--set", s]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        return [d for d in yaml.safe_load_all(out) if d]

    return _render


@pytest.fixture
def chart_copy(tmp_path: Path) -> Path:
    """A private copy of the chart that a test may break."""
    dst = tmp_path / "modelyard"
    shutil.copytree(CHART, dst)
    return dst
