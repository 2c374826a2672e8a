"""How the artifacts service opens a download: small files read whole in one thread call (one body),
bigger ones streamed; either way every byte arrives and the file is closed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelyard.artifact_proxy.headers import content_disposition
from modelyard.artifact_proxy.streaming import INLINE_MAX, download_response, open_for_response
from modelyard.artifact_repos.base import ArtifactStream
from modelyard.artifact_repos.local import LocalArtifactRepository


class _Tracking(LocalArtifactRepository):
    """The local repository, remembering whether each opened stream was closed."""

    opened: list[ArtifactStream]

    def open_read(self, path: str) -> ArtifactStream:
        stream = super().open_read(path)
        self.opened = [*getattr(self, "opened", []), stream]
        return stream


@pytest.mark.parametrize("size", [0, 10_000, INLINE_MAX])
def test_a_small_file_is_read_whole_and_closed(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "f.bin").write_bytes(data)
    repo = _Tracking(str(tmp_path))
    opened = open_for_response(repo, "f.bin")
    assert opened == data
    (stream,) = repo.opened
    assert stream.closer.__self__.closed  # the file handle
    response = download_response(opened, "f.bin")
    assert response.body == data
    assert response.headers["content-length"] == str(size)
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_bigger_file_is_streamed(tmp_path: Path) -> None:
    data = os.urandom(INLINE_MAX + 1)
    (tmp_path / "f.bin").write_bytes(data)
    opened = open_for_response(LocalArtifactRepository(str(tmp_path)), "f.bin")
    assert isinstance(opened, ArtifactStream)
    response = download_response(opened, "page.html")
    assert response.headers["content-length"] == str(len(data))
    # Active content never renders under our origin, streamed or not.
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["content-disposition"] == "attachment; filename=page.html"
    opened.close()


def test_small_html_is_not_served_as_html(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_bytes(b"<script>alert(1)</script>")
    response = download_response(
        open_for_response(LocalArtifactRepository(str(tmp_path)), "page.html"), "page.html"
    )
    assert response.headers["content-type"] == "text/plain"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("a.txt", "text/plain"),
        ("model/MLmodel", "text/plain"),
        ("MLproject", "application/octet-stream"),
        ("conda.yaml", "text/plain"),
        ("metrics.json", "text/plain"),
        ("table.csv", "text/plain"),
        ("plot.png", "image/png"),
        ("model.pkl", "application/octet-stream"),
        ("noext", "application/octet-stream"),
        ("report.pdf", "application/pdf"),
        ("x.xhtml", "text/plain"),
        ("x.svg", "text/plain"),
        ("x.htm", "text/plain"),
    ],
)
def test_the_server_decides_the_type_and_every_download_is_an_attachment(
    path: str, content_type: str
) -> None:
    """MLflow 3.17's choices (observed on its server), except that active content is never named."""
    response = download_response(b"x", path)
    assert response.headers["content-type"] == content_type
    name = path.rsplit("/", 1)[-1]
    assert response.headers["content-disposition"] == f"attachment; filename={name}"


def test_names_that_are_not_tokens_are_quoted_and_cannot_break_the_header() -> None:
    value = content_disposition('dir/a b"\r\né.txt')
    assert value.startswith('attachment; filename="a b___')
    assert "\r" not in value and "\n" not in value
    assert value.endswith("filename*=UTF-8''a%20b%22%0D%0A%C3%A9.txt")
