"""A registered-models search page (on PostgreSQL one statement, `store/registry/model_search`) gives
every model exactly as `get_registered_model` does (`loading.load_models`: the path the page used
before), in the search's order, for models with and without tags, aliases and versions, versions in
every stage, deleted versions and a restricted visibility; on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.entities import ModelVersionStage
from modelyard.exceptions import ModelyardException
from modelyard.store.registry.sql_store import SqlRegistryStore
from modelyard.store.search.visibility import Visibility
from modelyard.store.sql.migrate import upgrade

ROOT = "s3://bucket/registry"


@pytest.fixture
def store(db_uri: str) -> SqlRegistryStore:
    upgrade(db_uri)
    return SqlRegistryStore.from_uri(db_uri, artifact_roots=(ROOT,))


def _version(store: SqlRegistryStore, name: str, **kwargs: Any) -> str:
    return store.create_model_version(name, f"{ROOT}/{name}/{kwargs.pop('n', 0)}", **kwargs).version


@pytest.fixture
def models(store: SqlRegistryStore) -> list[str]:
    """Models covering the shapes a page holds; returns their names in name order."""
    store.create_registered_model("a-bare")
    store.create_registered_model("b-tagged", {"team": "a", "empty": "", "z": "last"}, description="tagged")
    # Every stage, several versions per stage, version tags, several aliases on one version, an alias on
    # a version that is no stage's latest, and the newest None version deleted (its tags and alias too).
    store.create_registered_model("c-staged", {"kind": "staged"})
    for n in range(1, 10):
        tags = {"v": str(n), "a": "first"} if n % 2 else None
        _version(store, "c-staged", n=n, tags=tags, description=f"v{n}" if n % 3 else None)
    store.transition_model_version_stage("c-staged", "1", "Archived")
    store.transition_model_version_stage("c-staged", "2", "Production")
    store.transition_model_version_stage("c-staged", "3", "Production")
    store.transition_model_version_stage("c-staged", "4", "Staging")
    store.set_registered_model_alias("c-staged", "prod", "3")
    store.set_registered_model_alias("c-staged", "champion", "3")
    store.set_registered_model_alias("c-staged", "old", "2")
    store.set_registered_model_alias("c-staged", "gone", "9")
    store.set_model_version_tag("c-staged", "9", "t", "x")
    store.delete_model_version("c-staged", "9")
    # Versions, every one deleted: no latest versions left.
    store.create_registered_model("d-all-deleted")
    for n in (1, 2):
        _version(store, "d-all-deleted", n=n)
    for n in ("1", "2"):
        store.delete_model_version("d-all-deleted", n)
    # Versions only in None, one with a run link; an alias, no tags.
    store.create_registered_model("e-versions", description="")
    _version(store, "e-versions", n=1)
    _version(store, "e-versions", n=2, run_link="http://example/run")
    store.set_registered_model_alias("e-versions", "first", "1")  # not on the latest version
    store.create_registered_model("f-prompt", {"mlflow.prompt.is_prompt": "true"})
    return ["a-bare", "b-tagged", "c-staged", "d-all-deleted", "e-versions", "f-prompt"]


def _page(store: SqlRegistryStore, **kwargs: Any) -> tuple[list[dict[str, Any]], str | None]:
    page = store.search_registered_models(**kwargs)
    return [m.to_dict() for m in page], page.token


def _one_by_one(store: SqlRegistryStore, names: list[str]) -> list[dict[str, Any]]:
    return [store.get_registered_model(name).to_dict() for name in names]


def test_a_page_is_each_model_as_get_gives_it(store: SqlRegistryStore, models: list[str]) -> None:
    page, token = _page(store, max_results=100)
    assert token is None
    assert [m["name"] for m in page] == models
    assert page == _one_by_one(store, models)
    staged = page[2]
    assert [(v["version"], v["current_stage"]) for v in staged["latest_versions"]] == [
        ("8", ModelVersionStage.NONE),
        ("4", ModelVersionStage.STAGING),
        ("3", ModelVersionStage.PRODUCTION),
        ("1", ModelVersionStage.ARCHIVED),
    ]
    assert staged["latest_versions"][2]["aliases"] == ["champion", "prod"]
    assert staged["latest_versions"][0]["description"] == "v8"
    assert "tags" not in staged["latest_versions"][0]
    assert staged["latest_versions"][3]["tags"] == [{"key": "a", "value": "first"}, {"key": "v", "value": "1"}]
    assert staged["aliases"] == [{"alias": "champion", "version": "3"}, {"alias": "old", "version": "2"},
                                 {"alias": "prod", "version": "3"}]  # fmt: skip
    assert page[1]["tags"] == [{"key": "empty", "value": ""}, {"key": "team", "value": "a"}, {"key": "z", "value": "last"}]
    assert "latest_versions" not in page[0] and "latest_versions" not in page[3]
    assert page[4]["latest_versions"][0]["run_link"] == "http://example/run"
    assert page[4]["latest_versions"][0]["version"] == "2" and "aliases" not in page[4]["latest_versions"][0]


QUERIES: list[tuple[dict[str, Any], list[str] | None]] = [
    ({}, None),
    ({"filter_string": "tags.`mlflow.prompt.is_prompt` != 'true'"}, ["a-bare", "b-tagged", "c-staged", "d-all-deleted", "e-versions"]),
    ({"filter_string": "name LIKE '%-%ed'"}, ["b-tagged", "c-staged", "d-all-deleted"]),
    ({"filter_string": "tags.team = 'a' OR tags.kind = 'staged'"}, ["b-tagged", "c-staged"]),
    ({"order_by": ["name DESC"]}, ["f-prompt", "e-versions", "d-all-deleted", "c-staged", "b-tagged", "a-bare"]),
    ({"order_by": ["creation_timestamp DESC"]}, None),
    ({"order_by": ["last_updated_timestamp ASC", "name DESC"]}, None),
]


def test_filtered_and_ordered_pages_whole_and_in_pieces(store: SqlRegistryStore, models: list[str]) -> None:
    for query, expected in QUERIES:
        whole, _ = _page(store, max_results=100, **query)
        names = [m["name"] for m in whole]
        if expected is not None:
            assert names == expected, query
        else:
            assert sorted(names) == models, query
        assert whole == _one_by_one(store, names), query
        pieces: list[dict[str, Any]] = []
        token = None
        while True:
            page, token = _page(store, max_results=2, page_token=token, **query)
            pieces += page
            if token is None:
                break
        assert pieces == whole, query
    for kwargs in (
        {"filter_string": "tags.x >"},
        {"order_by": ["nope ASC"]},
        {"page_token": "not-a-token"},
        {"max_results": 0},
        {"order_by": [["unhashable"]]},
    ):
        with pytest.raises(ModelyardException) as raised:
            store.search_registered_models(**kwargs)
        assert raised.value.error_code == "INVALID_PARAMETER_VALUE", kwargs


def test_a_restricted_caller_pages_only_what_it_may_read(store: SqlRegistryStore, models: list[str]) -> None:
    visible = Visibility(everything=False, only=frozenset({"c-staged", "e-versions", "nope"}))
    page, token = _page(store, max_results=1, visible=visible)
    assert [m["name"] for m in page] == ["c-staged"]
    page, token = _page(store, max_results=1, visible=visible, page_token=token)
    assert page == _one_by_one(store, ["e-versions"]) and token is None
    hidden = Visibility(everything=False, excluded=frozenset({"a-bare", "c-staged"}))
    page, _ = _page(store, max_results=100, visible=hidden)
    assert page == _one_by_one(store, ["b-tagged", "d-all-deleted", "e-versions", "f-prompt"])
    # The unrestricted page after a restricted one is still whole (the cached statement is the unrestricted one).
    assert [m["name"] for m in _page(store, max_results=100)[0]] == models

