"""The dev stack's shell file and where a relocated cluster goes: quick checks without servers."""

from __future__ import annotations

import pwd
import subprocess
import sys
from pathlib import Path

from modelyard.devstack.postgres import relocated_data_dir
from modelyard.devstack.stack import Stack, load_config, read_env_file


def test_stack_env_puts_the_venv_first_on_path_once_and_reads_back_without_the_path_line(
    tmp_path: Path,
) -> None:
    stack = Stack(tmp_path, load_config(environ={}))
    stack.state_dir.mkdir()
    env_file = stack.write_env_file()
    venv_bin = str(Path(sys.executable).parent)
    shell = f'PATH=/usr/bin:/bin; source "{env_file}"; source "{env_file}"; echo "$PATH"; echo "$MLFLOW_TRACKING_URI"'
    path, uri = subprocess.run(
        ["bash", "-c", shell], capture_output=True, text=True, check=True
    ).stdout.split()
    assert path == f"{venv_bin}:/usr/bin:/bin"  # sourcing it again does not add it twice
    assert uri == stack.client_env()["MLFLOW_TRACKING_URI"]
    assert read_env_file(env_file) == stack.client_env()  # the PATH line is shell, not a variable to copy


def test_a_relocated_cluster_has_its_own_short_stable_folder_in_the_owners_home() -> None:
    owner = pwd.struct_passwd(("postgres", "x", 999, 999, "", "/nonexistent-home", "/bin/sh"))
    deep = Path("/root/" + "a-very-long-folder-name/" * 6 + "checkout/.data/postgres")
    first = relocated_data_dir(deep, owner)
    assert first == relocated_data_dir(deep, owner)  # the same checkout finds its cluster again
    assert first != relocated_data_dir(Path("/root/other/.data/postgres"), owner)
    assert first.parent.parent == Path("/var/tmp/modelyard-clusters")  # no usable home: /var/tmp
    # Named after the checkout, and short: the socket goes next to the data, and under
    # /var/lib/postgresql/modelyard-clusters/<name>/socket/.s.PGSQL.NNNNN it must stay under 108 bytes.
    assert first.parent.name.startswith("checkout-") and len(first.parent.name) <= 33


def test_with_auth_on_the_stack_env_carries_the_local_admins_credentials(tmp_path: Path) -> None:
    stack = Stack(tmp_path, load_config(environ={"MODELYARD_AUTH": "true"}))
    stack.state_dir.mkdir()
    env = read_env_file(stack.write_env_file())
    assert env["MLFLOW_TRACKING_USERNAME"] == "admin" and len(env["MLFLOW_TRACKING_PASSWORD"]) >= 20
    assert stack.admin_password_file.stat().st_mode & 0o777 == 0o600
    assert Stack(tmp_path, load_config(environ={"MODELYARD_AUTH": "true"})).admin_password() == env["MLFLOW_TRACKING_PASSWORD"]
    from modelyard.devstack.services import ENDPOINTS, TRACKING

    tracking = stack.service_env(TRACKING)
    assert tracking["MODELYARD_AUTH"] == "true" and tracking["MODELYARD_ADMIN_PASSWORD_FILE"] == str(stack.admin_password_file)
    assert "MODELYARD_ADMIN_PASSWORD" not in tracking  # the bootstrap reads the file
    assert stack.service_env(ENDPOINTS)["MODELYARD_AUTH"] == "false"
    off = Stack(tmp_path / "off", load_config(environ={"MODELYARD_AUTH": "false"}))
    assert "MLFLOW_TRACKING_PASSWORD" not in off.client_env()
