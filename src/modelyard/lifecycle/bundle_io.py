"""Where a bundle lives, and how one is written and opened: a folder, a `.tar` file, a tar on
stdout/stdin (`-`), an S3 object (`s3://bucket/key.tar`) or an S3 folder (`s3://bucket/prefix/`).

Writing: the export writes files into `BundleWriter.root` and calls `done(path)` once a run's folder,
a model's folder or a single file there is complete. For a folder bundle, root is the folder and
`done` does nothing. For the others, root is a small staging folder: `done` packs the finished piece
(appends it to the tar, which is written as a stream, `tarfile` mode `w|`, or uploads it under the S3
prefix) and removes it, so disk use follows the export's few unfinished runs, not the bundle; `add`
puts a file in from memory (a run's run.json and metrics.jsonl, read from a modelyard server's stream,
never touch the disk). A tar
for S3 goes up as a multipart upload (`PART_SIZE` parts) that is aborted on failure: no object or
half object is left. A local `.tar` is written beside its name and renamed when complete.
`manifest.json` is always written last: a bundle without it is incomplete (an export cut off, a
truncated tar), and import refuses it.

Opening: import needs random access (it lists folders, reads runs ahead), so a tar is unpacked into
a temporary folder member by member as it is read (`tarfile` mode `r|`, one pass over a file, stdin
or the S3 object's body: no copy of the tar itself on disk), each member through tarfile's "data"
filter (no absolute paths, no `..`, no links out, no devices); an S3 folder is downloaded.
"""

from __future__ import annotations

import abc
import contextlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from stat import S_ISDIR, S_ISLNK
from typing import IO, Any

from modelyard.exceptions import ModelyardException

MANIFEST = "manifest.json"
#: Parts of a tar uploaded to S3 (S3 allows 10,000 parts: 80 GB at this size).
PART_SIZE = 8 * 1024 * 1024
#: Bytes copied at a time out of a tar member. (tarfile's own stream buffer stays at its default
#: 10 KB: it copies what it holds on every read and write, so a bigger one costs more.)
STREAM_BUFFER = 1024 * 1024
STDIO = "-"


def is_s3(location: str) -> bool:
    return location.startswith(("s3://", "s3a://"))


def is_tar(location: str) -> bool:
    """A tar stream (a `.tar` path or S3 key, or `-`) rather than a folder (a path, or an S3 prefix)."""
    return location == STDIO or location.rstrip("/") == location and location.endswith(".tar")


class BundleWriter(abc.ABC):
    """Where the export writes: files go under `root`; `done(path)` says the file or folder at
    `root/path` is complete."""

    root: Path
    #: Whether `done` moves pieces out of `root` (False for a folder bundle: nothing to hand over).
    staged = True

    @abc.abstractmethod
    def done(self, path: str) -> None:
        """The file or folder at `root/path` is complete: hand it over (pack or upload it)."""

    def add(self, path: str, data: bytes) -> None:
        """A complete file, from memory (for a folder bundle: written there)."""
        local = self.root / path
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        self.done(path)

    def commit(self) -> None:  # noqa: B027 (a hook: most writers have nothing to finish)
        """The bundle is complete (its manifest is `done`)."""

    def abort(self) -> None:  # noqa: B027 (a hook: most writers leave nothing behind)
        """The export failed: leave nothing that looks complete."""

    def close(self) -> None:  # noqa: B027 (a hook: most writers hold nothing)
        """Free what the writer holds (after commit or abort)."""


class _FolderWriter(BundleWriter):
    staged = False

    def __init__(self, folder: str) -> None:
        self.root = Path(folder)
        self.root.mkdir(parents=True, exist_ok=True)

    def done(self, path: str) -> None:
        pass


class _Staged(BundleWriter):
    """Pieces are written into a staging folder and leave it as soon as they are done."""

    def __init__(self) -> None:
        self._staging = tempfile.TemporaryDirectory(prefix="modelyard-export-")
        self.root = Path(self._staging.name)

    def done(self, path: str) -> None:
        local = self.root / path
        self._pack(local, path)
        if local.is_dir():
            shutil.rmtree(local)
        else:
            local.unlink()

    @abc.abstractmethod
    def _pack(self, local: Path, path: str) -> None:
        """Put the finished file or folder `local` into the bundle at `path`."""

    def close(self) -> None:
        self._staging.cleanup()


class _Output(abc.ABC):
    """The bytes of a tar: `write`, then `commit` or `abort`."""

    @abc.abstractmethod
    def write(self, data: bytes) -> int | None:
        """Take the next bytes of the tar."""

    def commit(self) -> None:  # noqa: B027 (a hook: stdout and files have nothing to finish)
        """The tar is complete."""

    def abort(self) -> None:  # noqa: B027 (a hook)
        """The export failed."""


