"""A small MLflow project (two entry points, typed parameters, a python_env) for the projects tests,
as a folder or a git repository with two commits, and a tiny wheel its python_env installs offline."""

from __future__ import annotations

import json
import platform
import subprocess
import zipfile
from pathlib import Path

MLPROJECT = """
name: two-entry-points
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      epochs: {type: int, default: 3}
      label: {type: string, default: "hello world"}
      out: string
    command: "python train.py --alpha {alpha} --epochs {epochs} --label {label} --out {out}"
  exit:
    parameters:
      code: {type: int, default: 3}
    command: "python exit_with.py {code}"
"""

#: Writes what it saw to --out (argv, MLflow variables, interpreter, the env's dependency); when a
#: tracking client is importable it logs a metric and a param to the run it was started for.
TRAIN = """
import json, os, sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
seen = {
    "argv": sys.argv[1:],
    "env": {k: os.environ.get(k) for k in ("MLFLOW_RUN_ID", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")},
    "prefix": sys.prefix,
    "version": VERSION,
}
try:
    import tinydep
    seen["tinydep"] = tinydep.VALUE
except ImportError:
    seen["tinydep"] = None
try:
    import CLIENT as tracking
except ImportError:
    tracking = None
if tracking is not None:
    with tracking.start_run() as run:
        tracking.log_metric("score", float(args["--alpha"]) * int(args["--epochs"]))
        tracking.log_param("inside", "yes")
        seen["run_id"] = run.info.run_id
with open(args["--out"], "w") as f:
    json.dump(seen, f)
"""

EXIT_WITH = "import sys; sys.exit(int(sys.argv[1]))\n"


def write_project(directory: Path, wheel: Path | None, version: int = 1, client: str = "modelyard") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "MLproject").write_text(MLPROJECT)
    (directory / "python_env.yaml").write_text(
        f"python: '{platform.python_version()}'\nbuild_dependencies: []\ndependencies:\n  - -r requirements.txt\n"
    )
    (directory / "requirements.txt").write_text(f"{wheel}\n" if wheel else "")
    (directory / "train.py").write_text(TRAIN.replace("VERSION", str(version)).replace("CLIENT", client))
    (directory / "exit_with.py").write_text(EXIT_WITH)
    return directory


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def git_repo_with_two_commits(
    directory: Path, wheel: Path | None, client: str = "modelyard"
) -> tuple[str, str]:
    """A repository whose first commit's train.py reports version 1 and second's version 2."""
    write_project(directory, wheel, 1, client)
    git(directory, "init", "-q")
    git(directory, "add", "-A")
    git(directory, "commit", "-qm", "first")
    first = git(directory, "rev-parse", "HEAD")
    write_project(directory, wheel, 2, client)
    git(directory, "commit", "-qam", "second")
    return first, git(directory, "rev-parse", "HEAD")


def tiny_wheel(folder: Path) -> Path:
    """`tinydep` 1.0 (VALUE = 42) as a wheel, so a python_env installs a dependency without a registry."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tinydep-1.0-py3-none-any.whl"
    files = {
        "tinydep/__init__.py": "VALUE = 42\n",
        "tinydep-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n",
        "tinydep-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + "tinydep-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr("tinydep-1.0.dist-info/RECORD", record)
    return path


def read_seen(path: Path) -> dict:
    return json.loads(path.read_text())
