"""Version numbers under concurrent registration: parallel clients over HTTP against a gunicorn
tracking service with several workers must get versions 1..N exactly (no duplicates, no gaps)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests
from tests.conftest import TrackingServerFactory

API = "/api/2.0/mlflow"
CLIENTS = 20


def _post(url: str, path: str, body: dict[str, object]) -> dict[str, object]:
    response = requests.post(f"{url}{API}/{path}", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_concurrent_create_model_version_yields_1_to_n(
    db_uri: str, tracking_server: TrackingServerFactory
) -> None:
    url = tracking_server(db_uri, workers=4)
    experiment_id = _post(url, "experiments/create", {"name": "race"})["experiment_id"]
    run = _post(url, "runs/create", {"experiment_id": experiment_id})["run"]
    run_id, artifact_uri = run["info"]["run_id"], run["info"]["artifact_uri"]  # type: ignore[index]
    _post(url, "registered-models/create", {"name": "raced"})

    barrier = threading.Barrier(CLIENTS)

    def register(i: int) -> str:
        # One session per thread: separate connections, spread over the workers.
        with requests.Session() as session:
            barrier.wait()
            response = session.post(
                f"{url}{API}/model-versions/create",
                json={"name": "raced", "source": f"{artifact_uri}/model-{i}", "run_id": run_id},
                timeout=60,
            )
        assert response.status_code == 200, response.text
        return str(response.json()["model_version"]["version"])

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        versions = list(pool.map(register, range(CLIENTS)))

    assert sorted(int(v) for v in versions) == list(range(1, CLIENTS + 1))
    listed = requests.get(
        f"{url}{API}/model-versions/search", params={"filter": "name = 'raced'"}, timeout=60
    ).json()["model_versions"]
    by_version = {mv["version"]: mv["source"] for mv in listed}
    assert sorted(int(v) for v in by_version) == list(range(1, CLIENTS + 1))
    # Each source was registered exactly once: no request was answered with another's version.
    assert len(set(by_version.values())) == CLIENTS
    # The next registration continues the sequence.
    after = _post(
        url, "model-versions/create", {"name": "raced", "source": f"{artifact_uri}/m", "run_id": run_id}
    )
    assert after["model_version"]["version"] == str(CLIENTS + 1)  # type: ignore[index]
