"""Turning a model directory into SageMaker's `model.tar.gz` (the MLmodel file at the archive's top level)."""

from __future__ import annotations

import tarfile
from pathlib import Path


def package_model(model_dir: Path, archive: Path) -> Path:
    if not (model_dir / "MLmodel").is_file():
        raise FileNotFoundError(f"{model_dir} is not a model directory (no MLmodel file).")
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            if path.is_symlink():
                continue  # a link could point outside the model; the archive carries files only
            tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
    return archive
