"""The one artifact-repository interface, shared by the local folder, S3 and the HTTP (proxy) client.

Two audiences use it: clients (log/list/download/delete whole files and folders) and the artifacts
service, which streams request bodies in and responses out through `open_write` / `open_read` so a
file of any size passes in bounded memory. Subclasses implement the small abstract core; folder
upload, folder download and path checks live here once.
"""

from __future__ import annotations

import abc
import os
import posixpath
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from modelyard import errors
from modelyard.artifact_repos.paths import safe_relative_path
from modelyard.exceptions import ModelyardException

#: Size of one streamed chunk and of one multipart part (S3's minimum part size is 5 MiB).
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
#: Files transferred at once by folder upload/download; small files are latency-bound.
TRANSFER_THREADS = 8
#: MLflow's client recognises this exact message prefix and falls back to a single PUT.
MULTIPART_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"
#: What MLflow answers (501) when presigned downloads are off or the store cannot sign URLs.
PRESIGNED_DOWNLOAD_UNSUPPORTED = "Presigned download is not supported for the current artifact repository"


@dataclass(frozen=True)
class FileInfo:
    """One entry of a listing; `file_size` is None for directories (MLflow omits the field)."""

    path: str
    is_dir: bool
    file_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "is_dir": self.is_dir}
        if self.file_size is not None and not self.is_dir:
            out["file_size"] = self.file_size
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileInfo:
        size = data.get("file_size")
        return cls(
            str(data["path"]), bool(data.get("is_dir", False)), int(size) if size is not None else None
        )


@dataclass
class FolderListing:
    """What one listing of several folders found (`ArtifactRepository.list_folders`), for gc: per
    folder, its files and their bytes as `walk` counts them."""

    paths: list[str]
    objects: list[int]
    bytes: list[int]
    #: Every key found in the folders, for a delete of exactly those (`delete_listed`); None where the
    #: store deletes folder by folder.
    keys: list[str] | None = None


@dataclass
class ArtifactStream:
    """An open artifact for reading: iterate `chunks`, or call `readinto` until it returns 0 (one of the
    two, not both), then `close()`."""

    size: int | None
    chunks: Iterator[bytes]
    closer: Any = None
    #: Fills the caller's buffer with the next bytes and returns how many (0 at the end): a reader that
    #: reuses one buffer (`runtime.thread_send`) then allocates nothing per chunk. None where the source
    #: offers no such read.
    readinto: Callable[[memoryview], int] | None = None

    def close(self) -> None:
        if self.closer is not None:
            self.closer()


class ArtifactWriter(abc.ABC):
    """A destination being written: `write` chunks, then exactly one of `commit` / `abort`.

    Until `commit` nothing is visible at the destination; `abort` (or a crash) leaves nothing behind.
    """

    @abc.abstractmethod
    def write(self, data: bytes) -> None: ...

    def writelines(self, chunks: Iterable[bytes]) -> None:
        """Write a batch of chunks in one call (the proxy hands over ~1 MiB of request chunks per thread
        hop). Chunks are written one by one, never joined first: a join would copy every byte once more."""
        for chunk in chunks:
            self.write(chunk)

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def abort(self) -> None: ...


@dataclass(frozen=True)
class MultipartCredential:
    url: str
    part_number: int
    headers: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "part_number": self.part_number, "headers": self.headers}


@dataclass(frozen=True)
class MultipartUpload:
    upload_id: str
    credentials: list[MultipartCredential]

    def to_dict(self) -> dict[str, Any]:
        return {"upload_id": self.upload_id, "credentials": [c.to_dict() for c in self.credentials]}


@dataclass(frozen=True)
class PresignedDownload:
    """A URL the client GETs (with `headers`) straight from the store, and the file's size: MLflow's
    client reads the file through Range requests on the URL, and needs the size to plan them."""

    url: str
    file_size: int
    headers: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "headers": self.headers, "file_size": self.file_size}


