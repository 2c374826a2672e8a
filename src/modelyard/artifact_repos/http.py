"""Client side of the artifacts API: `http(s)://host/api/2.0/mlflow-artifacts/artifacts/<root>`.

Talks to modelyard's artifacts service or a real `mlflow server --serve-artifacts` alike. Bodies
stream both ways (a file object as the PUT body, `iter_content` on GET), so client memory does not
grow with file size. Files at or above `MODELYARD_MULTIPART_UPLOAD_MIN_SIZE` (default 100 MiB) try the
server's multipart endpoints first (parallel part PUTs to the URLs it hands out) and fall back to
one streamed PUT when the server answers 501/404 or the part URLs are not reachable from here. A
folder of small files (up to `MODELYARD_BUNDLE_UPLOAD_MAX_SIZE`, 4 MiB: a logged model) goes to a
modelyard server as one tar body (`PUT .../modelyard-bundle/<folder>`); MLflow's server answers 404,
remembered for the process, and the folder goes file by file (as after a 400, e.g. a lower body limit).
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from modelyard import errors
from modelyard.artifact_repos.base import (
    ArtifactRepository,
    ArtifactStream,
    ArtifactWriter,
    FileInfo,
    MultipartUpload,
    check_local_tree,
)
from modelyard.artifact_repos.paths import join, safe_relative_path
from modelyard.credentials import credentials_from_env
from modelyard.exceptions import ModelyardException, RestException
from modelyard.http_session import EnvironmentCachingSession

ARTIFACTS_ROUTE = "/api/2.0/mlflow-artifacts/artifacts"
MPU_ROUTE = "/api/2.0/mlflow-artifacts/mpu"
#: modelyard's own: many small files in one tar body (`artifact_proxy/bundles.py`).
BUNDLE_ROUTE = "/api/2.0/mlflow-artifacts/modelyard-bundle"
#: Folders up to this many bytes go as one bundle (`MODELYARD_BUNDLE_UPLOAD_MAX_SIZE`; the server's body
#: limit, 16 MiB by default, must allow it).
BUNDLE_MAX_SIZE = 4 * 1024 * 1024
#: Base URLs that answered a bundle with 404 (MLflow's servers): asked once per process.
_no_bundles: set[str] = set()
_READ_CHUNK = 1024 * 1024
_shared: dict[str, Any] = {}
_shared_lock = threading.Lock()


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _session() -> requests.Session:
    """One pooled session per process, shared by its threads (requests' connection pool is thread-safe),
    so parallel uploads reuse kept-alive connections instead of each new thread opening its own; a
    forked child makes its own. Retries only idempotent reads/deletes."""
    session: requests.Session | None = _shared.get("session")
    if session is None or _shared.get("pid") != os.getpid():
        with _shared_lock:
            session = _shared.get("session")
            if session is None or _shared.get("pid") != os.getpid():
                session = _new_session()
                _shared.update(session=session, pid=os.getpid())
    return session


def _new_session() -> requests.Session:
    session = EnvironmentCachingSession()
    retry = Retry(
        total=_int_env("MODELYARD_HTTP_MAX_RETRIES", 3),
        backoff_factor=0.5,
        status_forcelist=(429, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD", "DELETE"}),
        raise_on_status=False,
    )
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    credentials = credentials_from_env()
    token, user, password = credentials["token"], credentials["username"], credentials["password"]
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    elif user and password:
        session.auth = (user, password)
    return session


def _timeout() -> float:
    return float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT") or 120)


def raise_for_response(response: requests.Response) -> None:
    if response.status_code < 400:
        return
    try:
        payload = response.json()
        if not isinstance(payload, dict):
            raise ValueError
    except ValueError:
        code = errors.RESOURCE_DOES_NOT_EXIST if response.status_code == 404 else errors.INTERNAL_ERROR
        payload = {"error_code": code, "message": response.text[:1000] or response.reason}
    raise RestException(payload, status_code=response.status_code)


def split_artifacts_url(url: str) -> tuple[str, str]:
    """`http://h/p/api/2.0/mlflow-artifacts/artifacts/x/y` -> (`http://h/p`, `x/y`)."""
    base, sep, tail = url.partition(ARTIFACTS_ROUTE)
    if not sep:
        raise ModelyardException.invalid_parameter(f"Not an artifacts service URL: {url!r}")
    return base.rstrip("/"), safe_relative_path(tail.strip("/"))


class _SpoolWriter(ArtifactWriter):
    """Writes to a local temp file and uploads it on commit (the proxy never writes through HTTP)."""

    def __init__(self, repo: HttpArtifactRepository, path: str) -> None:
        self._repo = repo
        self._path = path
        self._file = tempfile.NamedTemporaryFile(delete=False)  # noqa: SIM115

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def commit(self) -> None:
        self._file.close()
        try:
            self._repo._put_file(self._file.name, self._path)
        finally:
            os.unlink(self._file.name)

    def abort(self) -> None:
        self._file.close()
        os.unlink(self._file.name)


class HttpArtifactRepository(ArtifactRepository):
    def __init__(self, artifact_uri: str) -> None:
        super().__init__(artifact_uri.rstrip("/"))
        self.base_url, self.root = split_artifacts_url(self.artifact_uri)

    def _url(self, route: str, path: str) -> str:
        full = join(self.root, path)
        return f"{self.base_url}{route}/{quote(full, safe='/')}" if full else f"{self.base_url}{route}"

    # ---- uploads ------------------------------------------------------------------------------
    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        if os.path.islink(local_file):
            raise ModelyardException.invalid_parameter(f"Refusing to upload symlink {local_file!r}")
        path = join("", artifact_path, os.path.basename(local_file))
        size = os.path.getsize(local_file)
        if size >= _int_env("MODELYARD_MULTIPART_UPLOAD_MIN_SIZE", 100 * 1024 * 1024):
            if self._try_multipart(local_file, path, size):
                return
        self._put_file(local_file, path)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """A folder of small files (a logged model) goes as one bundle request to a modelyard server;
        anything else, or a server without bundles (MLflow's), file by file."""
        base = safe_relative_path(artifact_path)
        files = check_local_tree(local_dir)
        if not (len(files) > 1 and self._put_bundle(files, base)):
            super().log_artifacts(local_dir, artifact_path)

    def _put_bundle(self, files: list[tuple[str, str]], base: str) -> bool:
        """True when the server stored the files from one tar body (`artifact_proxy/bundles.py`)."""
        if self.base_url in _no_bundles:
            return False
        sizes = [os.path.getsize(full) for full, _ in files]
        if sum(sizes) > _int_env("MODELYARD_BUNDLE_UPLOAD_MAX_SIZE", BUNDLE_MAX_SIZE):
            return False
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for (full, rel), size in zip(files, sizes, strict=True):
                entry = tarfile.TarInfo(posixpath.join(rel, os.path.basename(full)) if rel else os.path.basename(full))
                entry.size, entry.mode = size, 0o644
                with open(full, "rb") as data:
                    tar.addfile(entry, data)
        response = self._put(self._url(BUNDLE_ROUTE, base), buffer.getvalue, {"Content-Type": "application/x-tar"})
        if response.status_code in (404, 405):  # no such route: an MLflow server
            _no_bundles.add(self.base_url)
            return False
        if response.status_code in (400, 413):  # e.g. over a lower body limit: file by file says what is wrong
            return False
        raise_for_response(response)
        return True

    def _put_file(self, local_file: str, path: str) -> None:
        def body() -> Any:
            return open(local_file, "rb")  # noqa: SIM115 (closed by _put)

        raise_for_response(self._put(self._url(ARTIFACTS_ROUTE, path), body, {}))

    def _put(self, url: str, body: Callable[[], Any], headers: dict[str, str]) -> requests.Response:
        """A PUT of the same bytes is idempotent, so a refused connection or a 5xx from an overloaded
        proxy is retried (the body is made again for each attempt)."""
        attempts = _int_env("MODELYARD_HTTP_MAX_RETRIES", 3) + 1
        for attempt in range(attempts):
            data = body()
            try:
                response = _session().put(url, data=data, headers=headers, timeout=_timeout())
            except requests.ConnectionError:
                if attempt + 1 == attempts:
                    raise
                continue
            finally:
                if hasattr(data, "close"):
                    data.close()
            if response.status_code in (502, 503, 504) and attempt + 1 < attempts:
                continue
            return response
        raise AssertionError("unreachable")

    def _try_multipart(self, local_file: str, path: str, size: int) -> bool:
        part_size = max(_int_env("MODELYARD_MULTIPART_UPLOAD_CHUNK_SIZE", 10 * 1024 * 1024), 5 * 1024 * 1024)
        num_parts = max(1, -(-size // part_size))
        # MLflow's protocol: the URL names the folder, the body's `path` the file.
        folder, name = posixpath.dirname(path), posixpath.basename(path)
        response = _session().post(
            self._url(f"{MPU_ROUTE}/create", folder),
            json={"path": name, "num_parts": num_parts},
            timeout=_timeout(),
        )
        if response.status_code in (404, 405, 501):
            return False
        raise_for_response(response)
        body = response.json()
        upload = MultipartUpload(str(body["upload_id"]), [])
        credentials = body.get("credentials", [])

        def put_part(cred: dict[str, Any]) -> dict[str, Any]:
            number = int(cred["part_number"])
            with open(local_file, "rb") as f:
                f.seek((number - 1) * part_size)
                data = f.read(part_size)
            resp = requests.put(cred["url"], data=data, headers=cred.get("headers") or {}, timeout=_timeout())
            raise_for_response(resp)
            return {"part_number": number, "etag": resp.headers.get("ETag", ""), "url": cred["url"]}

        try:
            with ThreadPoolExecutor(max_workers=8) as pool:
                parts = sorted(pool.map(put_part, credentials), key=lambda p: p["part_number"])
            done = _session().post(
                self._url(f"{MPU_ROUTE}/complete", folder),
                json={"path": name, "upload_id": upload.upload_id, "parts": parts},
                timeout=_timeout(),
            )
            raise_for_response(done)
            return True
        except (requests.RequestException, RestException):
            _session().post(
                self._url(f"{MPU_ROUTE}/abort", folder),
                json={"path": name, "upload_id": upload.upload_id},
                timeout=_timeout(),
            )
            # Part URLs can point at an S3 endpoint only the server can reach: fall back to the proxy.
            return False

    # ---- reads --------------------------------------------------------------------------------
    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        rel = safe_relative_path(path)
        params = {"path": join(self.root, rel)} if join(self.root, rel) else {}
        response = _session().get(f"{self.base_url}{ARTIFACTS_ROUTE}", params=params, timeout=_timeout())
        raise_for_response(response)
        infos = []
        for entry in response.json().get("files", []):
            name = safe_relative_path(entry["path"])
            size = entry.get("file_size")
            infos.append(
                FileInfo(
                    join(rel, name) if rel else name,
                    bool(entry.get("is_dir")),
                    None if size is None else int(size),
                )
            )
        # MLflow's servers list a file path as the file itself; we report files as having no children.
        if (
            rel
            and len(infos) == 1
            and not infos[0].is_dir
            and infos[0].path == join(rel, posixpath.basename(rel))
        ):
            return []
        return sorted(infos, key=lambda i: i.path)

    def _download_file(self, remote_path: str, local_path: str) -> None:
        stream = self.open_read(remote_path)
        folder = os.path.dirname(local_path) or "."
        fd, tmp = tempfile.mkstemp(prefix=".download-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in stream.chunks:
                    out.write(chunk)
            os.replace(tmp, local_path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        finally:
            stream.close()

    def open_read(self, path: str) -> ArtifactStream:
        response = _session().get(
            self._url(ARTIFACTS_ROUTE, safe_relative_path(path)), stream=True, timeout=_timeout()
        )
        if response.status_code >= 400:
            response.content  # noqa: B018 - read the small error body before closing
            response.close()
            raise_for_response(response)
        length = response.headers.get("Content-Length")

        def chunks() -> Iterator[bytes]:
            yield from response.iter_content(chunk_size=_READ_CHUNK)

        return ArtifactStream(int(length) if length else None, chunks(), response.close)

    def open_write(self, path: str, content_length: int | None = None) -> ArtifactWriter:
        return _SpoolWriter(self, safe_relative_path(path))

    def delete_artifacts(self, path: str | None = None) -> None:
        rel = safe_relative_path(path)
        if not join(self.root, rel):
            raise ModelyardException.invalid_parameter("Refusing to delete the whole artifact store")
        response = _session().delete(self._url(ARTIFACTS_ROUTE, rel), timeout=_timeout())
        raise_for_response(response)
