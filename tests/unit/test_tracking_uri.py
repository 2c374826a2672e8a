"""Tracking URI resolution (explicit, MODELYARD_*, MLFLOW_*, default) and store choice by scheme."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelyard.client import tracking_uri
from modelyard.client.rest_store import RestTrackingStore
from modelyard.exceptions import ModelyardException


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("MODELYARD_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracking_uri.set_tracking_uri(None)
    yield
    tracking_uri.set_tracking_uri(None)


def test_default_is_the_embedded_sqlite_file() -> None:
    assert tracking_uri.get_tracking_uri() == "sqlite:///modelyard.db"
    assert not tracking_uri.is_tracking_uri_set()


def test_mlflow_variable_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert tracking_uri.get_tracking_uri() == "http://mlflow:5000"
    assert tracking_uri.is_tracking_uri_set()


def test_modelyard_variable_wins_over_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("MODELYARD_TRACKING_URI", "http://modelyard:5000")
    assert tracking_uri.get_tracking_uri() == "http://modelyard:5000"


def test_explicit_uri_wins_over_environment_and_none_goes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_TRACKING_URI", "http://env:5000")
    tracking_uri.set_tracking_uri("https://explicit.example")
    assert tracking_uri.get_tracking_uri() == "https://explicit.example"
    tracking_uri.set_tracking_uri(None)
    assert tracking_uri.get_tracking_uri() == "http://env:5000"


@pytest.mark.parametrize(
    ("uri", "family"),
    [
        ("http://localhost:5000", "rest"),
        ("https://tracking.example.com/prefix", "rest"),
        ("sqlite:///modelyard.db", "sql"),
        ("sqlite:////abs/path.db", "sql"),
        ("postgresql://u:p@h/db", "sql"),
        ("postgresql+psycopg://u@h/db", "sql"),
        ("postgres://u@h/db", "sql"),
    ],
)
def test_backend_family_by_scheme(uri: str, family: str) -> None:
    assert tracking_uri.check_tracking_uri(uri) == family


@pytest.mark.parametrize("uri", ["./mlruns", "/tmp/mlruns", "file:///tmp/mlruns", "mlruns"])
def test_local_paths_are_refused_with_the_sqlite_alternative(uri: str) -> None:
    with pytest.raises(ModelyardException) as err:
        tracking_uri.set_tracking_uri(uri)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "sqlite:///" in err.value.message and "mlruns" in err.value.message
    assert tracking_uri.get_tracking_uri() == "sqlite:///modelyard.db"


def test_unknown_schemes_are_refused() -> None:
    with pytest.raises(ModelyardException, match="Unsupported tracking URI"):
        tracking_uri.check_tracking_uri("databricks://profile")


def test_http_uri_gives_a_cached_rest_store() -> None:
    store = tracking_uri.get_tracking_store("http://127.0.0.1:1")
    assert isinstance(store, RestTrackingStore)
    assert store.base_url == "http://127.0.0.1:1"
    assert tracking_uri.get_tracking_store("http://127.0.0.1:1") is store
    assert tracking_uri.get_tracking_store("http://127.0.0.1:2") is not store


def test_store_follows_the_current_uri() -> None:
    tracking_uri.set_tracking_uri("http://127.0.0.1:3")
    store = tracking_uri.get_tracking_store()
    assert isinstance(store, RestTrackingStore) and store.base_url == "http://127.0.0.1:3"


def test_scheme_of_ignores_drivers_and_drive_letters() -> None:
    assert tracking_uri.scheme_of("postgresql+psycopg://h/db") == "postgresql"
    assert tracking_uri.scheme_of("C:\\runs") == ""
    assert tracking_uri.scheme_of("relative/path") == ""
