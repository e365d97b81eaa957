"""The Debian chromium, launched through Playwright, for the browser walks."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

import pytest
from playwright.sync_api import Page, expect, sync_playwright

# Playwright's sync API runs an event loop in this thread; the ORM calls of the test are still synchronous.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# No test here is about speed: waits only guard against a hang, so they are wide enough for a loaded CI machine.
WAIT_MS = 60_000


def running_in_ci(environ: Mapping[str, str]) -> bool:
    """CI services set ``CI`` (GitHub, GitLab: "true"; others "1"); ``.ci/run`` sets it too."""
    return environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def require_chromium(path: str, environ: Mapping[str, str]) -> None:
    """Skip a browser test where chromium is missing, except in CI: there the suite must fail, not go green."""
    if os.path.exists(path):
        return
    message = f"Debian chromium is not installed at {path} (make test installs it)"
    if running_in_ci(environ):
        pytest.fail(f"{message}; browser tests may not be skipped in CI", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def page() -> Iterator[Page]:
    """A fresh chromium page; the browser closes after the test."""
    require_chromium(CHROMIUM, os.environ)
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(WAIT_MS)
        yield page
        browser.close()
