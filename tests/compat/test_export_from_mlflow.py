"""Export from a real `mlflow server` (the compat session's reference server) into modelyard (issue #19)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.lifecycle import cli, log_runs, snapshot


def test_export_from_a_real_mlflow_server_imports_into_modelyard(
    mlflow_server: str, tracking_server: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment, model = f"moving-{uuid.uuid4().hex[:6]}", f"promo-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("EXPORT_TMP", str(tmp_path / "snap"))
    log_runs(mlflow_server, tmp_path, experiment, model)
    bundle = str(tmp_path / "from-mlflow")
    cli("export", "--tracking-uri", mlflow_server, "--experiments", experiment, "--models", model, "--output", bundle)
    expected = snapshot(mlflow_server, experiment, model)
    target = tracking_server(workers=1)
    cli("import", bundle, "--tracking-uri", target)
    assert snapshot(target, experiment, model) == expected
