"""The MLflow server's own venv (`.venv-bench-mlflow`), so its pinned dependencies never touch ours.

Idempotent: a stamp file records the exact requirement list of the last good install; the venv is
rebuilt only when that list changes (or the stamp is missing after a failed install).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV = REPO_ROOT / ".venv-bench-mlflow"
STAMP = VENV / ".bench-installed"
#: The server side of MLflow as the benchmark runs it: PostgreSQL through psycopg2, S3 through boto3,
#: and scikit-learn so `mlflow models serve --env-manager local` can load the benchmark model.
REQUIREMENTS = (
    "mlflow==3.17.2",
    "psycopg2-binary",
    "boto3",
    "scikit-learn",
    "psutil",
)


def bin_path(name: str) -> Path:
    return VENV / "bin" / name


def ensure(say=print) -> Path:  # type: ignore[no-untyped-def]
    """Create or update the venv when needed; returns its python."""
    wanted = "\n".join(REQUIREMENTS) + "\n"
    python = bin_path("python")
    if STAMP.is_file() and STAMP.read_text() == wanted and python.exists():
        return python
    say(f"installing {', '.join(REQUIREMENTS)} into {VENV} (once)")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    STAMP.unlink(missing_ok=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True)
    STAMP.write_text(wanted)
    return python


if __name__ == "__main__":
    print(ensure())
