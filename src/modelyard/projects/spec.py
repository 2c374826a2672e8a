"""What a project folder declares: the MLproject file (or MLflow's rules for a folder without one),
its entry points, their typed parameters, and the shell command a set of parameter values gives.

Everything here is checked before a run exists: an unknown entry point, a missing parameter or a value
that is not of its declared type is an `ExecutionException` naming the entry point and the parameter, so
a mistake never leaves a half-created run behind. MLflow does not check `int`/`float` values (it passes
`n=abc` through to the command); modelyard refuses them, which is the point of declaring a type.

Values reach the command shell-quoted (`shlex.quote`), so a value can never add a shell word; the
quoted value is also what is logged as the run's parameter, as MLflow logs it (`'hello world'`),
except `path` parameters, which are logged as given while the command gets the absolute local path.
"""

from __future__ import annotations

import os
import re
import shlex
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelyard.projects.errors import ExecutionException

MLPROJECT_FILE = "MLproject"
PYTHON_ENV_FILE = "python_env.yaml"
CONDA_ENV_FILE = "conda.yaml"
PARAMETER_TYPES = ("string", "float", "int", "path", "uri")
SCRIPT_RUNNERS = {".py": "python", ".sh": "shell"}
_INT = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class EnvironmentSpec:
    """Which kind of environment the project asks for (`python`, `conda`, `docker` or none) and its file."""

    kind: str | None
    path: Path | None = None
    docker: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str = "string"
    default: str | None = None

    def resolve(self, value: str, entry_point: str, download: Callable[[str], str]) -> tuple[str, str]:
        """(value logged as the run's param, value put in the command), or ExecutionException."""
        if self.type == "int" and not _INT.match(value.strip()):
            raise self._bad(value, "an int", entry_point)
        if self.type == "float":
            try:
                float(value)
            except ValueError:
                raise self._bad(value, "a float", entry_point) from None
        if self.type == "path":
            return value, shlex.quote(
                _local_path(f"'{self.name}' of entry point '{entry_point}'", value, download)
            )
        if self.type == "uri":
            return shlex.quote(value), shlex.quote(_absolute_if_local(value))
        quoted = shlex.quote(value)
        return quoted, quoted

    def _bad(self, value: str, kind: str, entry_point: str) -> ExecutionException:
        return ExecutionException(
            f"Parameter '{self.name}' of entry point '{entry_point}' must be {kind}, got {value!r}."
        )


@dataclass(frozen=True)
class EntryPoint:
    name: str
    command: str
    parameters: Mapping[str, Parameter] = field(default_factory=dict)

    def resolve(self, given: Mapping[str, Any], download: Callable[[str], str]) -> tuple[dict[str, str], str]:
        """(params to log, the command) for the user's values; refuses missing or mistyped values."""
        values = {k: str(v) for k, v in given.items()}
        missing = [p.name for p in self.parameters.values() if p.name not in values and p.default is None]
        if missing:
            names = ", ".join(f"'{m}'" for m in missing)
            raise ExecutionException(
                f"No value given for missing parameters: {names} (entry point '{self.name}')."
            )
        logged: dict[str, str] = {}
        in_command: dict[str, str] = {}
        for parameter in self.parameters.values():
            value = values.get(parameter.name, parameter.default)
            assert value is not None
            logged[parameter.name], in_command[parameter.name] = parameter.resolve(value, self.name, download)
        extras = [name for name in values if name not in self.parameters]
        command = self._format(in_command)
        for name in extras:
            quoted = shlex.quote(values[name])
            logged[name] = quoted
            command += f" {shlex.quote('--' + name)} {quoted}"
        return logged, command

    def _format(self, values: Mapping[str, str]) -> str:
        try:
            return self.command.format(**values)
        except KeyError as exc:
            raise ExecutionException(
                f"The command of entry point '{self.name}' uses {{{exc.args[0]}}}, which is not one of "
                f"its parameters {sorted(self.parameters)}."
            ) from None
        except (IndexError, ValueError) as exc:
            raise ExecutionException(
                f"The command of entry point '{self.name}' is not a valid template ({exc}); "
                "write a literal brace as '{{' or '}}'."
            ) from None


@dataclass(frozen=True)
class Project:
    directory: Path
    name: str | None
    environment: EnvironmentSpec
    entry_points: Mapping[str, EntryPoint]

    def entry_point(self, name: str) -> EntryPoint:
        """A declared entry point, else a `.py`/`.sh` file of the project run as a script (MLflow's rule)."""
        if name in self.entry_points:
            return self.entry_points[name]
        suffix = Path(name).suffix
        script = (self.directory / name).resolve()
        inside = script.is_relative_to(self.directory.resolve())
        if suffix in SCRIPT_RUNNERS and inside and script.is_file():
            runner = "python" if suffix == ".py" else os.environ.get("SHELL") or "bash"
            return EntryPoint(name, f"{shlex.quote(runner)} {shlex.quote(name)}")
        raise ExecutionException(
            f"Could not find entry point '{name}' among the project's entry points "
            f"{sorted(self.entry_points)}, nor a script of that name (a .py or .sh file in the project)."
        )


