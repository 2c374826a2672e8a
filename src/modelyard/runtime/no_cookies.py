"""A cookie jar that keeps nothing, for the httpx clients a service shares between all its callers.

httpx's clients keep the cookies responses set and send them on later requests to the same host. A client
shared by every caller of a service would then lend one caller's cookies to the next: the local stack's
gateway sent a session cookie it had relayed on every later request that carried none, so anonymous callers
acted as whoever had signed in. Requests carry the cookies their own caller sent, as headers, and nothing
else.
"""

from __future__ import annotations

from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy
from typing import Any

import httpx


class _RefuseCookies(DefaultCookiePolicy):
    def set_ok(self, cookie: Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: Cookie, request: Any) -> bool:
        return False


def no_cookies() -> httpx.Cookies:
    """A fresh jar that stores no cookie and returns none (pass as `cookies=` to an httpx client)."""
    return httpx.Cookies(CookieJar(policy=_RefuseCookies()))
