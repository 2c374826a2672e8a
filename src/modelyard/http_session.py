"""The `requests.Session` every modelyard HTTP client uses (the REST client, the artifacts client)."""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

import requests


class EnvironmentCachingSession(requests.Session):
    """A `requests.Session` that remembers, per host, what it reads from the environment for each
    request (proxies, NO_PROXY, the CA bundle). requests looks those up on every request by walking the
    whole environment, ~1 ms of CPU: more than the rest of a small request, and 400 of them for a
    100-candidate search. The remembered answer is used only while the variables it reads are unchanged."""

    #: Every variable requests' environment lookup reads for an http(s) URL.
    _VARIABLES = tuple(
        name
        for base in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
        for name in (base, base.upper())
    ) + ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        if proxies or not self.trust_env:  # explicit proxies: requests' own path
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        key = (
            urllib.parse.urlsplit(url).netloc,
            stream,
            verify,
            cert,
            tuple(os.environ.get(name) for name in self._VARIABLES),
        )
        settings = self._environment.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if len(self._environment) > 64:  # many hosts or changing variables: start again
                self._environment.clear()
            self._environment[key] = settings
        return {**settings, "proxies": dict(settings["proxies"])}
