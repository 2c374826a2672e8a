"""`modelyard export` / `import` / `models promote` between two gunicorn tracking services (PostgreSQL
and SQLite), with data logged by the real `mlflow` client, (issue #19); the export from a real `mlflow server` is in tests/compat."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from tests.support.lifecycle import bundle_files, cli, log_runs, snapshot

pytestmark = [pytest.mark.postgres, pytest.mark.compat, pytest.mark.slow]


def test_export_import_between_two_stacks_and_again(
    postgres_uri: str, tracking_server: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.setenv("EXPORT_TMP", str(tmp_path / "snap"))
    first = tracking_server(postgres_uri)
    second = tracking_server()  # SQLite, its own artifacts
    logged = log_runs(first, tmp_path)
    # A modelyard server streams the runs (runs/export); MLflow's API page by page makes the same bundle.
    from modelyard.client import run_export
    from modelyard.lifecycle.export import export_bundle

    streams, stream = [], run_export.export_lines
    with monkeypatch.context() as spied:
        spied.setattr(run_export, "export_lines", lambda *args: streams.append(stream(*args)) or streams[-1])
        export_bundle(first, str(tmp_path / "streamed"), ["moving"])
    assert streams and streams[0] is not None
    with monkeypatch.context() as without_stream:
        without_stream.setattr(run_export, "export_lines", lambda store, experiment_id: None)
        export_bundle(first, str(tmp_path / "paged"), ["moving"])
    assert bundle_files(tmp_path / "streamed") == bundle_files(tmp_path / "paged")
    bundle = str(tmp_path / "bundle.tar")
    cli("export", "--tracking-uri", first, "--experiments", "moving", "--models", "promo", "--output", bundle)
    cli("import", bundle, "--tracking-uri", second)
    expected = snapshot(first)
    assert all("MLmodel" in files for files in expected["__model__"]["files"].values())
    assert snapshot(second) == expected

    mlflow.set_tracking_uri(second)
    try:
        loaded = mlflow.pyfunc.load_model("models:/promo@champion")
        assert np.allclose(loaded.predict(logged["x"]), logged["models"][1].predict(logged["x"]))
    finally:
        mlflow.set_tracking_uri(None)

    before = snapshot(second)
    again = cli("import", bundle, "--tracking-uri", second)  # idempotent
    assert "imported 3 runs and 1 models" in again.stdout
    assert snapshot(second) == before

    third = tracking_server()
    promoted = cli("models", "promote", "promo/1", "--from", first, "--to", third, "--alias", "prod")
    assert "promo version 1 on" in promoted.stdout and "(@prod)" in promoted.stdout
    from mlflow import MlflowClient

    copy = MlflowClient(third).get_model_version_by_alias("promo", "prod")
    source = MlflowClient(first).get_model_version("promo", "1")
    # The copy hangs off a copy of its source run (or, for a version without a run, a holder run).
    expected = MlflowClient(first).get_run(source.run_id).info.run_name if source.run_id else "imported-model-files"
    assert copy.current_stage == "Production" and MlflowClient(third).get_run(copy.run_id).info.run_name == expected
