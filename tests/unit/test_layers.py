"""The storage layer under the client: which modelyard packages the artifact repositories may import.

`modelyard.artifact_repos` (local, S3, HTTP repositories) is used by the client, the artifact proxy, the UI
and lifecycle jobs; it once imported the client back (credentials, public download functions), a cycle that
made every import order fragile. This reads the source's import statements (top-level and inside
functions) so a new upward import fails here, not in a user's import order.
"""

from __future__ import annotations

import ast
from pathlib import Path

import modelyard

PACKAGE_ROOT = Path(modelyard.__file__).parent

#: What each low layer may import of modelyard (besides itself).
ALLOWED: dict[str, set[str]] = {
    "artifact_repos": {"exceptions", "protocol", "credentials", "http_session"},
    "credentials": set(),
    "http_session": set(),
}


def _imported_packages(path: Path) -> set[str]:
    """The first-level modelyard packages/modules a file imports anywhere in its body."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "modelyard":
                names = [f"modelyard.{alias.name}" for alias in node.names]
            else:
                names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found.update(n.split(".")[1] for n in names if n.startswith("modelyard."))
    return found


def _files(layer: str) -> list[Path]:
    package = PACKAGE_ROOT / layer
    return sorted(package.rglob("*.py")) if package.is_dir() else [PACKAGE_ROOT / f"{layer}.py"]


def test_low_layers_import_only_what_lies_below_them() -> None:
    offences = []
    for layer, allowed in ALLOWED.items():
        files = _files(layer)
        assert files and all(f.exists() for f in files), layer
        for path in files:
            extra = _imported_packages(path) - allowed - {layer}
            if extra:
                offences.append(f"{path.relative_to(PACKAGE_ROOT)} imports {sorted(extra)}")
    assert offences == []


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from modelyard.client import artifacts\n    import modelyard.store.x\n")
    assert _imported_packages(source) == {"client", "store"}
