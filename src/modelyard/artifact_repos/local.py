"""Artifacts in a local folder (`file:///...` or a plain path): the embedded default and tests.

Writes go to a hidden temp file in the destination folder and become visible with one atomic
`os.replace`, so a reader never sees half a file and a cut-off upload leaves nothing. Every resolved
path is checked to stay under the root after symlinks are resolved, so a symlink planted inside the
root cannot redirect a write elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from urllib.parse import unquote, urlparse

from modelyard import errors
from modelyard.artifact_repos.base import (
    DEFAULT_CHUNK_SIZE,
    ArtifactRepository,
    ArtifactStream,
    ArtifactWriter,
    FileInfo,
)
from modelyard.artifact_repos.paths import join, safe_relative_path
from modelyard.exceptions import ModelyardException


def local_path_from_uri(uri: str) -> str:
    """`file:///a/b`, `file:a/b` or `a/b` -> an absolute local path."""
    if uri.startswith("file:"):
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise ModelyardException(
                f"Remote file URIs are not supported: {uri}", errors.INVALID_PARAMETER_VALUE
            )
        return os.path.abspath(unquote(parsed.path))
    return os.path.abspath(uri)


@contextlib.contextmanager
def file_system_errors(path: str) -> Iterator[None]:
    """What the file system refuses, as MLflow-shaped errors: the request's mistakes (a parent that is
    a file, a name too long) are 400s; a full disk or quota is 507 (RESOURCE_EXHAUSTED), which the
    mlflow client does not retry for minutes. Anything else stays an OSError (a server fault)."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise ModelyardException.invalid_parameter(
                f"Cannot write artifact {path!r}: a folder on its path is a file, or the path is a folder."
            ) from exc
        if exc.errno == errno.ENAMETOOLONG:
            raise ModelyardException.invalid_parameter(
                f"Cannot write artifact {path[:300]!r}: a name on its path is longer than the file system "
                "allows (255 bytes)."
            ) from exc
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise ModelyardException(
                f"Cannot write artifact {path!r}: the artifact store is out of space ({exc.strerror}).",
                errors.RESOURCE_EXHAUSTED,
            ) from exc
        raise


class _LocalWriter(ArtifactWriter):
    def __init__(self, final_path: str, shown_path: str | None = None) -> None:
        self._final = final_path
        self._shown = shown_path or os.path.basename(final_path)
        folder = os.path.dirname(final_path)
        with file_system_errors(self._shown):
            os.makedirs(folder, exist_ok=True)
            fd, self._tmp = tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=folder)
        self._file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        with file_system_errors(self._shown):
            self._file.write(data)

    def commit(self) -> None:
        try:
            with file_system_errors(self._shown):
                self._file.close()
                os.replace(self._tmp, self._final)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        self._file.close()
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass


def _read_chunks(handle: object, chunk_size: int) -> Iterator[bytes]:
    while True:
        data = handle.read(chunk_size)  # type: ignore[attr-defined]
        if not data:
            return
        yield data


class LocalArtifactRepository(ArtifactRepository):
    def __init__(self, artifact_uri: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        super().__init__(artifact_uri)
        self.root = local_path_from_uri(artifact_uri)
        self.chunk_size = chunk_size

    def _resolve(self, path: str | None) -> str:
        rel = safe_relative_path(path)
        full = os.path.join(self.root, *rel.split("/")) if rel else self.root
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(full)
        if real != real_root and not real.startswith(real_root + os.sep):
            raise ModelyardException(
                f"Artifact path {path!r} escapes the artifact root", errors.PERMISSION_DENIED
            )
        return full

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        dest = self._resolve(join("", artifact_path, os.path.basename(local_file)))
        with open(local_file, "rb") as src:
            writer = _LocalWriter(dest)
            try:
                with file_system_errors(dest):
                    shutil.copyfileobj(src, writer._file, self.chunk_size)
            except BaseException:
                writer.abort()
                raise
            writer.commit()

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        rel = safe_relative_path(path)
        folder = self._resolve(rel)
        if not os.path.isdir(folder):
            return []
        infos: list[FileInfo] = []
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith(".upload-") and entry.name.endswith(".part"):
                    continue
                child = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir(follow_symlinks=False):
                    infos.append(FileInfo(child, True, None))
                elif entry.is_file(follow_symlinks=False):
                    infos.append(FileInfo(child, False, entry.stat(follow_symlinks=False).st_size))
        return sorted(infos, key=lambda i: i.path)

    def _download_file(self, remote_path: str, local_path: str) -> None:
        source = self._resolve(remote_path)
        if not os.path.isfile(source):
            raise ModelyardException.not_found(f"Artifact {remote_path!r} does not exist")
        shutil.copyfile(source, local_path)

    def delete_artifacts(self, path: str | None = None) -> None:
        target = self._resolve(path)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        elif os.path.lexists(target):
            os.unlink(target)

    def open_read(self, path: str) -> ArtifactStream:
        source = self._resolve(path)
        if not os.path.isfile(source):
            raise ModelyardException.not_found(f"Artifact {path!r} does not exist")
        handle = open(source, "rb")  # noqa: SIM115 - closed by the stream's closer
        size = os.fstat(handle.fileno()).st_size
        return ArtifactStream(size, _read_chunks(handle, self.chunk_size), handle.close, handle.readinto)

    def open_write(self, path: str, content_length: int | None = None) -> ArtifactWriter:
        rel = safe_relative_path(path)
        if not rel:
            raise ModelyardException.invalid_parameter("An artifact path is required")
        dest = self._resolve(rel)
        if os.path.isdir(dest):
            raise ModelyardException.invalid_parameter(f"{path!r} is a directory")
        return _LocalWriter(dest, rel)