class _FileOutput(_Output):
    """A local file, written under a temporary name beside it and renamed when complete (a FIFO or
    a device, e.g. /dev/stdout, is written as it is)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.partial = path if os.path.exists(path) and not os.path.isfile(path) else f"{path}.partial-{os.getpid()}"
        try:
            self.file: IO[bytes] = open(self.partial, "wb")  # noqa: SIM115 (closed by commit/abort)
        except OSError as exc:
            raise ModelyardException.invalid_parameter(f"Cannot write {path}: {exc.strerror or exc}") from exc

    def write(self, data: bytes) -> int | None:
        return self.file.write(data)

    def commit(self) -> None:
        self.file.close()
        if self.partial != self.path:
            os.replace(self.partial, self.path)

    def abort(self) -> None:
        self.file.close()
        if self.partial != self.path:
            with contextlib.suppress(OSError):
                os.unlink(self.partial)


class _StdoutOutput(_Output):
    def __init__(self) -> None:
        self.out = sys.stdout.buffer

    def write(self, data: bytes) -> int | None:
        return self.out.write(data)

    def commit(self) -> None:
        self.out.flush()


class _S3Output(_Output):
    """One object, uploaded in parts as the tar is written (`MultipartWriter`: a few parts in flight,
    aborted on failure; a bundle smaller than a part is one PUT at commit)."""

    def __init__(self, uri: str) -> None:
        from modelyard.artifact_repos.s3_client import get_s3_client, parse_s3_uri, s3_errors
        from modelyard.artifact_repos.s3_uploads import MultipartWriter

        bucket, key = parse_s3_uri(uri)
        client = get_s3_client()
        with s3_errors(f"{uri}: bucket {bucket}"):
            client.head_bucket(Bucket=bucket)  # a missing or forbidden bucket fails now, not after the export
        self.writer = MultipartWriter(client, bucket, key, PART_SIZE, None)

    def write(self, data: bytes) -> int | None:
        self.writer.write(data)
        return len(data)

    def commit(self) -> None:
        self.writer.commit()

    def abort(self) -> None:
        self.writer.abort()


class _TarWriter(_Staged):
    def __init__(self, output: _Output) -> None:
        super().__init__()
        self.output = output
        self.tar = tarfile.open(fileobj=output, mode="w|")  # type: ignore[call-overload]

    def _pack(self, local: Path, path: str) -> None:
        _add(self.tar, str(local), path)

    def add(self, path: str, data: bytes) -> None:
        info = tarfile.TarInfo(path)
        info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
        self.tar.addfile(info, io.BytesIO(data))

    def commit(self) -> None:
        self.tar.close()  # the end-of-archive blocks and what is left in tarfile's buffer
        self.output.commit()

    def abort(self) -> None:
        # No end-of-archive blocks after a failure (a cut-off stream must not look whole), and none
        # later either: tarfile's stream would write them when collected.
        self.tar.closed = self.tar.fileobj.closed = True  # type: ignore[union-attr]
        self.output.abort()


def _add(tar: tarfile.TarFile, local: str, name: str) -> None:
    """`local` (a file, or a folder and what it holds) as `name`. Not `TarFile.add`: that looks up
    the owner's user and group names per file (~1 ms a run of the export's CPU); a bundle's entries
    carry none, and a folder gets an entry only when empty (extraction makes the others)."""
    stat = os.lstat(local)
    info = tarfile.TarInfo(name)
    info.mtime = int(stat.st_mtime)
    if S_ISLNK(stat.st_mode):
        return  # the export makes no links; one would point outside the bundle
    if S_ISDIR(stat.st_mode):
        entries = sorted(os.scandir(local), key=lambda entry: entry.name)
        for entry in entries:
            _add(tar, entry.path, f"{name}/{entry.name}")
        if not entries:
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        return
    info.size, info.mode = stat.st_size, 0o644
    with open(local, "rb") as source:
        tar.addfile(info, source)


class _S3FolderWriter(_Staged):
    """Each finished piece is uploaded under the prefix (the artifact repository's parallel uploads)."""

    def __init__(self, uri: str) -> None:
        from modelyard.artifact_repos.s3 import S3ArtifactRepository
        from modelyard.artifact_repos.s3_client import s3_errors

        super().__init__()
        self.repository = S3ArtifactRepository(uri.rstrip("/"))
        with s3_errors(f"{uri}: bucket {self.repository.bucket}"):
            self.repository.client.head_bucket(Bucket=self.repository.bucket)

    def _pack(self, local: Path, path: str) -> None:
        if local.is_dir():
            self.repository.log_artifacts(str(local), path)
        else:
            self.repository.log_artifact(str(local), os.path.dirname(path) or None)


def _writer(output: str) -> BundleWriter:
    if output == STDIO:
        return _TarWriter(_StdoutOutput())
    if is_s3(output):
        return _TarWriter(_S3Output(output)) if is_tar(output) else _S3FolderWriter(output)
    if is_tar(output):
        return _TarWriter(_FileOutput(output))
    return _FolderWriter(output)


@contextlib.contextmanager
def writing(output: str) -> Iterator[BundleWriter]:
    """The bundle at `output` (a folder, a path ending in .tar, `-` for stdout, or an s3:// URI),
    committed when the block ends normally, aborted when it raises."""
    writer = _writer(output)
    try:
        yield writer
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        writer.close()


@contextlib.contextmanager
def opened(bundle: str) -> Iterator[Path]:
    """The bundle as a local folder (a tar is unpacked, an S3 folder downloaded, into a temporary one)."""
    if not is_s3(bundle) and not is_tar(bundle):
        if not (Path(bundle) / MANIFEST).is_file():
            raise ModelyardException.invalid_parameter(f"{bundle} is not a modelyard bundle (no {MANIFEST}).")
        yield Path(bundle)
        return
    with tempfile.TemporaryDirectory(prefix="modelyard-import-") as tmp:
        if bundle == STDIO:
            _unpack(sys.stdin.buffer, tmp, "standard input")
        elif is_s3(bundle):
            _fetch_s3(bundle, tmp)
        else:
            try:
                source = open(bundle, "rb")  # noqa: SIM115
            except OSError as exc:
                raise ModelyardException.invalid_parameter(f"Cannot read {bundle}: {exc.strerror or exc}") from exc
            with source:
                _unpack(source, tmp, bundle)
        if not (Path(tmp) / MANIFEST).is_file():
            raise ModelyardException.invalid_parameter(
                f"{bundle} is not a complete modelyard bundle (no {MANIFEST}: a cut-off export or a truncated copy?)."
            )
        yield Path(tmp)


def _unpack(source: Any, folder: str, name: str) -> None:
    """Member by member as the stream is read. Each member passes tarfile's "data" filter (no links
    out, no devices, no setuid bits) and more: a bundle holds only files and folders under relative
    names, so anything else (a link, a device, an absolute name, a `..`) is refused outright. Files
    are written here rather than by `TarFile.extract`, which also sets owner, mode and times per
    member (~1 ms a run, as much as the import itself)."""
    made: set[str] = {folder}
    try:
        with tarfile.open(fileobj=source, mode="r|") as tar:
            for member in tar:
                if member.name.startswith(("/", "\\")) or ".." in member.name.replace("\\", "/").split("/"):
                    # the data filter would strip a leading / and refuse only a .. that leaves the folder
                    raise tarfile.FilterError(f"{member.name!r} is not a path inside the bundle")
                member = tarfile.data_filter(member, folder)
                if not (member.isfile() or member.isdir()):
                    raise tarfile.FilterError(f"{member.name!r} is neither a file nor a folder")
                target = os.path.join(folder, *member.name.split("/"))
                parent = target if member.isdir() else os.path.dirname(target)
                if parent not in made:
                    os.makedirs(parent, exist_ok=True)
                    made.add(parent)
                if member.isfile():
                    data = tar.extractfile(member)
                    assert data is not None
                    with open(target, "wb") as out:
                        shutil.copyfileobj(data, out, STREAM_BUFFER)
    except tarfile.FilterError as exc:
        raise ModelyardException.invalid_parameter(f"{name}: refused an unsafe tar member: {exc}") from exc
    except (tarfile.TarError, EOFError) as exc:
        raise ModelyardException.invalid_parameter(f"{name} is not a readable tar (truncated or corrupt?): {exc}") from exc


def _fetch_s3(uri: str, folder: str) -> None:
    from modelyard.artifact_repos.s3 import S3ArtifactRepository
    from modelyard.artifact_repos.s3_client import get_s3_client, parse_s3_uri, s3_errors

    if is_tar(uri):
        bucket, key = parse_s3_uri(uri)
        with s3_errors(f"read {uri}"):
            body = get_s3_client().get_object(Bucket=bucket, Key=key)["Body"]
            try:
                _unpack(body, folder, uri)
            finally:
                body.close()
        return
    repository = S3ArtifactRepository(uri.rstrip("/"))
    with s3_errors(f"list {uri}"):
        if not any(True for _ in repository.walk(None)):
            raise ModelyardException.not_found(f"{uri}: no such bundle (nothing under that prefix).")
    repository.download_artifacts("", folder)


def manifest(root: Path, bundle: str) -> dict[str, Any]:
    """The bundle's manifest, once what it names is there (a folder bundle copied in part, or an
    export whose files went elsewhere, is refused before anything is imported)."""
    try:
        found: dict[str, Any] = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelyardException.invalid_parameter(f"{bundle}: unreadable {MANIFEST} ({exc}).") from exc
    if not isinstance(found, dict):
        raise ModelyardException.invalid_parameter(f"{bundle} is not a modelyard bundle.")
    expected = [f"experiments/{e}/experiment.json" for e in found.get("experiments") or []]
    expected += [f"models/{i}/model.json" for i in range(len(found.get("models") or []))]
    missing = [path for path in expected if not (root / path).is_file()]
    if missing:
        raise ModelyardException.invalid_parameter(f"{bundle} is incomplete: no {', '.join(missing[:3])}.")
    return found
