"""The browser tests' own set-up: in CI a missing chromium fails the suite instead of skipping it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import require_chromium

MISSING = "/nonexistent/chromium"


@pytest.mark.parametrize("ci", ["true", "True", "1", "yes"])
def test_missing_chromium_fails_the_browser_tests_in_ci(ci: str) -> None:
    with pytest.raises(pytest.fail.Exception, match="may not be skipped in CI"):
        require_chromium(MISSING, {"CI": ci})


@pytest.mark.parametrize("environ", [{}, {"CI": ""}, {"CI": "false"}, {"CI": "0"}])
def test_missing_chromium_skips_the_browser_tests_outside_ci(environ: dict[str, str]) -> None:
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_chromium(MISSING, environ)


def test_installed_chromium_neither_skips_nor_fails(tmp_path: Path) -> None:
    browser = tmp_path / "chromium"
    browser.write_text("")

    assert require_chromium(str(browser), {"CI": "true"}) is None