def multipart_unsupported() -> ModelyardException:
    return ModelyardException(MULTIPART_UNSUPPORTED, errors.NOT_IMPLEMENTED)


def presigned_download_unsupported() -> ModelyardException:
    return ModelyardException(PRESIGNED_DOWNLOAD_UNSUPPORTED, errors.NOT_IMPLEMENTED)


def check_local_tree(local_dir: str) -> list[tuple[str, str]]:
    """(local file, relative POSIX dir) for every file under `local_dir`, refusing any symlink.

    The whole tree is checked before the first upload, so a refused folder uploads nothing. A
    symlink could point anywhere on the client's (or the server's) disk, so it is never followed.
    """
    if os.path.islink(local_dir):
        raise ModelyardException(f"Refusing to upload symlink {local_dir!r}", errors.INVALID_PARAMETER_VALUE)
    if not os.path.isdir(local_dir):
        raise ModelyardException(f"{local_dir!r} is not a directory", errors.INVALID_PARAMETER_VALUE)
    found: list[tuple[str, str]] = []
    for root, dirnames, filenames in os.walk(local_dir, followlinks=False):
        rel = os.path.relpath(root, local_dir)
        rel_posix = "" if rel == "." else rel.replace(os.sep, "/")
        for name in [*dirnames, *filenames]:
            full = os.path.join(root, name)
            if os.path.islink(full):
                raise ModelyardException(
                    f"Refusing to upload symlink {full!r} (symlinks are not followed)",
                    errors.INVALID_PARAMETER_VALUE,
                )
        for name in filenames:
            full = os.path.join(root, name)
            if not os.path.isfile(full):
                raise ModelyardException(f"{full!r} is not a regular file", errors.INVALID_PARAMETER_VALUE)
            found.append((full, rel_posix))
    return found


