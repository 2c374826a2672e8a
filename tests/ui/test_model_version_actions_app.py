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


def _post(client: TestClient, url: str, **fields: str) -> None:
    client.get("/models")  # the CSRF cookie
    data = {"csrf_token": client.cookies["modelyard_csrf"], **fields}
    answer = client.post(url, data=data, follow_redirects=False)
    assert answer.status_code == 303, answer.text


def test_the_model_pages_description_tags_and_aliases_are_edited_from_its_forms(client: TestClient) -> None:
    """The model page's own forms (each a POST with the CSRF token, back to the page): description
    (markdown, shown rendered), tag set and removed, alias removed."""
    _model(client, "edited")
    store = client.app.state.registry_store  # type: ignore[attr-defined]
    _post(client, "/model/description", name="edited", description="Predicts **churn**.\n\n<i>raw</i>")
    assert store.get_registered_model("edited").description == "Predicts **churn**.\n\n<i>raw</i>"
    page = client.get("/model?name=edited").text
    assert "Predicts <strong>churn</strong>." in page and "&lt;i&gt;raw&lt;/i&gt;" in page
    _post(client, "/model/tag", name="edited", key="team", value="risk")
    assert store.get_registered_model("edited").tags == {"team": "risk"}
    assert 'aria-label="Remove tag team"' in client.get("/model?name=edited").text
    _post(client, "/model/tag", name="edited", key="team", delete="1")
    assert store.get_registered_model("edited").tags == {}
    _post(client, "/model/alias", name="edited", alias="champion", version="1")
    assert store.get_model_version_by_alias("edited", "champion").version == "1"
    _post(client, "/model/alias", name="edited", alias="champion", delete="1")
    assert not store.get_registered_model("edited").aliases
    events = client.get("/api/2.0/modelyard/registry/events", params={"name": "edited"}).json()["events"]
    assert [e["kind"] for e in events[:5]] == [
        "alias_deleted", "alias_set", "model_tag_deleted", "model_tag_set", "model_description_set",
    ]  # fmt: skip
