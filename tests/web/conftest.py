"""Fixtures of the web tests; the helpers are in webkit.py."""
from __future__ import annotations

from pathlib import Path

import pytest
from webkit import CHROMIUM, Site

@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path)
    yield s
    s.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed (scripts/bootstrap installs Debian's chromium)", pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="ja-JP", timezone_id="Asia/Tokyo")
    p = context.new_page()
    yield p
    context.close()


