"""Regenerate README's screenshot from the tour's own data:

    .venv/bin/python infra/tools/readme_screenshot.py [docs/ui-runs.png]

Starts `modelyard ui` in a temporary folder, runs README's first Python block as `tour.py` three times
(n_estimators 50/100/200: three runs, versions 1-3) and its autolog block, then saves the top of the
diabetes runs page at 1366 px wide from Chromium (/usr/bin/chromium, as the browser tests use)."""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

repo = Path(__file__).resolve().parents[2]
out = Path(sys.argv[1]) if len(sys.argv) > 1 else repo / "docs" / "ui-runs.png"
readme = (repo / "README.md").read_text()
blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
log, autolog = blocks[0], blocks[1]
work = Path(tempfile.mkdtemp(prefix="shot-"))
port = 5123
env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELYARD_", "MLFLOW_"))}
proc = subprocess.Popen([sys.executable, "-m", "modelyard.cli", "ui", "--port", str(port)], cwd=work, env=env,
                        stdout=open(work / "ui.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
try:
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if requests.get(url + "/health", timeout=1).ok:
                break
        except requests.RequestException:
            time.sleep(0.5)
    env2 = {**env, "MLFLOW_TRACKING_URI": url}
    for n, depth in ((50, 4), (100, 6), (200, 8)):
        code = log.replace('n_estimators=100, max_depth=6', f'n_estimators={n}, max_depth={depth}').replace(
            '{"n_estimators": 100, "max_depth": 6}', f'{{"n_estimators": {n}, "max_depth": {depth}}}').replace('run_name="rf-100"', f'run_name="rf-{n}"')
        (work / "tour.py").write_text(code)
        subprocess.run([sys.executable, "tour.py"], env=env2, cwd=work, check=True, capture_output=True)
    (work / "autolog.py").write_text(autolog)
    subprocess.run([sys.executable, "autolog.py"], env=env2, cwd=work, check=True, capture_output=True)
    exp = requests.get(url + "/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "diabetes"}).json()["experiment"]["experiment_id"]
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = b.new_page(viewport={"width": 1366, "height": 768})
        page.goto(f"{url}/experiments/{exp}")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": 1366, "height": 400})
        b.close()
    print("ok", out)
finally:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)
