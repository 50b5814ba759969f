"""Playwright driving the system's Chromium (Debian's `chromium` package) against the live server.

No browser is ever downloaded: Chromium is launched by path. Missing Chromium skips these tests
with a loud reason on a workstation, and fails them when CI=true (CI installs it: see .ci/run).
Screenshots go to $MCP_SCREENSHOTS when that is set.
"""
import os
from pathlib import Path
import shutil

import pytest

CHROMIUM_CANDIDATES = (os.environ.get("MCP_CHROMIUM", ""), "/usr/bin/chromium", "/usr/bin/chromium-browser")


def _chromium_path() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def chromium_path():
    path = _chromium_path()
    if path is None:
        reason = ("BROWSER TESTS NOT RUN: no Chromium at /usr/bin/chromium. Install it with "
                  "`apt-get install -y chromium` (or set MCP_CHROMIUM); never `playwright install`.")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture
def browser(chromium_path):
    """One Chromium per test: Playwright's event loop must be gone before the test database is flushed."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


class PageProblems:
    """What went wrong in a page: console errors (CSP violations among them), uncaught script errors and
    failed sub-resources (the favicon aside, which the server does not serve)."""

    def __init__(self, page):
        self.messages = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.messages.append(f"uncaught: {e}"))
        page.on("response", self._response)

    def _console(self, message):
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.messages.append(message.text)

    def _response(self, response):
        if response.status >= 400 and response.request.resource_type != "document" \
                and not response.url.endswith("/favicon.ico"):
            self.messages.append(f"{response.status} {response.url}")


@pytest.fixture
def new_page(browser, live_server, monkeypatch):
    """A fresh browser context per person; returns (page, problems). ORM calls in the test stay allowed."""
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    contexts = []

    def open_page(width=1366, height=900):
        context = browser.new_context(viewport={"width": width, "height": height}, base_url=live_server.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        return page, PageProblems(page)

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def shot():
    """shot(page, name): a full-page screenshot into $MCP_SCREENSHOTS (if set)."""
    target = os.environ.get("MCP_SCREENSHOTS")

    def take(page, name):
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)
    return take


def login(page, username, password):
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")
