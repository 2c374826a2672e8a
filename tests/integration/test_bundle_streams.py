"""A bundle as a streamed `.tar` (a file, stdout/stdin, an S3 object) or an S3 folder (issue #19): the
same bundle as a folder export, imported the same; bad input refused before anything is imported.

Data logged with the real `mlflow` client on the shared SQLite server, imported into the shared
PostgreSQL one; S3 is the session's moto server."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.support.lifecycle import bundle_files, cli, log_runs, snapshot

from modelyard.cli_lifecycle import export_command, import_command
from modelyard.exceptions import ModelyardException
from modelyard.lifecycle import bundle_io

#: A tracking URI nothing listens on: a refused bundle must fail before the target is asked anything.
NOWHERE = "http://127.0.0.1:9"


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The moto endpoint for this process's boto3 clients and the CLI's subprocesses."""
    monkeypatch.setenv("MODELYARD_S3_ENDPOINT_URL", s3_endpoint)
    return s3_endpoint


@pytest.mark.postgres
@pytest.mark.compat
@pytest.mark.slow
def test_tar_s3_and_piped_bundles_hold_and_import_the_same_data(
    shared_sqlite_server, shared_postgres_server, s3_bucket: str, s3_env: str, unique_name: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from mlflow import MlflowClient

    from modelyard.lifecycle.export import export_bundle
    from modelyard.lifecycle.importer import import_bundle

    monkeypatch.setenv("EXPORT_TMP", str(tmp_path / "snap"))
    source, target = shared_sqlite_server.url, shared_postgres_server.url
    experiment, model = f"{unique_name}-exp", f"{unique_name}-model"
    log_runs(source, tmp_path, experiment, model, sklearn=False)

    reference = tmp_path / "folder"
    export_bundle(source, str(reference), [experiment], [model])
    expected = bundle_files(reference)
    assert any(name.endswith("/artifacts/report/weights.bin") for name in expected)
    assert any(name.startswith("models/0/versions/2/files/") and name.endswith("weights.bin") for name in expected)
    local_tar = str(tmp_path / "out" / "bundle.tar")
    (tmp_path / "out").mkdir()
    s3_tar, s3_folder = f"s3://{s3_bucket}/bundles/bundle.tar", f"s3://{s3_bucket}/bundles/folder/"
    from modelyard.client import run_export
    from modelyard.lifecycle import export

    for output in (local_tar, s3_tar, s3_folder, f"s3://{s3_bucket}/bundles/streamed/"):
        with monkeypatch.context() as patched:
            if output == local_tar:
                patched.setattr(export, "STAGED_RUNS", 1)  # each run waits for the one before to be packed
            if output == s3_folder:  # the MLflow-API path (pages), not the runs/export stream
                patched.setattr(run_export, "export_lines", lambda store, experiment_id: None)
            export_bundle(source, output, [experiment], [model])
        with bundle_io.opened(output) as root:
            assert bundle_files(root) == expected, output
    with tarfile.open(local_tar) as tar:  # streamed: pieces as they were done, the manifest last
        names = tar.getnames()
    assert names[-1] == "manifest.json" and not any(name.startswith(("/", "./", "..")) for name in names)
    assert os.listdir(tmp_path / "out") == ["bundle.tar"]  # no partial file left beside it

    import_bundle(s3_tar, target, mapping_file=str(tmp_path / "ids.json"))
    expected_data = snapshot(source, experiment, model)
    assert snapshot(target, experiment, model) == expected_data
    assert len(json.loads((tmp_path / "ids.json").read_text())["runs"]) == 3
    again = cli("import", s3_folder, "--tracking-uri", target)  # the same bundle from the S3 folder: nothing new
    assert "imported 3 runs and 1 models" in again.stdout
    assert snapshot(target, experiment, model) == expected_data

    # export ... --output - | import - : a new experiment name, so the pipe's import is a real one.
    piped = f"{experiment}-piped"
    MlflowClient(source).rename_experiment(MlflowClient(source).get_experiment_by_name(experiment).experiment_id, piped)
    modelyard = str(Path(sys.executable).parent / "modelyard")
    with open(tmp_path / "export.err", "w") as errors:
        exporter = subprocess.Popen(
            [modelyard, "export", "--tracking-uri", source, "--experiments", piped, "--output", "-"],
            stdout=subprocess.PIPE, stderr=errors,
        )  # fmt: skip
        assert exporter.stdout is not None
        importer = subprocess.run([modelyard, "import", "-", "--tracking-uri", target], stdin=exporter.stdout,
                                  capture_output=True, text=True, timeout=300)  # fmt: skip
        exporter.stdout.close()
        assert exporter.wait(timeout=60) == 0, (tmp_path / "export.err").read_text()
    assert importer.returncode == 0, importer.stderr
    assert "imported 3 runs and 0 models" in importer.stdout
    assert "exported 3 runs and 0 models to stdout" in (tmp_path / "export.err").read_text()
    assert snapshot(target, piped, None) == snapshot(source, piped, None)


def _tar(members: list[tuple[str, bytes]], links: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, where in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, where
            tar.addfile(info)
    return out.getvalue()


MANIFEST = json.dumps({"format": "modelyard-bundle", "version": 1, "experiments": ["1"], "models": [], "runs": 1}).encode()
RUN = [
    ("experiments/1/experiment.json", b'{"name": "never-imported", "tags": {}}'),
    ("experiments/1/runs/abc/run.json", b'{"info": {}, "params": {}, "tags": {}}'),
    ("experiments/1/runs/abc/metrics.jsonl", b'{"key":"m","value":1.0,"timestamp":1,"step":0}\n' * 200),
]


def _refused(bundle: str, *more: str) -> str:
    result = CliRunner().invoke(import_command, [bundle, "--tracking-uri", NOWHERE, *more])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    return result.output


def test_a_truncated_tar_is_refused_before_anything_is_imported(tmp_path: Path) -> None:
    whole = _tar([*RUN, ("manifest.json", MANIFEST)])
    (tmp_path / "whole.tar").write_bytes(whole)
    with bundle_io.opened(str(tmp_path / "whole.tar")) as root:  # the whole one opens
        assert bundle_io.manifest(root, "whole.tar")["runs"] == 1
    for cut in (len(whole) // 2, 3 * 512 + 100, 4 * 512):  # inside a file's data, a header, between members
        (tmp_path / "cut.tar").write_bytes(whole[:cut])
        assert "truncated" in _refused(str(tmp_path / "cut.tar"))
    (tmp_path / "garbage.tar").write_bytes(os.urandom(3000))
    assert "not a readable tar" in _refused(str(tmp_path / "garbage.tar"))


@pytest.mark.parametrize(
    "unsafe",
    [{"members": [("../evil", b"x")]}, {"members": [("/tmp/evil-abs", b"x")]}, {"links": {"experiments/x": "/etc"}}],
    ids=["dotdot", "absolute", "link-out"],
)
def test_an_unsafe_tar_member_is_refused(unsafe: dict, tmp_path: Path) -> None:
    data = _tar([*RUN, *unsafe.get("members", []), ("manifest.json", MANIFEST)], unsafe.get("links"))
    (tmp_path / "evil.tar").write_bytes(data)
    assert "unsafe tar member" in _refused(str(tmp_path / "evil.tar"))
    assert not Path("/tmp/evil-abs").exists()
    import tempfile

    assert not (Path(tempfile.gettempdir()) / "evil").exists()


def test_stdin_and_folder_bundles_are_checked(tmp_path: Path) -> None:
    result = CliRunner().invoke(import_command, ["-", "--tracking-uri", NOWHERE], input=b"not a tar at all" * 100)
    assert result.exit_code == 1 and "standard input is not a readable tar" in result.output
    (tmp_path / "empty").mkdir()
    assert "not a modelyard bundle (no manifest.json)" in _refused(str(tmp_path / "empty"))
    for name, data in [*RUN[1:], ("manifest.json", MANIFEST)]:  # experiment.json lost in a partial copy
        (tmp_path / "partial" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "partial" / name).write_bytes(data)
    assert "incomplete: no experiments/1/experiment.json" in _refused(str(tmp_path / "partial"))
    assert "Cannot read" in _refused(str(tmp_path / "missing.tar"))


def test_missing_s3_bundles_and_buckets_are_clear_errors(s3_bucket: str, s3_env: str) -> None:
    assert "not found" in _refused(f"s3://{s3_bucket}/nope.tar")
    assert "no such bundle" in _refused(f"s3://{s3_bucket}/nothing-here/")
    for output in ("s3://no-such-bucket-for-bundles/x.tar", "s3://no-such-bucket-for-bundles/x/"):
        result = CliRunner().invoke(export_command, ["--tracking-uri", NOWHERE, "--experiments", "e", "--output", output])
        assert result.exit_code == 1 and "bucket no-such-bucket-for-bundles" in result.output, result.output
        assert "Traceback" not in result.output


def test_a_failed_export_to_s3_aborts_its_multipart_upload(s3_bucket: str, s3_env: str, tmp_path: Path) -> None:
    from modelyard.artifact_repos.s3_client import get_s3_client

    client = get_s3_client()
    with pytest.raises(RuntimeError, match="cut off"), bundle_io.writing(f"s3://{s3_bucket}/big.tar") as bundle:
        (bundle.root / "experiments").mkdir()
        (bundle.root / "experiments" / "blob").write_bytes(os.urandom(bundle_io.PART_SIZE + 1024 * 1024))
        bundle.done("experiments")
        assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads")  # a part is on its way
        raise RuntimeError("the export was cut off")
    assert not client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads")
    assert client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0


def test_a_failed_export_to_a_local_tar_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(ModelyardException), bundle_io.writing(str(tmp_path / "x.tar")) as bundle:
        (bundle.root / "manifest.json").write_text("{}")
        bundle.done("manifest.json")
        raise ModelyardException.not_found("No experiment named 'e'.")
    assert os.listdir(tmp_path) == []
