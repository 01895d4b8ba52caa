"""Browser fixtures: Debian's chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.db import connections

from tests.annotation.conftest import jpeg, version  # noqa: F401 - shared fixtures

SCREENSHOTS = Path(
    os.environ.get(
        "STUDIO_SCREENSHOTS", Path(__file__).resolve().parents[2] / "var" / "screenshots"
    )
)
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


CSP_MARKERS = ("Content Security Policy", "Content-Security-Policy")


def _watch_for_csp(browser, violations: list[str]) -> None:
    """Record every CSP refusal that any page of this browser logs or throws."""

    def watch(page):
        def on_console(message):
            if any(marker in message.text for marker in CSP_MARKERS):
                violations.append(f"{page.url}: {message.text}")

        def on_error(error):  # an EvalError thrown by a refused eval is not a console line
            if any(marker in str(error) for marker in CSP_MARKERS):
                violations.append(f"{page.url}: {error}")

        page.on("console", on_console)
        page.on("pageerror", on_error)

    new_context, new_page = browser.new_context, browser.new_page

    def watched_context(*args, **kwargs):
        context = new_context(*args, **kwargs)
        context.on("page", watch)
        return context

    def watched_page(*args, **kwargs):
        page = new_page(*args, **kwargs)
        watch(page)
        return page

    browser.new_context, browser.new_page = watched_context, watched_page


@pytest.fixture
def browser():
    """Headless chromium; a test fails if any of its pages logs a CSP violation."""
    # Playwright's sync API runs an event loop in this thread; the ORM calls in the test
    # body are still synchronous, so Django's async guard must stand aside here.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, (
        "chromium is required for browser tests (scripts/ensure-chromium installs it)"
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        violations: list[str] = []
        _watch_for_csp(browser, violations)
        yield browser
        browser.close()
        # ORM calls made while Playwright's loop runs get their own connection; close it
        # here, in that context, or the test database cannot be dropped at the end.
        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    assert not violations, "pages broke the Content-Security-Policy:\n" + "\n".join(violations)
