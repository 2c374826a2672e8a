"""README.md's five-minute tour, run as written, so the README cannot drift from the product.

The tour's code blocks are extracted from README.md and run in order against a fresh `make up` in a
private copy of the checkout, the way a newcomer runs them: shell blocks with bash as written (each
starting from the environment the previous one left, so `source .stack/env` carries over), the Python
block twice, first with `import modelyard as mlflow`, then with the real client (`import mlflow`), which
registers and promotes version 2 before the endpoint is moved to it.

The copy lives in a `mktemp -d` folder (mode 0700), so when the suite runs as root this is also the
test that `make up` works where the `postgres` user cannot enter. It reuses the running venv
(`VENV=... SKIP_INSTALL=1`) instead of installing one, and starts the stack once for the module.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from modelyard.devstack.process import free_port, port_in_use, stop_group
from modelyard.devstack.services import SERVICES

pytestmark = [
    pytest.mark.stack,
    pytest.mark.postgres,
    pytest.mark.s3,
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.timeout(900),
]

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.prefix) / "bin"
#: The tour's blocks, in order: what each is and the language it must be written in.
TOUR = (
    ("up", "bash"), ("log", "python"), ("autolog", "python"), ("serve", "bash"), ("deploy", "bash"), ("update", "bash"),
)  # fmt: skip
SERVE_PORT = 8080  # the README's `models serve --port`


def tour_blocks(readme: Path = REPO / "README.md") -> dict[str, str]:
    """The fenced code blocks of the `## A five-minute tour` section, named after TOUR."""
    text = readme.read_text()
    section = text[text.index("## A five-minute tour") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"^```(\w+)\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    assert [lang for lang, _ in blocks] == [lang for _, lang in TOUR], (
        "the tour's code blocks changed: update TOUR in this test to run them all"
    )
    return {name: code for (name, _), (_, code) in zip(TOUR, blocks, strict=True)}


def copy_checkout(target: Path) -> None:
    """The checkout as it stands (tracked and new files, with their current contents), no venv or data."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@dataclass
