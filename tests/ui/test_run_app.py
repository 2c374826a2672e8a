"""The run page's server side through the ASGI app (no browser): series JSON, previews, edits, errors."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from modelyard.ui import artifact_access
from modelyard.ui.markdown import link_allowed, render_markdown

API = "/api/2.0/mlflow"


@pytest.fixture
def run(client: TestClient) -> dict[str, str]:
    experiment_id = client.post(f"{API}/experiments/create", json={"name": "e"}).json()["experiment_id"]
    info = client.post(f"{API}/runs/create", json={"experiment_id": experiment_id, "run_name": "r"}).json()[
        "run"
    ]["info"]
    metrics = [{"key": "loss", "value": float(i % 97), "timestamp": 1000 + i, "step": i} for i in range(5000)]
    for start in range(0, len(metrics), 1000):
        batch = {"run_id": info["run_id"], "metrics": metrics[start : start + 1000]}
        assert client.post(f"{API}/runs/log-batch", json=batch).status_code == 200
    return {
        "run_id": info["run_id"],
        "experiment_id": experiment_id,
        "root": info["artifact_uri"].split(":", 1)[1],
    }


def _put(client: TestClient, run: dict[str, str], path: str, body: bytes) -> None:
    url = f"/api/2.0/mlflow-artifacts/artifacts{run['root']}/{path}"
    assert client.put(url, content=body).status_code == 200


def test_series_json_is_downsampled_then_full_resolution_when_zoomed(
    client: TestClient, run: dict[str, str]
) -> None:
    url = f"/runs/{run['run_id']}/metric-series"
    whole = client.get(url, params={"key": "loss", "points": 500}, headers={"Accept-Encoding": "gzip"})
    assert whole.status_code == 200 and whole.headers["content-encoding"] == "gzip"
    assert whole.headers["x-content-type-options"] == "nosniff"
    body = whole.json()
    assert body["sampled"] and len(body["x"]) == 500 and body["bucket_width"] == 10
    assert body["summary"] == {
        "count": 5000, "min": 0.0, "max": 96.0, "last": float(4999 % 97), "last_step": 4999,
        "last_timestamp": 5999, "min_step": 0, "max_step": 4999,
    }  # fmt: skip
    assert body["y_max"][0] == 9.0 and body["y_min"][0] == 0.0
    zoom = client.get(url, params={"key": "loss", "points": 500, "min": 1000, "max": 1399}).json()
    assert not zoom["sampled"] and zoom["x"] == list(range(1000, 1400))
    assert zoom["y"] == [float(i % 97) for i in range(1000, 1400)] and zoom["summary"] == body["summary"]
    lean = client.get(url, params={"key": "loss", "min": 1000, "max": 1399, "summary": "0"}).json()
    assert lean["summary"] is None and lean["x"] == zoom["x"]
    relative = client.get(url, params={"key": "loss", "x": "relative", "min": 0, "max": 9}).json()
    assert relative["x"] == list(range(10))


@pytest.mark.parametrize(
    "query",
    [
        {"key": "loss", "x": "epoch"},
        {"key": "loss", "points": 1},
        {"key": "loss", "min": "abc"},
        {"key": "loss", "min": "inf"},
        {},
    ],
)
def test_bad_series_queries_are_400s(client: TestClient, run: dict[str, str], query: dict) -> None:
    response = client.get(f"/runs/{run['run_id']}/metric-series", params=query)
    assert response.status_code == 400, response.text


def test_unknown_runs_and_metrics_are_404s(client: TestClient, run: dict[str, str]) -> None:
    assert client.get(f"/runs/{run['run_id']}/metric-series", params={"key": "nope"}).status_code == 404
    assert (
        client.get("/runs/0123456789abcdef0123456789abcdef/metric-series", params={"key": "loss"}).status_code
        == 404
    )
    missing = client.get("/runs/0123456789abcdef0123456789abcdef")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]


@pytest.mark.parametrize(
    "query",
    ["tab=sideways", "tab=charts&x=epoch", "tab=charts&scale=cubic", "tab=charts&smooth=2", "tab=charts&smooth=x",
     "tab=charts&keys=nope", "tab=artifacts&path=../../etc/passwd", "tab=artifacts&model=m-nope"],
)  # fmt: skip
def test_bad_page_queries_are_messages_not_500s(client: TestClient, run: dict[str, str], query: str) -> None:
    response = client.get(f"/runs/{run['run_id']}?{query}")
    assert response.status_code in (400, 404), response.text
    assert "text/html" in response.headers["content-type"] and 'class="error"' in response.text


def test_every_tab_renders_without_inline_script(client: TestClient, run: dict[str, str]) -> None:
    for tab in ("overview", "charts", "artifacts"):
        response = client.get(f"/runs/{run['run_id']}", params={"tab": tab})
        assert response.status_code == 200
        assert "<script>" not in response.text and "style=" not in response.text
    charts = client.get(f"/runs/{run['run_id']}", params={"tab": "charts", "keys": "loss"}).text
    assert 'data-key="loss"' in charts and "uPlot" in charts


def test_previews_are_bounded_and_inert(
    client: TestClient, run: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(artifact_access, "PREVIEW_MAX_BYTES", 1000)
    _put(client, run, "big.log", b"x" * 5000)
    _put(client, run, "evil.svg", b"<svg onload=alert(1)>")
    _put(client, run, "fake.png", b"<html><script>alert(1)</script>")
    base = f"/runs/{run['run_id']}/artifacts"
    big = client.get(f"{base}/preview", params={"path": "big.log"})
    assert big.headers["x-content-type-options"] == "nosniff"
    assert "x" * 1000 in big.text and "x" * 1001 not in big.text and "Showing the first" in big.text
    svg = client.get(f"{base}/preview", params={"path": "evil.svg"}).text
    assert "&lt;svg onload=alert(1)&gt;" in svg and "<svg" not in svg
    fake = client.get(f"{base}/file", params={"path": "fake.png"})
    assert fake.headers["content-type"] == "image/png" and fake.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in fake.headers["content-security-policy"]
    download = client.get(f"{base}/file", params={"path": "evil.svg", "download": "1"})
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"].startswith("attachment")
    assert client.get(f"{base}/preview", params={"path": "../../x"}).status_code == 400
    assert client.get(f"{base}/file", params={"path": "nope.txt"}).status_code == 404
    assert "No file" in client.get(f"{base}/preview", params={"path": "nope.txt"}).text


def test_previews_of_files_nested_deeper_than_a_parser_goes_are_shown_as_text(client: TestClient, run: dict[str, str]) -> None:
    """A logged MLmodel or JSON file of 5,000 `[`: the pure-Python parsers raise RecursionError, which was a 500."""
    _put(client, run, "m/MLmodel", b"[" * 5000)
    _put(client, run, "deep.json", b"[" * 5000)
    base = f"/runs/{run['run_id']}/artifacts"
    mlmodel = client.get(f"{base}/preview", params={"path": "m/MLmodel"})
    assert mlmodel.status_code == 200 and "Could not read this MLmodel file" in mlmodel.text
    deep = client.get(f"{base}/preview", params={"path": "deep.json"})
    assert deep.status_code == 200 and "Not valid JSON" in deep.text


def test_edits_need_the_csrf_token_and_validate(client: TestClient, run: dict[str, str]) -> None:
    page = client.get(f"/runs/{run['run_id']}")
    token = client.cookies["modelyard_csrf"]
    assert page.status_code == 200 and 'name="csrf_token"' in page.text
    base = f"/runs/{run['run_id']}"
    assert client.post(f"{base}/tags", data={"key": "a", "value": "b"}).status_code == 403
    ok = client.post(
        f"{base}/tags", data={"key": "a", "value": "b", "csrf_token": token}, follow_redirects=False
    )
    assert ok.status_code == 303 and ok.headers["location"] == f"{base}#tags"
    assert (
        client.post(f"{base}/tags", data={"key": "mlflow.x", "value": "b", "csrf_token": token}).status_code
        == 400
    )
    assert client.post(f"{base}/tags", data={"key": "bad\x01key", "csrf_token": token}).status_code == 400
    assert client.post(f"{base}/rename", data={"name": " ", "csrf_token": token}).status_code == 400
    desc = client.post(
        f"{base}/description", data={"description": "**hi**", "csrf_token": token}, follow_redirects=False
    )
    assert desc.status_code == 303
    tags = {
        t["key"]: t["value"]
        for t in client.get(f"{API}/runs/get?run_id={run['run_id']}").json()["run"]["data"]["tags"]
    }
    assert tags["a"] == "b" and tags["mlflow.note.content"] == "**hi**"
    client.post(f"{base}/description", data={"description": "", "csrf_token": token})
    client.post(f"{base}/tags/delete", data={"key": "a", "csrf_token": token})
    tags = {
        t["key"] for t in client.get(f"{API}/runs/get?run_id={run['run_id']}").json()["run"]["data"]["tags"]
    }
    assert "a" not in tags and "mlflow.note.content" not in tags
    assert client.post(f"{base}/tags/delete", data={"key": "a", "csrf_token": token}).status_code == 404


def test_markdown_has_no_raw_html_and_only_safe_links() -> None:
    html = str(
        render_markdown(
            "<b>x</b> [a](javascript:alert(1)) [b](https://ok) [c](/runs/1) [d](DATA:text/html,x) ![i](x.png)"
        )
    )
    assert "<b>" not in html and "&lt;b&gt;" in html
    assert 'href="https://ok"' in html and 'href="/runs/1"' in html
    assert "javascript:" not in html.split("[a](")[0] and 'href="javascript' not in html.lower()
    assert 'href="data' not in html.lower() and "<img" not in html
    assert not link_allowed("vbscript:x") and not link_allowed("java\tscript:x") and link_allowed("#top")
