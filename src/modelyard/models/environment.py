"""The environment files of a model directory: requirements.txt, python_env.yaml, conda.yaml.

Requirements are pinned to the versions installed where the model was saved, which is what lets a
serving image (or `mlflow models serve --env-manager virtualenv`) rebuild the same environment.
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import yaml

#: libyaml's emitter when PyYAML has it (~5x faster, the same text), else the pure-Python one.
SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

REQUIREMENTS_FILE = "requirements.txt"
PYTHON_ENV_FILE = "python_env.yaml"
CONDA_ENV_FILE = "conda.yaml"

# What a virtualenv needs before it can install the rest; these are the pins MLflow writes too,
# so environments built by either tool from the same model agree.
_BUILD_DEPENDENCIES = ["pip==23.2.1", "setuptools==65.5.0", "wheel"]


def pinned(distribution: str) -> str:
    """`name==installed-version`, or the bare name when the package is not installed here."""
    version = _installed_version(distribution)
    return f"{distribution}=={version}" if version is not None else distribution


@functools.lru_cache(maxsize=256)
def _installed_version(distribution: str) -> str | None:
    """Read once per process: each lookup scans every folder of sys.path and parses a METADATA file
    (~2 ms each, most of a small model's save time, four times per autologged fit)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def default_requirements(distributions: Iterable[str]) -> list[str]:
    return [pinned(d) for d in distributions]


def write_environment(model_dir: str | Path, requirements: Iterable[str]) -> dict[str, str]:
    """Write the three files; returns the `env` block for the python_function flavor."""
    directory = Path(model_dir)
    reqs = list(dict.fromkeys(r.strip() for r in requirements if r.strip()))
    python_version = platform.python_version()
    (directory / REQUIREMENTS_FILE).write_text("\n".join(reqs) + ("\n" if reqs else ""))
    python_env = {
        "python": python_version,
        "build_dependencies": _BUILD_DEPENDENCIES,
        "dependencies": ["-r requirements.txt"],
    }
    (directory / PYTHON_ENV_FILE).write_text(yaml.dump(python_env, Dumper=SAFE_DUMPER, sort_keys=False))
    conda = {
        "channels": ["conda-forge"],
        "dependencies": [f"python={python_version}", "pip<=23.2.1", {"pip": reqs}],
        "name": "modelyard-env",
    }
    (directory / CONDA_ENV_FILE).write_text(yaml.dump(conda, Dumper=SAFE_DUMPER, sort_keys=False))
    return {"conda": CONDA_ENV_FILE, "virtualenv": PYTHON_ENV_FILE}


def read_requirements(model_dir: str | Path) -> list[str]:
    path = Path(model_dir) / REQUIREMENTS_FILE
    if not path.is_file():
        return []
    return [
        line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
