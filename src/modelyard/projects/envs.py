"""The environment a project's command runs in: `local`, or a virtualenv built by `venv`+pip or by uv.

A virtualenv is built from the project's `python_env.yaml` (python version, build dependencies,
dependencies; `-r file` lines are read relative to it) and cached under `MODELYARD_ENV_ROOT`
(default `~/.cache/modelyard/envs`), named by a hash of everything that decides its contents (the
manager, the interpreter's exact version, both dependency lists and the text of each `-r` file), so
a second run of the same project starts at once and a changed requirement builds a new one. A build
holds a file lock (two runs never build one env together) and marks the env complete only at the end.

The interpreter is found, never downloaded (modelyard reaches no Python download site): the running
one when its version matches, else `pythonX.Y` on PATH, else a pyenv version. conda and docker
environments are not built by modelyard: asking for one is an error naming the missing tool (or,
where the tool exists, saying modelyard does not run them), before any run is created.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from modelyard.projects.errors import ExecutionException
from modelyard.projects.spec import EnvironmentSpec

LOCAL = "local"
VIRTUALENV = "virtualenv"
UV = "uv"
CONDA = "conda"
DOCKER = "docker"
ENV_MANAGERS = (LOCAL, VIRTUALENV, UV, CONDA)
ENV_ROOT_VARIABLE = "MODELYARD_ENV_ROOT"
_READY_MARK = ".modelyard-env-ready"
_BUILD_TIMEOUT = 1800


@dataclass(frozen=True)
class PythonEnv:
    python: str
    build_dependencies: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    base_dir: Path = Path(".")


@dataclass(frozen=True)
class Environment:
    """How to run a command in the environment: folders to put first on PATH, and extra variables."""

    manager: str
    path_prefix: tuple[str, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()

    def apply(self, env: dict[str, str]) -> dict[str, str]:
        result = dict(env)
        if self.path_prefix:
            result["PATH"] = os.pathsep.join([*self.path_prefix, result.get("PATH", os.defpath)])
        result.update(dict(self.variables))
        return result


def choose_manager(requested: str | None, spec: EnvironmentSpec) -> str:
    """MLflow's default: the project's kind of environment (none or python_env: virtualenv)."""
    if requested is not None:
        if requested not in ENV_MANAGERS:
            raise ExecutionException(
                f"Unknown env manager {requested!r}; expected one of {list(ENV_MANAGERS)}."
            )
        if spec.kind == "docker" and requested != LOCAL:
            raise ExecutionException(
                "This project has a docker_env; only --env-manager local (the current environment) "
                "can run it without Docker."
            )
        return requested
    if spec.kind == "docker":
        return DOCKER
    return CONDA if spec.kind == "conda" else VIRTUALENV


def prepare(manager: str, spec: EnvironmentSpec, env_root: str | None = None) -> Environment:
    """The ready environment (built or found in the cache); ExecutionException when it cannot be."""
    if manager == LOCAL:
        # `python` in the command is the interpreter running modelyard, even from an unactivated venv.
        return Environment(LOCAL, (str(Path(sys.executable).parent),))
    if manager == DOCKER:
        raise ExecutionException(_docker_message())
    if manager == CONDA:
        raise ExecutionException(_conda_message())
    python_env = _read_python_env(spec)
    root = Path(
        env_root or os.environ.get(ENV_ROOT_VARIABLE) or Path.home() / ".cache" / "modelyard" / "envs"
    )
    if manager == UV:
        # uv installed by pip beside this Python counts, even when its venv is not activated.
        uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
        if uv is None:
            raise ExecutionException(
                "--env-manager uv needs the uv executable, which is not on PATH (pip install uv), "
                "or use --env-manager virtualenv."
            )
        return _virtualenv(root, python_env, UV, uv)
    return _virtualenv(root, python_env, VIRTUALENV, None)


def _docker_message() -> str:
    if shutil.which("docker") is None:
        return (
            "This project has a docker_env, which needs Docker: no docker executable on PATH. "
            "Run it with --env-manager local to use the current environment instead."
        )
    return (
        "This project has a docker_env; modelyard does not run projects in Docker containers. "
        "Run it with --env-manager local to use the current environment instead."
    )


def _conda_message() -> str:
    home = os.environ.get("MLFLOW_CONDA_HOME")
    conda = shutil.which("conda") or (shutil.which("conda", path=str(Path(home) / "bin")) if home else None)
    if conda is None:
        return (
            "This project's environment is a conda environment, which needs conda: no conda executable "
            "on PATH or in $MLFLOW_CONDA_HOME/bin. Use --env-manager local (the current environment), or "
            "give the project a python_env.yaml and use --env-manager virtualenv."
        )
    return (
        f"This project's environment is a conda environment; modelyard does not build conda environments "
        f"(conda is at {conda}). Use --env-manager local, or a python_env.yaml with --env-manager virtualenv."
    )


def _read_python_env(spec: EnvironmentSpec) -> PythonEnv:
    if spec.kind is None or spec.path is None:
        # MLflow's default for a project that declares nothing: this Python with pip, nothing else.
        return PythonEnv(platform.python_version(), ["pip"])
    if spec.kind != "python":
        raise ExecutionException(
            f"This project's environment is {spec.kind}; a virtualenv is built from a python_env.yaml."
        )
    try:
        body = yaml.safe_load(spec.path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ExecutionException(f"Could not read {spec.path}: {exc}") from None
    if not isinstance(body, dict) or not body.get("python"):
        raise ExecutionException(f"{spec.path} must be a mapping with a 'python' version.")
    lists = {}
    for key in ("build_dependencies", "dependencies"):
        value = body.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ExecutionException(f"'{key}' in {spec.path} must be a list of requirement strings.")
        lists[key] = value
    return PythonEnv(
        str(body["python"]), lists["build_dependencies"], lists["dependencies"], spec.path.parent
    )


def find_interpreter(version: str) -> Path:
    """An installed Python whose version starts with `version` ("3.11" or "3.11.7")."""
    wanted = version.strip().split(".")
    candidates: list[Path] = [Path(sys.executable)]
    for name in (f"python{'.'.join(wanted[:2])}", f"python{wanted[0]}"):
        found = shutil.which(name)
        if found:
            candidates.append(Path(found))
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if pyenv_root.is_dir():
        candidates += sorted(pyenv_root.glob(f"{version.strip()}*/bin/python"), reverse=True)
    for candidate in candidates:
        if _version_of(candidate)[: len(wanted)] == wanted:
            return candidate
    raise ExecutionException(
        f"The project asks for Python {version}, which is not installed here (looked at this Python, "
        f"python{'.'.join(wanted[:2])} on PATH and pyenv's versions); modelyard does not download Python. "
        "Install it, or change 'python' in python_env.yaml."
    )


def _version_of(interpreter: Path) -> list[str]:
    if interpreter == Path(sys.executable):
        return platform.python_version().split(".")
    try:
        out = subprocess.run(
            [str(interpreter), "-c", "import platform; print(platform.python_version())"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return []
    return out.stdout.strip().split(".") if out.returncode == 0 else []


def _virtualenv(root: Path, python_env: PythonEnv, manager: str, uv: str | None) -> Environment:
    interpreter = find_interpreter(python_env.python)
    exact_version = ".".join(_version_of(interpreter))
    key = {
        "manager": manager,
        "python": exact_version,
        "build_dependencies": python_env.build_dependencies,
        "dependencies": python_env.dependencies,
        "requirement_files": _requirement_files(python_env),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:40]
    env_dir = root / f"modelyard-{digest}"
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f"modelyard-{digest}.lock"):
        if not (env_dir / _READY_MARK).is_file():
            shutil.rmtree(env_dir, ignore_errors=True)
            try:
                _build(env_dir, interpreter, python_env, uv)
            except BaseException:
                shutil.rmtree(env_dir, ignore_errors=True)
                raise
            (env_dir / _READY_MARK).write_text(json.dumps(key, indent=1))
    return Environment(manager, (str(env_dir / "bin"),), (("VIRTUAL_ENV", str(env_dir)),))


def _requirement_files(python_env: PythonEnv) -> dict[str, str]:
    """The text of each `-r file` dependency: an edit to requirements.txt means a new environment."""
    files = {}
    for line in python_env.dependencies:
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0] in ("-r", "--requirement"):
            path = python_env.base_dir / parts[1].strip()
            try:
                files[parts[1].strip()] = path.read_text()
            except OSError:
                raise ExecutionException(
                    f"python_env.yaml names requirements file {path}, which cannot be read."
                ) from None
    return files


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(env_dir: Path, interpreter: Path, python_env: PythonEnv, uv: str | None) -> None:
    """Create the env and install both lists. Without uv, the env is made without pip (ensurepip alone
    takes seconds) and this Python's pip installs into it; pip gets into the env when the project's
    build_dependencies name it, as MLflow's generated python_env.yaml files do."""
    python = str(env_dir / "bin" / "python")
    if uv is not None:
        _step(
            [uv, "venv", "--quiet", "--python", str(interpreter), str(env_dir)], "create the uv environment"
        )
        install = [uv, "pip", "install", "--quiet", "--python", python]
    elif importlib.util.find_spec("pip") is not None:
        _step([str(interpreter), "-m", "venv", "--without-pip", str(env_dir)], "create the virtualenv")
        install = [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ]
    else:
        _step([str(interpreter), "-m", "venv", str(env_dir)], "create the virtualenv")
        install = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for requirements in (python_env.build_dependencies, python_env.dependencies):
        if requirements:
            args = [word for line in requirements for word in _requirement_words(line)]
            _step([*install, *args], f"install {requirements}", cwd=python_env.base_dir)


def _requirement_words(line: str) -> list[str]:
    """`-r file` stays two arguments; any other line is one requirement."""
    parts = line.split(None, 1)
    if len(parts) == 2 and parts[0] in ("-r", "--requirement", "-c", "--constraint", "-e", "--editable"):
        return [parts[0], parts[1].strip()]
    return [line.strip()]


def _step(command: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, cwd=cwd, timeout=_BUILD_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise ExecutionException(f"Could not {what}: it took more than {_BUILD_TIMEOUT} s.") from None
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()[-1500:]
        raise ExecutionException(f"Could not {what} (exit code {done.returncode}):\n{output}")
