"""The console's tests: one Chromium per module, a tablet-sized context per test in each
language, and staff accounts made through the API with the node's machine token.

Each test makes its own staff accounts: an authenticator's code is good once per time
step, so two sign-ins of one account within 30 s would be refused as a replay.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright

from coopnode.domain import passcodes
from coopnode.domain.staff import Role
from tests.identity.nodeclient import remember
from tests.nodeproc import NodeProcess
from tests.portal.browser import CHROMIUM, CHROMIUM_ARGS, PATIENCE_MS
from tests.portal.phone_checks import AXE_OPTIONS, BLOCKING_IMPACTS

LANGS = ("ja", "en")
# A tablet at the counter, held upright: the narrower of the console's two layouts.
TABLET: ViewportSize = {"width": 820, "height": 1180}
STAFF_PASSWORD = "Counter-Desk-2026!"  # A test account's password.


@dataclass(frozen=True)
class StaffAccount:
    staff_id: str
    name: str
    role: Role
    password: str
    secret: str

    def code(self) -> str:
        """The authenticator app's code now."""
        return passcodes.totp_code(self.secret, time.time())


def make_staff(node: NodeProcess, role: Role, tag: str = "s") -> StaffAccount:
    """A new staff account of `role`, made by the harness's machine token."""
    staff_id = f"{tag}{secrets.randbelow(10**8)}"
    body = {"staff_id": staff_id, "name": f"職員 {staff_id}", "password": STAFF_PASSWORD}
    status, created = node.request("POST", "/api/v1/staff/accounts", {**body, "role": role})
    if status != 201:
        raise AssertionError(created)
    secret = remember(created["secret"])
    return StaffAccount(staff_id, body["name"], role, STAFF_PASSWORD, secret)


class Words:
    """What a page says in the walk's language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __call__(self, ja: str, en: str) -> str:
        return ja if self.lang == "ja" else en


def accessible(page: Page) -> None:
    """axe-core (WCAG 2.0–2.2 A and AA, best practices) finds nothing serious or critical
    on the page as it stands, as the portal's pages are held to (`tests/portal`)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT)
    results = page.evaluate("(options) => axe.run(document, options)", AXE_OPTIONS)
    blocking = [
        f"{v['id']}: {v['help']} at {[node['target'] for node in v['nodes']]}"
        for v in results["violations"]
        if v.get("impact") in BLOCKING_IMPACTS
    ]
    assert blocking == [], f"{page.url}: {blocking}"


def sign_in(page: Page, staff: StaffAccount, start: str = "/console") -> None:
    """Sign in through the console's pages: the id and password, then the code."""
    page.goto(start)
    page.fill("#staff_id", staff.staff_id)
    page.fill("#password", staff.password)
    page.click("#sign-in-submit")
    page.fill("#code", staff.code())
    page.click("#totp-submit")
    page.wait_for_selector("#signed-in-as")


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
    return str(request.param)


@pytest.fixture
def words(lang: str) -> Words:
    return Words(lang)


@pytest.fixture
def context(browser: Browser, node: NodeProcess, lang: str) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=TABLET, base_url=node.url, locale="ja-JP")
    context.set_default_timeout(PATIENCE_MS)
    context.add_cookies([{"name": "cn_lang", "value": lang, "url": node.url}])
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
