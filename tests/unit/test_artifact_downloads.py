"""How the artifacts service opens a download: small files read whole in one thread call (one body),
bigger ones streamed; either way every byte arrives and the file is closed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelyard.artifact_proxy.streaming import INLINE_MAX, download_response, open_for_response
from modelyard.artifacts.base import ArtifactStream
from modelyard.artifacts.local import LocalArtifactRepository


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
    assert response.media_type == "text/plain"
    opened.close()


def test_small_html_is_not_served_as_html(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_bytes(b"<script>alert(1)</script>")
    response = download_response(
        open_for_response(LocalArtifactRepository(str(tmp_path)), "page.html"), "page.html"
    )
    assert response.media_type == "text/plain"