class Shell:
    """Runs blocks with bash in `cwd`; each starts from the environment the previous one exported."""

    cwd: Path
    env: dict[str, str]
    transcript: list[str] = field(default_factory=list)

    def run(self, code: str, timeout: float = 600) -> str:
        env_out = self.cwd.parent / "env.out"
        script = f'{code}\nenv -0 > "{env_out}"\n'
        proc = subprocess.Popen(
            ["bash", "-e", "-c", script],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            output, _ = proc.communicate(timeout=timeout)
        finally:
            stop_group(proc.pid, proc=proc)  # whatever a block left in the background
        self.transcript.append(f"$ {code}\n{output}")
        assert proc.returncode == 0, "\n".join(self.transcript)
        self.env = dict(line.split("=", 1) for line in env_out.read_text().split("\0") if "=" in line)
        return output

    def python(self, code: str) -> str:
        """`python` as the shell finds it on PATH (after `source .stack/env`: the venv's)."""
        python = shutil.which("python", path=self.env["PATH"])
        assert python is not None and Path(python).parent == VENV_BIN, python
        result = subprocess.run(
            [python, "-c", code], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=600
        )
        self.transcript.append(f">>> {code}\n{result.stdout}{result.stderr}")
        assert result.returncode == 0, "\n".join(self.transcript)
        return result.stdout


@dataclass
class Tour:
    root: Path
    shell: Shell
    up_output: str


@pytest.fixture(scope="module")
def tour() -> Iterator[Tour]:
    """A copy of the checkout in a private folder, with the tour's first block (`make up`) run in it."""
    blocks = tour_blocks()
    base = Path(tempfile.mkdtemp(prefix="modelyard-readme-"))  # 0700, like root's home
    root = base / "modelyard"
    copy_checkout(root)
    ports = {"MODELYARD_PG_PORT": free_port(), "MODELYARD_S3_PORT": free_port()}
    ports.update({spec.port_var: free_port() for spec in SERVICES})
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MODELYARD_", "MLFLOW_", "AWS_", "VIRTUAL_ENV"))
    }
    # A newcomer's shell: the venv is not on PATH until `source .stack/env` puts it there.
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != VENV_BIN
    )
    env.update({key: str(port) for key, port in ports.items()})
    env.update(
        VENV=sys.prefix,  # reuse this venv: installing one would take minutes
        SKIP_INSTALL="1",
        NATIVE="1",
        AWS_CONFIG_FILE=os.devnull,  # never a developer's real AWS profile
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    shell = Shell(root, env)
    try:
        up_output = shell.run(blocks["up"])
        yield Tour(root, shell, up_output)
    finally:
        cleaned = subprocess.run(["make", "clean"], cwd=root, env=env, capture_output=True, text=True)
        link = root / ".data" / "postgres"
        target = link.resolve() if link.is_symlink() else None
        shutil.rmtree(base, ignore_errors=True)
        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
        assert target is None or not target.exists(), f"make clean left the cluster in {target}"


def test_make_up_from_a_private_folder_puts_the_stack_and_the_venv_in_the_shell(tour: Tour) -> None:
    assert stat.S_IMODE(tour.root.parent.stat().st_mode) == 0o700
    data = tour.root / ".data" / "postgres"
    if os.geteuid() == 0:
        # The postgres user cannot enter the folder: its cluster lives where it can, linked from here.
        assert data.is_symlink() and (data / "PG_VERSION").is_file()
    else:
        assert (data / "PG_VERSION").is_file()
    # One line per step, with its time.
    for name in ("postgres", "s3", *(spec.name for spec in SERVICES)):
        assert re.search(rf"^  {name} +\d+\.\ds  \S", tour.up_output, re.MULTILINE), tour.up_output
    env = tour.shell.env
    assert env["MLFLOW_TRACKING_URI"] == f"http://127.0.0.1:{env['MODELYARD_GATEWAY_PORT']}"
    assert Path(shutil.which("modelyard", path=env["PATH"]) or "").parent == VENV_BIN
    assert Path(shutil.which("python", path=env["PATH"]) or "").parent == VENV_BIN


def test_readme_tour_runs_as_written_with_both_clients(tour: Tour, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = tour_blocks()
    shell = tour.shell
    log = blocks["log"]
    assert log.startswith("import modelyard as mlflow\n")

    first = shell.python(log)
    assert "diabetes version 1 is in Production and @champion" in first

    autologged = shell.python(blocks["autolog"])
    assert "confusion_matrix" in autologged and "roc_curve_plot" in autologged, autologged

    if port_in_use(SERVE_PORT):
        pytest.fail(f"the README serves on port {SERVE_PORT}, which another process holds")
    assert '{"predictions":[' in shell.run(blocks["serve"])

    created = shell.run(blocks["deploy"])
    assert '"EndpointConfigName": "diabetes-diabetes-v1-' in created
    assert "b'{\"predictions\":[" in created  # boto3's invoke_endpoint through the endpoint

    # The same script with the real mlflow client registers and promotes the next version.
    second = shell.python(log.replace("import modelyard as mlflow\n", "import mlflow\n", 1))
    assert "diabetes version 2 is in Production and @champion" in second

    updated = shell.run(blocks["update"])
    assert '"EndpointConfigName": "diabetes-diabetes-v2-' in updated
    assert '"predictions"' in updated

    from modelyard import MlflowClient

    # `make up` turns auth on: .stack/env carries the local admin's credentials for the clients.
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(name, shell.env[name])
    client = MlflowClient(shell.env["MLFLOW_TRACKING_URI"])
    versions = {v.version: v for v in client.search_model_versions("name = 'diabetes'")}
    assert {v: versions[v].current_stage for v in ("1", "2")} == {"1": "Archived", "2": "Production"}

    # The tour's "open the UI" step: the gateway serves the tracking service's pages at `/`.
    import requests

    auth = (shell.env["MLFLOW_TRACKING_USERNAME"], shell.env["MLFLOW_TRACKING_PASSWORD"])
    home = requests.get(shell.env["MLFLOW_TRACKING_URI"] + "/", auth=auth, timeout=30)
    assert home.status_code == 200 and home.url.endswith("/experiments"), (home.status_code, home.url)
    assert "text/html" in home.headers["content-type"] and ">diabetes<" in home.text and ">cancer<" in home.text
    assert '"InService"' in versions["2"].tags["modelyard.deploy.diabetes"]
    # The update replaced v1: its tag and the model page say it no longer serves there.
    assert '"Replaced"' in versions["1"].tags["modelyard.deploy.diabetes"]
    model_page = requests.get(shell.env["MLFLOW_TRACKING_URI"] + "/model?name=diabetes", auth=auth, timeout=30).text
    rows = {v: model_page.split(f'<tr id="v{v}">', 1)[1].split("</tr>", 1)[0] for v in ("1", "2")}
    chip = 'class="chip" href="/deployments/diabetes"'
    assert chip in rows["2"] and chip not in rows["1"] and "was on diabetes" in rows["1"]
