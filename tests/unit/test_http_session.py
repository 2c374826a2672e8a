"""The session's remembered environment lookup answers as requests' own would, and follows changes."""

from __future__ import annotations

import pytest
import requests

from modelyard.http_session import EnvironmentCachingSession


@pytest.mark.parametrize("url", ["http://127.0.0.1:5000/api/x", "https://tracking.example/api/y"])
def test_the_remembered_settings_follow_the_proxy_variables(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in EnvironmentCachingSession._VARIABLES:
        monkeypatch.delenv(name, raising=False)
    ours, theirs = EnvironmentCachingSession(), requests.Session()

    def same() -> dict[str, object]:
        answer = ours.merge_environment_settings(url, {}, None, None, None)
        assert answer == theirs.merge_environment_settings(url, {}, None, None, None)
        return answer

    assert same()["proxies"] == {}
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.local:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.local:3128")
    assert same()["proxies"] != {}
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,tracking.example")
    assert same()["proxies"] == {}
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/tmp/ca.pem")
    assert same()["verify"] == "/tmp/ca.pem"
    explicit = {"http": "http://other:1"}
    assert ours.merge_environment_settings(url, explicit, None, None, None)["proxies"]["http"] == "http://other:1"
