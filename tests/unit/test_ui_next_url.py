"""Where the sign-in page may send a browser: a path on this site, never somewhere else (no open redirect)."""

from __future__ import annotations

import pytest

from modelyard.ui.next_url import DEFAULT, safe_next


@pytest.mark.parametrize(
    "value",
    [
        "/experiments/12",
        "/experiments/12?filter=metrics.x%20%3E%201&sel=a,b",
        "/model?name=fraud%2Fv2",
        "/runs/abc#charts",
        "/compare?runs=a,b&next=https://x.example",  # a URL in a parameter is still a path here
        "/deployments/caf\u00e9",  # non-ASCII: RedirectResponse percent-encodes it
    ],
)
def test_paths_of_this_site_are_kept(value: str) -> None:
    assert safe_next(value) == value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "//evil.example",
        "//evil.example/experiments",
        "///evil.example",
        "https://evil.example",
        "http://evil.example/experiments",
        "HTTPS://evil.example",
        "http:/evil.example",
        "https:evil.example",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "evil.example",
        "experiments/1",
        "/\\evil.example",
        "\\\\evil.example",
        "/\\/evil.example",
        "/x\\y",
        "/\t/evil.example",
        "/\n/evil.example",
        "/%0d%0a\r\nSet-Cookie: x=1",
        " //evil.example",
        "/ /evil.example",
        "/\u3000/evil.example",
        "/login",
        "/login?next=/experiments",
        "/logout",
        "/" + "a" * 5000,
        ["/experiments"],
    ],
)
def test_anything_else_goes_to_the_default_page(value: object) -> None:
    assert safe_next(value) == DEFAULT
    assert safe_next(value, "/models") == "/models"
