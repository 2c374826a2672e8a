"""Artifact path safety: what `safe_relative_path` accepts, what it refuses, and the local repository's
containment of symlinks planted inside its root."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from modelyard.artifact_repos.base import check_local_tree
from modelyard.artifact_repos.local import LocalArtifactRepository, file_system_errors
from modelyard.artifact_repos.paths import join, relative_to, safe_relative_path
from modelyard.exceptions import ModelyardException


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ""),
        ("", ""),
        ("model", "model"),
        ("a/b/c.txt", "a/b/c.txt"),
        ("a//b/./c/", "a/b/c"),
        ("./a", "a"),
        ("dir with space/file-1_2.tar.gz", "dir with space/file-1_2.tar.gz"),
        ("a..b/c..", "a..b/c.."),
        ("100%25.txt", "100%25.txt"),
    ],
)
def test_accepts_and_normalises_relative_paths(raw: str | None, expected: str) -> None:
    assert safe_relative_path(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "..",
        "../etc/passwd",
        "a/../../b",
        "a/..",
        "/etc/passwd",
        "//server/share",
        "C:/Windows",
        "c:",
        "~/x",
        "a\\..\\b",
        "a\\b",
        "a\x00b",
        "a\nb",
        "%2e%2e/secret",
        "%2E%2E%2Fsecret",
        "a/%2e%2e/%2e%2e/b",
        "%252e%252e/secret",
        "%2fetc%2fpasswd",
        "%5c..%5cx",
        "%00",
        "%25252525252e",
    ],
)
def test_refuses_traversal_absolute_and_encoded_paths(raw: str) -> None:
    with pytest.raises(ModelyardException) as info:
        safe_relative_path(raw)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert info.value.http_status == 400


def test_join_validates_every_part() -> None:
    assert join("prefix", "a", None, "b/c") == "prefix/a/b/c"
    assert join("", "a") == "a"
    with pytest.raises(ModelyardException):
        join("prefix", "a", "../b")


def test_relative_to_refuses_siblings_sharing_a_name_prefix() -> None:
    assert relative_to("root/a/b", "root") == "a/b"
    assert relative_to("x", "") == "x"
    with pytest.raises(ModelyardException):
        relative_to("root2/a", "root")


def test_local_tree_with_a_symlink_is_refused_before_anything_uploads(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "ok.txt").write_text("ok")
    (src / "sub" / "link").symlink_to(tmp_path / "outside.txt")
    (tmp_path / "outside.txt").write_text("secret")
    dest = tmp_path / "dest"
    repo = LocalArtifactRepository(str(dest))
    with pytest.raises(ModelyardException, match="symlink"):
        repo.log_artifacts(str(src))
    assert not dest.exists() or list(dest.rglob("*")) == []


def test_symlinked_directory_is_refused_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "x.txt").write_text("x")
    src = tmp_path / "src"
    src.mkdir()
    (src / "dirlink").symlink_to(target, target_is_directory=True)
    with pytest.raises(ModelyardException, match="symlink"):
        check_local_tree(str(src))


def test_local_repository_refuses_symlink_escaping_its_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "escape")
    repo = LocalArtifactRepository(str(root))
    with pytest.raises(ModelyardException) as info:
        repo.open_write("escape/planted.txt")
    assert info.value.error_code == "PERMISSION_DENIED"
    assert list(outside.iterdir()) == []


def test_local_writer_is_invisible_until_commit_and_leaves_nothing_on_abort(tmp_path: Path) -> None:
    repo = LocalArtifactRepository(str(tmp_path))
    writer = repo.open_write("a/b.bin")
    writer.write(b"x" * 10)
    assert repo.list_artifacts("a") == []
    writer.abort()
    assert list((tmp_path / "a").iterdir()) == []
    writer = repo.open_write("a/b.bin")
    writer.write(b"hello")
    writer.commit()
    [info] = repo.list_artifacts("a")
    assert (info.path, info.is_dir, info.file_size) == ("a/b.bin", False, 5)


@pytest.mark.parametrize(
    ("err", "code", "status"),
    [
        (errno.ENOSPC, "RESOURCE_EXHAUSTED", 507),
        (errno.EDQUOT, "RESOURCE_EXHAUSTED", 507),
        (errno.ENAMETOOLONG, "INVALID_PARAMETER_VALUE", 400),
        (errno.EEXIST, "INVALID_PARAMETER_VALUE", 400),
        (errno.ENOTDIR, "INVALID_PARAMETER_VALUE", 400),
    ],
)
def test_file_system_errors_map_to_mlflow_errors(err: int, code: str, status: int) -> None:
    with pytest.raises(ModelyardException) as exc_info, file_system_errors("a/b.txt"):
        raise OSError(err, os.strerror(err))
    assert (exc_info.value.error_code, exc_info.value.http_status) == (code, status)


def test_other_file_system_errors_stay_server_faults() -> None:
    with pytest.raises(PermissionError), file_system_errors("a/b.txt"):
        raise PermissionError(errno.EACCES, "denied")
