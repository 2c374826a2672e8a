"""Where a project's files come from: a local folder, or a git repository (local or remote) at a version.

A local folder runs in place, as MLflow runs it. A git URI (`https://`, `ssh://`, `git://`, `git@host:`,
or `file://` naming a repository) is cloned into a temporary folder and checked out at `--version`.
Unlike MLflow, a local repository with `--version` is cloned too: MLflow checks the version out in the
user's own working tree, which leaves it detached. `#sub/dir` after the URI picks a folder inside.

The source tags are MLflow's, as `mlflow run` 3.17 writes them: `mlflow.source.name` is the URI for a
git URI, `file://<path>` for a local repository's root and the absolute path (plus `#subdir`) for any
other local folder; `mlflow.source.git.commit` is the commit that runs; `mlflow.source.git.repoURL` the
repository's `origin` (or the URI or path it was cloned from).
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from modelyard.client.run_context import find_git_dir, git_commit
from modelyard.projects.errors import ExecutionException

_GIT_URI = re.compile(r"^(https?|ssh|git|file)://|^[\w.-]+@[\w.-]+:")
_GIT_TIMEOUT = 600


@dataclass
class ProjectSource:
    """The folder to run in, the tags that say where it came from, and a temp clone to remove after."""

    directory: Path
    source_name: str
    git_commit: str | None = None
    git_repo_url: str | None = None
    temp_dir: Path | None = None

    def tags(self) -> dict[str, str]:
        tags = {"mlflow.source.name": self.source_name}
        if self.git_commit:
            tags["mlflow.source.git.commit"] = self.git_commit
        if self.git_repo_url:
            tags["mlflow.source.git.repoURL"] = self.git_repo_url
        return tags

    def cleanup(self) -> None:
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None


def fetch(uri: str, version: str | None = None) -> ProjectSource:
    """The project at `uri` ready to run; ExecutionException when it does not exist or cannot be fetched."""
    base, _, subdirectory = str(uri).partition("#")
    if not base:
        raise ExecutionException(f"Project URI {uri!r} names no project.")
    if _GIT_URI.match(base) and not _is_local_folder_uri(base):
        return _clone(base, version, subdirectory, source_name=str(uri), repo_url=base)
    local = Path(_file_uri_path(base)).expanduser().absolute()
    if not local.is_dir():
        raise ExecutionException(f"Project path {str(uri)!r} does not exist or is not a folder.")
    git_dir = find_git_dir(local)
    is_repo_root = (local / ".git").exists()
    source_name = (
        f"file://{local}" if is_repo_root and not subdirectory else _with_fragment(str(local), subdirectory)
    )
    if version is not None:
        if git_dir is None:
            raise ExecutionException(f"--version needs a git repository, and {str(uri)!r} is not in one.")
        root = _work_tree_root(local)
        inner = local.relative_to(root).as_posix()
        sub = "/".join(part for part in (inner if inner != "." else "", subdirectory) if part)
        repo_url = _origin_url(git_dir) or str(root)  # what mlflow 3.17 records for a local clone
        return _clone(str(root), version, sub, source_name=source_name, repo_url=repo_url)
    directory = _subdirectory(local, subdirectory, uri)
    commit = git_commit(directory) if git_dir is not None else None
    return ProjectSource(directory, source_name, commit, _origin_url(git_dir) if git_dir else None)


def _is_local_folder_uri(base: str) -> bool:
    """A `file://` URI of a plain folder (not a repository) runs in place like a path."""
    if not base.startswith("file://"):
        return False
    path = Path(_file_uri_path(base))
    return path.is_dir() and find_git_dir(path) is None


def _file_uri_path(base: str) -> str:
    if base.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        return unquote(urlsplit(base).path)
    return base


def _with_fragment(path: str, subdirectory: str) -> str:
    return f"{path}#{subdirectory}" if subdirectory else path


def _subdirectory(root: Path, subdirectory: str, uri: str) -> Path:
    if not subdirectory:
        return root
    target = (root / subdirectory).resolve()
    if not target.is_relative_to(root.resolve()) or not target.is_dir():
        raise ExecutionException(f"Subdirectory {subdirectory!r} of project {uri!r} does not exist.")
    return target


def _clone(
    source: str, version: str | None, subdirectory: str, *, source_name: str, repo_url: str
) -> ProjectSource:
    git = shutil.which("git")
    if git is None:
        raise ExecutionException(f"Running the git project {source_name!r} needs git, which is not on PATH.")
    temp = Path(tempfile.mkdtemp(prefix="modelyard-project-"))
    try:
        _git(git, ["clone", "--quiet", source, str(temp / "repo")], f"Could not clone {source!r}")
        if version is not None:
            _git(
                git,
                ["-C", str(temp / "repo"), "checkout", "--quiet", "--detach", version],
                f"Could not check out version {version!r} of {source!r}",
            )
        commit = _git(git, ["-C", str(temp / "repo"), "rev-parse", "HEAD"], "Could not read HEAD").strip()
        directory = _subdirectory(temp / "repo", subdirectory, source_name)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return ProjectSource(directory, source_name, commit, repo_url, temp)


def _git(git: str, args: list[str], failure: str) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # never wait on a credential prompt
    try:
        done = subprocess.run(
            [git, *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ExecutionException(f"{failure}: git took more than {_GIT_TIMEOUT} s.") from None
    if done.returncode != 0:
        raise ExecutionException(f"{failure}: {done.stderr.strip()[-500:]}")
    return done.stdout


def _work_tree_root(start: Path) -> Path:
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


def _origin_url(git_dir: Path) -> str | None:
    """The `origin` remote's URL from the repository's config (the common dir for a worktree)."""
    common = git_dir
    if (git_dir / "commondir").is_file():
        common = (git_dir / (git_dir / "commondir").read_text().strip()).resolve()
    config = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        config.read(common / "config")
    except (configparser.Error, UnicodeDecodeError):
        return None
    section = 'remote "origin"'
    return config.get(section, "url", fallback=None) if config.has_section(section) else None