def load_project(directory: Path) -> Project:
    """The project in `directory`: its MLproject file if it has one, else MLflow's defaults."""
    mlproject = _find_mlproject(directory)
    if mlproject is None:
        return Project(directory, None, _default_environment(directory), {})
    try:
        spec = yaml.safe_load(mlproject.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ExecutionException(f"Could not read {mlproject}: {exc}") from None
    if not isinstance(spec, dict):
        raise ExecutionException(f"{mlproject} must be a YAML mapping (name, entry_points, ...).")
    entry_points = {
        str(name): _entry_point(str(name), body)
        for name, body in (_mapping(spec, "entry_points", mlproject) or {}).items()
    }
    name = spec.get("name")
    return Project(
        directory, str(name) if name is not None else None, _environment(directory, spec), entry_points
    )


def _find_mlproject(directory: Path) -> Path | None:
    for child in directory.iterdir():
        if child.is_file() and child.name.lower() == MLPROJECT_FILE.lower():
            return child
    return None


def _mapping(spec: Mapping[str, Any], key: str, source: Any) -> Mapping[str, Any] | None:
    value = spec.get(key)
    if value is not None and not isinstance(value, dict):
        raise ExecutionException(f"'{key}' in {source} must be a mapping, got {type(value).__name__}.")
    return value


def _entry_point(name: str, body: Any) -> EntryPoint:
    if not isinstance(body, dict) or not isinstance(body.get("command"), str):
        raise ExecutionException(f"Entry point '{name}' must have a 'command' string.")
    parameters = {}
    for param_name, param_spec in (_mapping(body, "parameters", f"entry point '{name}'") or {}).items():
        parameters[str(param_name)] = _parameter(name, str(param_name), param_spec)
    return EntryPoint(name, body["command"], parameters)


def _parameter(entry_point: str, name: str, spec: Any) -> Parameter:
    """`name: type` or `name: {type: t, default: d}` (type defaults to string)."""
    if isinstance(spec, dict):
        kind = str(spec.get("type", "string"))
        default = spec.get("default")
    else:
        kind, default = str(spec) if spec is not None else "string", None
    if kind not in PARAMETER_TYPES:
        raise ExecutionException(
            f"Parameter '{name}' of entry point '{entry_point}' has type {kind!r}; "
            f"expected one of {list(PARAMETER_TYPES)}."
        )
    return Parameter(name, kind, None if default is None else str(default))


def _environment(directory: Path, spec: Mapping[str, Any]) -> EnvironmentSpec:
    declared = [key for key in ("python_env", "conda_env", "docker_env") if spec.get(key) is not None]
    if len(declared) > 1:
        raise ExecutionException(f"The MLproject declares {declared}; a project has at most one environment.")
    if not declared:
        return _default_environment(directory)
    key = declared[0]
    if key == "docker_env":
        docker = spec[key]
        if not isinstance(docker, dict) or not docker.get("image"):
            raise ExecutionException("docker_env in the MLproject must be a mapping with an 'image'.")
        return EnvironmentSpec("docker", None, docker)
    path = (directory / str(spec[key])).resolve()
    if not path.is_relative_to(directory.resolve()) or not path.is_file():
        raise ExecutionException(
            f"The MLproject names {key} file {spec[key]!r}, but there is no such file in the project."
        )
    return EnvironmentSpec("python" if key == "python_env" else "conda", path)


def _default_environment(directory: Path) -> EnvironmentSpec:
    """MLflow's rule without an MLproject environment: python_env.yaml, else conda.yaml, else none."""
    for kind, file_name in (("python", PYTHON_ENV_FILE), ("conda", CONDA_ENV_FILE)):
        if (directory / file_name).is_file():
            return EnvironmentSpec(kind, directory / file_name)
    return EnvironmentSpec(None)


def _has_scheme(value: str) -> bool:
    scheme = urllib.parse.urlsplit(value).scheme
    return len(scheme) > 1  # not a Windows drive letter


def _local_path(name: str, value: str, download: Callable[[str], str]) -> str:
    """A `path` value as an absolute local path: relative to the caller's folder, or downloaded."""
    if value.startswith("file:"):
        value = urllib.parse.unquote(urllib.parse.urlsplit(value).path)
    elif _has_scheme(value):
        return download(value)
    path = Path(value).expanduser().absolute()
    if not path.exists():
        raise ExecutionException(f"Parameter {name} is a path, and {value!r} does not exist.")
    return str(path)


def _absolute_if_local(value: str) -> str:
    """A `uri` value: URIs with a scheme pass unchanged, a relative local path becomes absolute."""
    return value if _has_scheme(value) else str(Path(value).expanduser().absolute())
