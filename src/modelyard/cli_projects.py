"""`modelyard run URI`: run an MLflow project (MLproject folder or git URI) as a tracked run.

The options are `mlflow run`'s for the local backend. Exit code: 0 when the run FINISHED, 1 when it
failed or could not start (the message names the entry point or parameter at fault), 130 after
Ctrl-C (the command's processes are stopped and the run ends KILLED).
"""

from __future__ import annotations

import sys

import click

from modelyard.exceptions import ModelyardException


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint=option)
        pairs[name] = value
    return pairs


@click.command("run")
@click.argument("uri")
@click.option(
    "--entry-point",
    "-e",
    default="main",
    show_default=True,
    metavar="NAME",
    help="Entry point of the MLproject, or a .py/.sh file of the project.",
)
@click.option(
    "--version",
    "-v",
    "version",
    default=None,
    metavar="VERSION",
    help="Git commit, branch or tag to run (git projects).",
)
@click.option(
    "--param-list",
    "-P",
    "param_list",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter; names the entry point does not declare are passed as --NAME VALUE.",
)
@click.option("--experiment-name", default=None, help="Experiment to run in (created when missing).")
@click.option("--experiment-id", default=None, help="ID of the experiment to run in.")
@click.option(
    "--env-manager",
    type=click.Choice(["local", "virtualenv", "uv", "conda"]),
    default=None,
    help="Environment to run in [default: the project's: virtualenv for a python_env].",
)
@click.option("--run-name", default=None, help="Name of the run.")
@click.option("--run-id", default=None, hidden=True, help="Use this existing run instead of a new one.")
@click.option("--storage-dir", default=None, help="Where remote `path` parameters are downloaded.")
@click.option("--backend", "-b", default="local", show_default=True, help="Only 'local' is supported.")
def run(
    uri: str,
    entry_point: str,
    version: str | None,
    param_list: tuple[str, ...],
    experiment_name: str | None,
    experiment_id: str | None,
    env_manager: str | None,
    run_name: str | None,
    run_id: str | None,
    storage_dir: str | None,
    backend: str,
) -> None:
    """Run the project at URI (a folder, a git URL, `#subdir` allowed) as a tracked run."""
    from modelyard import projects

    try:
        submitted = projects.run(
            uri,
            entry_point=entry_point,
            version=version,
            parameters=_pairs(param_list, "-P"),
            experiment_name=experiment_name,
            experiment_id=experiment_id,
            backend=backend,
            storage_dir=storage_dir,
            run_id=run_id,
            run_name=run_name,
            env_manager=env_manager,
        )
    except ModelyardException as exc:
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted: the project's command was stopped and its run ended KILLED.", err=True)
        sys.exit(130)
    click.echo(f"=== Run (ID '{submitted.run_id}') succeeded ===", err=True)
