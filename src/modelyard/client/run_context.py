"""The system tags MLflow puts on a new run: who started it, from what source, at which git commit.

The git commit is read from the `.git` directory itself (HEAD, loose refs, packed-refs, worktree
`gitdir:` files) rather than through GitPython or a `git` subprocess: it is a few file reads, works
without git installed, and cannot hang on a credential prompt.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from modelyard.client.client import current_user

USER = "mlflow.user"
SOURCE_NAME = "mlflow.source.name"
SOURCE_TYPE = "mlflow.source.type"
GIT_COMMIT = "mlflow.source.git.commit"
RUN_NAME = "mlflow.runName"
PARENT_RUN_ID = "mlflow.parentRunId"
NOTE = "mlflow.note.content"

SOURCE_TYPE_LOCAL = "LOCAL"
SOURCE_TYPE_NOTEBOOK = "NOTEBOOK"


def in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def source_name() -> str:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv and sys.argv[0] else "")
    if not path or path == "-c":
        return "<console>"
    return os.path.abspath(path)


def git_commit(start: str | Path) -> str | None:
    """The commit HEAD points at in the repository holding `start`, or None outside a repository."""
    git_dir = find_git_dir(Path(start))
    if git_dir is None:
        return None
    try:
        head = (git_dir / "HEAD").read_text().strip()
    except OSError:
        return None
    if not head.startswith("ref:"):
        return head or None
    return resolve_ref(git_dir, head[len("ref:") :].strip())


def find_git_dir(start: Path) -> Path | None:
    current = start.resolve()
    if current.is_file():
        current = current.parent
    for folder in (current, *current.parents):
        candidate = folder / ".git"
        if candidate.is_dir():
            return candidate
        if candidate.is_file():  # a worktree or submodule: ".git" says "gitdir: <path>"
            text = candidate.read_text().strip()
            if text.startswith("gitdir:"):
                target = Path(text[len("gitdir:") :].strip())
                return target if target.is_absolute() else (folder / target).resolve()
    return None


def resolve_ref(git_dir: Path, ref: str) -> str | None:
    # A linked worktree keeps HEAD locally but refs in the common dir.
    common = git_dir
    commondir = git_dir / "commondir"
    if commondir.is_file():
        common = (git_dir / commondir.read_text().strip()).resolve()
    for base in (git_dir, common):
        loose = base / ref
        if loose.is_file():
            value = loose.read_text().strip()
            return value or None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            if line and not line.startswith(("#", "^")):
                sha, _, name = line.partition(" ")
                if name.strip() == ref:
                    return sha
    return None


def system_tags() -> dict[str, str]:
    notebook = in_notebook()
    tags = {
        USER: current_user(),
        SOURCE_TYPE: SOURCE_TYPE_NOTEBOOK if notebook else SOURCE_TYPE_LOCAL,
        SOURCE_NAME: source_name(),
    }
    source = tags[SOURCE_NAME]
    commit = git_commit(source if os.path.exists(source) else os.getcwd())
    if commit:
        tags[GIT_COMMIT] = commit
    return tags
