"""System tags on new runs; the git commit is read from .git without git tooling in the process."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from modelyard.client import run_context


def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e", "HOME": str(cwd), "PATH": "/usr/bin:/bin"}  # fmt: skip
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src" / "pkg").mkdir(parents=True)
    _git(root, "init", "-q", "-b", "main")
    (root / "src" / "pkg" / "train.py").write_text("print(1)\n")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "first")
    return root


def test_commit_of_a_file_deep_in_the_repo(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    assert run_context.git_commit(repo / "src" / "pkg" / "train.py") == head


def test_commit_after_refs_are_packed(repo: Path) -> None:
    (repo / "x.txt").write_text("x")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "second")
    _git(repo, "pack-refs", "--all", "--prune")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert run_context.git_commit(repo) == _git(repo, "rev-parse", "HEAD")


def test_commit_with_a_detached_head(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "--detach")
    assert run_context.git_commit(repo) == head


def test_commit_in_a_linked_worktree(repo: Path, tmp_path: Path) -> None:
    _git(repo, "branch", "feature")
    _git(repo, "worktree", "add", "-q", str(tmp_path / "wt"), "feature")
    assert run_context.git_commit(tmp_path / "wt") == _git(repo, "rev-parse", "feature")


def test_no_commit_outside_a_repository(tmp_path: Path) -> None:
    assert run_context.git_commit(tmp_path) is None


def test_system_tags_name_user_source_and_type() -> None:
    tags = run_context.system_tags()
    assert tags[run_context.SOURCE_TYPE] == "LOCAL"
    assert tags[run_context.USER]
    assert tags[run_context.SOURCE_NAME]
