"""One Chromium per test module; a fresh phone-sized context per test, in each language.

Every page a test opens goes through `phone_checks.watch`, so that each page the walk
reaches is checked at the phone's size (overflow, axe, screenshot) before the test acts on
it; the `lang` fixture runs each walk once in Japanese and once in English.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.nodeproc import NodeProcess
from tests.portal.browser import CHROMIUM, CHROMIUM_ARGS, phone_context
from tests.portal.phone_checks import close_context, fresh_notes, open_page, write_summary

LANGS = ("ja", "en")


@pytest.fixture(scope="session", autouse=True)
def _axe_notes() -> Iterator[None]:
    fresh_notes()
    yield
    write_summary()


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


@pytest.fixture(params=LANGS)
def lang(request: pytest.FixtureRequest) -> str:
    """The language the walk runs in (the member chose it with the language link)."""
    return str(request.param)


@pytest.fixture
def context(
    browser: Browser, node: NodeProcess, lang: str, request: pytest.FixtureRequest
) -> Iterator[BrowserContext]:
    context = phone_context(browser, node, lang, request.node.nodeid)
    try:
        yield context
    finally:
        close_context(context)


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return open_page(context)
