"""Many small files in one request: `PUT /api/2.0/mlflow-artifacts/modelyard-bundle/<folder>` (modelyard's own).

A logged model is five or six small files (MLmodel, the pickle, the environment files); MLflow's API takes
them one PUT each, and each costs the server more than its bytes. The body here is an uncompressed tar of
regular files whose names are relative to `<folder>`; the whole bundle is read and checked (safe relative
names, no links or devices, no name twice, within the body limit) before the first file is written, so a
refused bundle writes nothing. Each file is then written as a PUT of it would be (`open_write`, commit).
An MLflow server answers 404: the client remembers that and uploads file by file (`artifact_repos/http.py`).
"""

from __future__ import annotations

import io
import tarfile
from concurrent.futures import ThreadPoolExecutor

from modelyard.artifact_repos.base import ArtifactRepository
from modelyard.artifact_repos.local import LocalArtifactRepository
from modelyard.artifact_repos.paths import join, safe_relative_path
from modelyard.exceptions import ModelyardException

ROUTE = "/modelyard-bundle"
#: Files per bundle: a model folder has a handful; the client sends larger trees file by file.
MAX_FILES = 1000


def read_bundle(body: bytes, folder: str) -> list[tuple[str, bytes]]:
    """(path under the destination, bytes) of every file in the tar `body`, or 400 for anything else."""
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:") as tar:
            for member in tar:
                if member.isdir():
                    continue
                if not member.isreg():
                    raise ModelyardException.invalid_parameter(
                        f"Bundle entry {member.name!r} is not a regular file (links and devices are refused)"
                    )
                name = safe_relative_path(member.name)
                if not name:
                    raise ModelyardException.invalid_parameter("A bundle entry has no file name")
                path = join(folder, name)
                if path in files:
                    raise ModelyardException.invalid_parameter(f"Bundle names {name!r} twice")
                if len(files) >= MAX_FILES:
                    raise ModelyardException.invalid_parameter(f"A bundle holds at most {MAX_FILES} files")
                extracted = tar.extractfile(member)
                files[path] = extracted.read() if extracted is not None else b""
    except (tarfile.TarError, EOFError) as exc:
        raise ModelyardException.invalid_parameter(f"The body is not an uncompressed tar archive: {exc}") from exc
    if not files:
        raise ModelyardException.invalid_parameter("The bundle holds no files")
    return list(files.items())


def write_bundle(repo: ArtifactRepository, files: list[tuple[str, bytes]]) -> None:
    """Each file as its own PUT would store it (blocking: run it in the thread pool). A local folder
    takes them one after the other; an object store's writes are round trips, so they overlap."""
    if isinstance(repo, LocalArtifactRepository) or len(files) == 1:
        for path, data in files:
            repo.write_bytes(path, data)
        return
    with ThreadPoolExecutor(max_workers=min(8, len(files))) as pool:
        list(pool.map(lambda item: repo.write_bytes(*item), files))
