"""The model page's per-version forms, loaded when a row's action opens (ASGI, no browser)."""

from __future__ import annotations

from fastapi.testclient import TestClient

HOSTILE = "<img src=x onerror=alert(1)>"


def _model(client: TestClient, name: str) -> None:
    state = client.app.state  # type: ignore[attr-defined]
    experiment = state.tracking_store.get_experiment_by_name("Default") or state.tracking_store.get_experiment("0")
    run = state.tracking_store.create_run(experiment.experiment_id, "u", 0, [], "r")
    state.registry_store.create_registered_model(name)
    state.registry_store.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)


def test_the_model_page_carries_no_version_forms_only_their_links(client: TestClient) -> None:
    _model(client, "rows")
    html = client.get("/model?name=rows").text
    assert 'action="/model/stage"' not in html and 'action="/model/alias"' not in html
    assert 'hx-get="/model/version-actions?name=rows&amp;version=1&amp;kind=stage"' in html
    assert 'href="/model/version-actions?name=rows&amp;version=1&amp;kind=alias"' in html


def test_a_form_is_a_fragment_for_htmx_and_a_page_without_it(client: TestClient) -> None:
    _model(client, "forms")
    fragment = client.get("/model/version-actions?name=forms&version=1&kind=stage", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and 'action="/model/stage"' in fragment.text
    assert 'name="csrf_token"' in fragment.text and '<option selected>None</option>' in fragment.text
    whole = client.get("/model/version-actions?name=forms&version=1&kind=alias")
    assert whole.status_code == 200 and "<html" in whole.text and 'action="/model/alias"' in whole.text


def test_bad_questions_are_clear_pages(client: TestClient) -> None:
    _model(client, "asked")
    assert client.get("/model/version-actions?name=asked&version=1&kind=delete").status_code == 400
    assert client.get("/model/version-actions?name=asked&version=9&kind=stage").status_code == 404
    assert client.get("/model/version-actions?name=nobody&version=1&kind=stage").status_code == 404


def test_a_hostile_name_is_text(client: TestClient) -> None:
    _model(client, HOSTILE)
    page = client.get("/model/version-actions", params={"name": HOSTILE, "version": "1", "kind": "alias"}).text
    assert HOSTILE not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
