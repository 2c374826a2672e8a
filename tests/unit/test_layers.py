"""modelyard's layers: which modelyard packages each package may import, and no import circles.

`modelyard.artifact_repos` (local, S3, HTTP repositories) is used by the client, the artifact proxy, the UI
and lifecycle jobs; it once imported the client back (credentials, public download functions), a cycle that
made every import order fragile. This reads the source's import statements (top-level and inside
functions) so a new upward import fails here, not in a user's import order.

The same reading, for every package, checks the house rule "no import circles" and the layer order
written down in docs/architecture.md ("Layers"): a package imports only packages of its layer or below.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import modelyard

PACKAGE_ROOT = Path(modelyard.__file__).parent

#: What each low layer may import of modelyard (besides itself).
ALLOWED: dict[str, set[str]] = {
    "artifact_repos": {"exceptions", "errors", "credentials", "http_session"},
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


#: The layers, bottom first (docs/architecture.md, "Layers"): first-level packages and top-level modules
#: of `modelyard` (the `modelyard` root itself is the public facade over all of them).
LAYERS: list[set[str]] = [
    {"errors", "clock", "settings", "version", "credentials", "http_session"},  # leaves: no modelyard imports
    {"exceptions"},
    {"entities", "artifact_repos"},
    {"protocol"},  # the wire: request parsing, responses, validation, limits, OpenAPI
    {"store"},  # persistence and its interfaces (REST stores in client/ implement them)
    {"client", "system_metrics", "auth", "webhooks", "lifecycle", "devstack"},  # domain over the stores
    {"models", "data", "pyfunc", "pytorch", "projects"},  # the model format and its loaders
    # ML integrations (`universal_autolog`: `modelyard.autolog()`, over the flavors' own autologging)
    {"autologging", "evaluation", "sklearn", "xgboost", "metrics", "artifacts", "universal_autolog"},
    {"runtime", "deploy", "artifact_proxy", "gateway", "endpoints", "serving"},  # services and their runtime
    {"ui", "tracking"},  # the tracking service app (it mounts the UI)
    {"cli", "cli_auth", "cli_deploy", "cli_lifecycle", "cli_models", "cli_projects", "cli_webhooks"},
]

#: Upward edges not yet removed, each with its reason. Nothing may be added here; remove an entry
#: when its edge is gone (the test below fails for a stale entry).
KNOWN_UPWARD: dict[tuple[str, str], str] = {
    # `modelyard.models.evaluate` mirrors `mlflow.models.evaluate` (public API), a lazy __getattr__
    # into modelyard.evaluation, which loads models through pyfunc. Fix: the model format moves to a
    # lower package with `modelyard.models` as the facade over it.
    ("models", "evaluation"): "public mlflow.models.evaluate name",
}


def _package_graph() -> dict[str, set[str]]:
    """First-level package -> the other first-level packages its files import (lazy imports too)."""
    return {package: set(targets) for package, targets in _read_package_graph().items()}


@functools.cache
def _read_package_graph() -> dict[str, frozenset[str]]:
    """Read once per session: parsing every module is most of this file's time."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE_ROOT.rglob("*.py"):
        parts = path.relative_to(PACKAGE_ROOT).with_suffix("").parts
        if parts == ("__init__",):
            continue
        package = parts[0]
        graph.setdefault(package, set()).update(_imported_packages(path) - {package})
    return {package: frozenset(targets) for package, targets in graph.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle of the graph (as a path that returns to its start), or [] when it has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return []


def test_the_package_graph_has_no_import_circle() -> None:
    graph = _package_graph()
    for src, dst in KNOWN_UPWARD:
        graph[src].discard(dst)
    assert _cycle(graph) == []


def test_each_package_imports_only_its_layer_or_below() -> None:
    layer_of = {package: i for i, layer in enumerate(LAYERS) for package in layer}
    graph = _package_graph()
    assert sorted(set(graph) - set(layer_of)) == [], "a new package: give it a layer in LAYERS and the docs"
    upward = {
        (src, dst) for src, targets in graph.items() for dst in targets if layer_of[dst] > layer_of[src]
    }
    assert sorted(upward - set(KNOWN_UPWARD)) == []
    assert sorted(set(KNOWN_UPWARD) - upward) == [], "an upward edge is gone: drop it from KNOWN_UPWARD"


def test_the_cycle_check_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


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
