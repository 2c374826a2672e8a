"""UI test fixtures: a real gunicorn tracking service with the UI, and Debian's chromium via playwright.

`ui_server` is the session's shared tracking service on SQLite (`shared_sqlite_server`, which other
suites' tests use too; tests create their own uniquely named experiments, so they share it safely); `ui_page` is a fresh browser context per test (a cold
cache, no cookies) whose console errors, including Content-Security-Policy violations, fail the test.
`tests.support.browser.screenshot(page, name)` saves what a person would see. `client` is the app
in-process (FastAPI's TestClient) on a fresh SQLite file, for fast server-side tests.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import SharedServer
from tests.support import startups

from modelyard.devstack.services import GunicornService
from modelyard.settings import Settings
from modelyard.tracking.app import create_app

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def ui_service(shared_sqlite_server: SharedServer) -> GunicornService:
    """The session's shared SQLite tracking service (tests/conftest.py), which serves the UI too."""
    return shared_sqlite_server.service


@pytest.fixture(scope="session")
def ui_server(ui_service: GunicornService) -> str:
    """Base URL of the session's tracking service (UI + API + artifacts)."""
    return ui_service.url


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The tracking app with the UI, in-process, on a fresh SQLite file and artifacts folder."""
    settings = Settings(
        backend_store_uri=f"sqlite:///{tmp_path / 'ui.db'}", artifacts_destination=str(tmp_path / "artifacts")
    )
    with TestClient(create_app(settings), base_url="http://localhost") as test_client:
        yield test_client


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not per session: playwright's sync API keeps an asyncio loop running
    in the main thread while it is open, and every later test that calls `asyncio.run()` would fail."""
    subprocess.run(["bash", str(ROOT / "infra/tools/install-chromium.sh")], check=True)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        startups.record("chromium")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def console_errors() -> list[str]:
    """The browser console's errors during the test; a test that provokes one on purpose (a 400
    page) removes it from this list, any other fails the test."""
    return []


@pytest.fixture
def ui_page(browser: Any, console_errors: list[str]) -> Iterator[Any]:
    """A page in a fresh context (1366x768, a laptop screen); console errors fail the test."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems = console_errors
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    try:
        yield page
    finally:
        context.close()
    assert not problems, f"browser console errors: {problems}"
