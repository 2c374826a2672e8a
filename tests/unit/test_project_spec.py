"""The MLproject file, entry points and typed parameters: pure logic, no run, no process."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from modelyard.projects import ExecutionException
from modelyard.projects.spec import load_project

MLPROJECT = """
name: demo
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      n: {type: int, default: 3}
      label: {type: string, default: "hello world"}
      data: path
      where: {type: uri, default: "s3://bucket/key"}
    command: "python train.py --alpha {alpha} --n {n} --label {label} --data {data} --where {where}"
  other:
    command: "python other.py"
"""


def _no_download(uri: str) -> str:
    raise AssertionError(f"unexpected download of {uri}")


@pytest.fixture
def project(tmp_path: Path):
    (tmp_path / "MLproject").write_text(MLPROJECT)
    (tmp_path / "python_env.yaml").write_text("python: '3.11'\n")
    (tmp_path / "train.py").write_text("")
    (tmp_path / "job.sh").write_text("")
    (tmp_path / "d.txt").write_text("1")
    return load_project(tmp_path)


def test_reads_name_environment_and_entry_points(project, tmp_path: Path) -> None:
    assert project.name == "demo"
    assert project.environment.kind == "python"
    assert project.environment.path == (tmp_path / "python_env.yaml").resolve()
    main = project.entry_point("main")
    assert [(p.name, p.type, p.default) for p in main.parameters.values()] == [
        ("alpha", "float", "0.5"),
        ("n", "int", "3"),
        ("label", "string", "hello world"),
        ("data", "path", None),
        ("where", "uri", "s3://bucket/key"),
    ]


def test_values_are_quoted_in_the_command_and_logged_as_mlflow_logs_them(
    project, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    logged, command = project.entry_point("main").resolve(
        {"data": "d.txt", "label": "it's; rm -rf /", "extra": "a b"}, _no_download
    )
    assert logged == {
        "alpha": "0.5",
        "n": "3",
        "label": shlex.quote("it's; rm -rf /"),
        "data": "d.txt",  # as given; the command gets the absolute path
        "where": "s3://bucket/key",
        "extra": "'a b'",
    }
    assert shlex.split(command) == [
        "python", "train.py", "--alpha", "0.5", "--n", "3", "--label", "it's; rm -rf /",
        "--data", str(tmp_path / "d.txt"), "--where", "s3://bucket/key", "--extra", "a b",
    ]  # fmt: skip


def test_a_relative_uri_becomes_absolute_and_a_remote_path_is_downloaded(
    project, tmp_path: Path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    downloaded = []

    def download(uri: str) -> str:
        downloaded.append(uri)
        return "/tmp/local copy"

    logged, command = project.entry_point("main").resolve(
        {"data": "s3://b/data.csv", "where": "rel/dir"}, download
    )
    assert downloaded == ["s3://b/data.csv"] and logged["data"] == "s3://b/data.csv"
    words = shlex.split(command)
    assert words[words.index("--data") + 1] == "/tmp/local copy"
    assert words[words.index("--where") + 1] == str(tmp_path / "rel" / "dir")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "No value given for missing parameters: 'data'"),
        ({"data": "d.txt", "n": "1.5"}, "Parameter 'n' of entry point 'main' must be an int, got '1.5'"),
        ({"data": "d.txt", "n": "abc"}, "must be an int"),
        ({"data": "d.txt", "alpha": "x"}, "Parameter 'alpha' of entry point 'main' must be a float, got 'x'"),
        ({"data": "missing.txt"}, "is a path, and 'missing.txt' does not exist"),
    ],
)
def test_missing_and_mistyped_values_are_refused(
    project, tmp_path: Path, monkeypatch, values, message
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExecutionException) as info:
        project.entry_point("main").resolve(values, _no_download)
    assert message in info.value.message


def test_numbers_in_any_spelling_pass(project, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    logged, _ = project.entry_point("main").resolve(
        {"data": "d.txt", "n": "-7", "alpha": "1e-3"}, _no_download
    )
    assert (logged["n"], logged["alpha"]) == ("-7", "1e-3")


def test_scripts_run_as_entry_points_and_unknown_names_are_refused(project) -> None:
    assert project.entry_point("train.py").command == "python train.py"
    assert project.entry_point("job.sh").command.endswith(" job.sh")
    for name in ("nope", "missing.py", "../train.py", "MLproject"):
        with pytest.raises(ExecutionException) as info:
            project.entry_point(name)
        assert (
            "Could not find entry point" in info.value.message and "['main', 'other']" in info.value.message
        )


def test_a_folder_without_mlproject_uses_mlflows_defaults(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("")
    bare = load_project(tmp_path)
    assert bare.entry_points == {} and bare.environment.kind is None
    logged, command = bare.entry_point("train.py").resolve({"lr": "0.1", "name": "x y"}, _no_download)
    assert logged == {"lr": "0.1", "name": "'x y'"}
    assert shlex.split(command) == ["python", "train.py", "--lr", "0.1", "--name", "x y"]
    (tmp_path / "conda.yaml").write_text("dependencies: []\n")
    assert load_project(tmp_path).environment.kind == "conda"
    (tmp_path / "python_env.yaml").write_text("python: '3.11'\n")
    assert load_project(tmp_path).environment.kind == "python"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("entry_points:\n  main: {command: 'x {y}'}\n", "uses {y}, which is not one of its parameters"),
        ("entry_points:\n  main: {parameters: {a: list}, command: x}\n", "has type 'list'"),
        ("entry_points:\n  main: {}\n", "must have a 'command' string"),
        ("python_env: nothere.yaml\nentry_points: {}\n", "no such file in the project"),
        ("python_env: ../outside.yaml\nentry_points: {}\n", "no such file in the project"),
        ("docker_env: {}\nentry_points: {}\n", "must be a mapping with an 'image'"),
        ("- a list\n", "must be a YAML mapping"),
    ],
)
def test_bad_mlproject_files_are_explained(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "outside.yaml").write_text("python: '3.11'\n")
    project_dir = tmp_path / "p"
    project_dir.mkdir()
    (project_dir / "MLproject").write_text(text)
    with pytest.raises(ExecutionException) as info:
        load_project(project_dir).entry_point("main").resolve({}, _no_download)
    assert message in info.value.message