class ArtifactRepository(abc.ABC):
    """Artifacts under one root URI; every relative path is validated by `safe_relative_path`."""

    def __init__(self, artifact_uri: str) -> None:
        self.artifact_uri = artifact_uri

    # ---- the abstract core --------------------------------------------------------------------
    @abc.abstractmethod
    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        """Upload one local file to `<root>/<artifact_path>/<basename>`."""

    @abc.abstractmethod
    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """Direct children of `path`, with paths relative to the root; [] for a file or a missing path."""

    @abc.abstractmethod
    def _download_file(self, remote_path: str, local_path: str) -> None: ...

    @abc.abstractmethod
    def delete_artifacts(self, path: str | None = None) -> None: ...

    @abc.abstractmethod
    def open_read(self, path: str) -> ArtifactStream:
        """Stream a file; RESOURCE_DOES_NOT_EXIST when it is missing or a directory."""

    @abc.abstractmethod
    def open_write(self, path: str, content_length: int | None = None) -> ArtifactWriter: ...

    def write_bytes(self, path: str, data: bytes) -> None:
        """Store a small body whole as `path`: visible only once all of it is written."""
        writer = self.open_write(path, len(data))
        try:
            writer.write(data)
            writer.commit()
        except BaseException:
            writer.abort()
            raise

    # ---- deferred set-up (S3 builds its client on first use) -----------------------------------
    @property
    def needs_warm_up(self) -> bool:
        """Whether the first request would still pay for a set-up `warm_up` can do ahead of it."""
        return False

    def warm_up(self) -> None:
        """Do that set-up now (blocking). The artifacts service calls it in the background once another
        of its workers needed it (`modelyard.runtime.warmup`), never at start-up: an idle worker stays small."""
        return None

    # ---- multipart (only S3 has it) -----------------------------------------------------------
    @property
    def supports_multipart(self) -> bool:
        return False

    def create_multipart_upload(self, path: str, num_parts: int) -> MultipartUpload:
        raise multipart_unsupported()

    def complete_multipart_upload(self, path: str, upload_id: str, parts: Sequence[dict[str, Any]]) -> None:
        raise multipart_unsupported()

    def abort_multipart_upload(self, path: str, upload_id: str) -> None:
        raise multipart_unsupported()

    # ---- presigned downloads (only S3 has them) ------------------------------------------------
    @property
    def supports_presigned_downloads(self) -> bool:
        return False

    def presigned_download(self, path: str, expires_in: int, endpoint_url: str | None = None) -> PresignedDownload:
        """A time-limited GET URL for the file `path` (RESOURCE_DOES_NOT_EXIST when there is no such file),
        signed for `endpoint_url` (the store's address as clients reach it) or the store's own endpoint."""
        raise presigned_download_unsupported()

    # ---- shared behaviour ---------------------------------------------------------------------
    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Upload a folder tree under `artifact_path`; refuses symlinks before uploading anything."""
        base = safe_relative_path(artifact_path)
        files = check_local_tree(local_dir)
        jobs = [(full, posixpath.join(base, rel) if base and rel else base or rel) for full, rel in files]
        self._run_parallel(lambda job: self.log_artifact(job[0], job[1] or None), jobs)

    def is_dir(self, path: str) -> bool:
        return path == "" or bool(self.list_artifacts(path))

    def download_artifacts(self, artifact_path: str = "", dst_path: str | None = None) -> str:
        """Download a file or a whole folder; returns the local path of what was asked for."""
        rel = safe_relative_path(artifact_path)
        dst = os.path.abspath(dst_path) if dst_path else tempfile.mkdtemp(prefix="modelyard-artifacts-")
        os.makedirs(dst, exist_ok=True)
        if self.is_dir(rel):
            files = self._walk_files(rel)
            local_root = os.path.join(dst, *rel.split("/")) if rel else dst
            os.makedirs(local_root, exist_ok=True)
            self._run_parallel(lambda f: self._download_to(f, dst), files)
            return local_root
        return self._download_to(rel, dst)

    def _download_to(self, remote: str, dst: str) -> str:
        local = os.path.join(dst, *remote.split("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        self._download_file(remote, local)
        return local

    def walk(self, path: str | None = None) -> Iterator[FileInfo]:
        """Every file below `path`, with its size, one listing at a time (bounded memory for gc and
        the storage report); a store with a flat listing overrides it."""
        pending = [safe_relative_path(path)]
        while pending:
            current = pending.pop()
            for info in self.list_artifacts(current or None):
                if info.is_dir:
                    pending.append(info.path)
                else:
                    yield info

    # ---- many folders at once (gc) ---------------------------------------------------------------
    def at_root(self, path: str) -> tuple[ArtifactRepository, str]:
        """The folder `path` as (a repository at the top of this store, the folder's path in it). S3
        answers with its bucket, so every location in one bucket shares one repository whose
        `list_folders` covers them together; elsewhere it is this repository and `path`."""
        return self, path

    def list_folders(self, paths: Sequence[str]) -> FolderListing:
        """Every file under each of `paths` (a store that can list many folders in a few requests
        overrides it); by default one `walk` per folder."""
        listing = FolderListing(list(paths), [0] * len(paths), [0] * len(paths))
        for index, path in enumerate(paths):
            for info in self.walk(path or None):
                listing.objects[index] += 1
                listing.bytes[index] += int(info.file_size or 0)
        return listing

    def delete_listed(self, listing: FolderListing) -> None:
        """Delete what `listing` found; by default each of its folders whole (`delete_artifacts`)."""
        for path in listing.paths:
            self.delete_artifacts(path or None)

    def _walk_files(self, rel: str) -> list[str]:
        return [info.path for info in self.walk(rel)]

    @staticmethod
    def _run_parallel(func: Any, items: Sequence[Any]) -> None:
        if len(items) <= 1:
            for item in items:
                func(item)
            return
        with ThreadPoolExecutor(max_workers=min(TRANSFER_THREADS, len(items))) as pool:
            # list() re-raises the first failure.
            list(pool.map(func, items))
