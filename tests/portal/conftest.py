"""One Chromium per test module; a fresh phone-sized context per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.nodeproc import NodeProcess
from tests.portal.browser import CHROMIUM, CHROMIUM_ARGS, PATIENCE_MS, PHONE


# One browser per module, not per session: Playwright's sync API keeps an event loop
# running while it is open, and the asyncio tests of the packages after `portal`
# (tests/reader) cannot start theirs beside it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Browser, node: NodeProcess) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=PHONE, base_url=node.url, locale="ja-JP")
    context.set_default_timeout(PATIENCE_MS)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
