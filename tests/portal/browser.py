"""Helpers for driving the portal in Debian's Chromium with Playwright.

Playwright cannot download its own browser here, so the suite launches the system's
`/usr/bin/chromium` (the Makefile installs it). One browser serves each test module; each
test opens its own context (cookies), sized like a phone and set to the walk's language,
whose pages are all checked as `phone_checks` says.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

from tests.identity.nodeclient import Member, remember
from tests.nodeproc import REPO, NodeProcess
from tests.portal.phone_checks import watch_context

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE: ViewportSize = {"width": 390, "height": 844}
# Patience for a page, an element or a mail to appear: a bound on waiting, never a
# latency asserted. A sign-in hashes a password and crosses two actors, and a page's
# checks (axe above all) run inside the action that first meets it; under two workers
# of stress-ng and three test suites on two cores, one took more than 15 s.
PATIENCE_MS = 90_000
SCREENSHOTS = REPO / "artifacts" / "screenshots"
PASSWORD = "Sakura-Kaede-2026!"
_CODE = re.compile(r"(?:パスコード|確認コード|認証コード)[：:]\s*([0-9]{6})")
_SPOKEN = re.compile(r"お知らせします。([0-9、]+)。")


def phone_context(browser: Browser, node: NodeProcess, lang: str, test: str) -> BrowserContext:
    """A browser context (cookies) sized like a phone, in `lang` as if the member had
    pressed the language link; its pages are checked (`phone_checks`)."""
    context = browser.new_context(viewport=PHONE, base_url=node.url, locale="ja-JP")
    context.set_default_timeout(PATIENCE_MS)
    context.add_cookies([{"name": "cn_lang", "value": lang, "url": node.url}])
    return watch_context(context, test)


class Words:
    """What a page says in the walk's language: `said("正しくありません", "not correct")`."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __call__(self, ja: str, en: str) -> str:
        return ja if self.lang == "ja" else en


def menu(page: Page, item: str) -> None:
    """Open the signed-in menu (a <details> at the top right) and follow one of its links."""
    page.click("#menu-button")
    page.click(item)


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot of a main screen as a test artifact, per language."""
    lang = page.evaluate("() => document.documentElement.lang")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{lang}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def last_sequence(node: NodeProcess) -> int:
    status, page = node.request("GET", "/dev/outbox.json?to=none@invalid.example")
    if status != 200:
        raise AssertionError(page)
    return int(page["last_sequence"])


def wait_message(
    node: NodeProcess, to: str, after: int, channel: str = "", timeout_s: float = PATIENCE_MS / 1000
) -> dict[str, Any]:
    """The first message to `to` after `after`, from the node's real SMTP outbox."""
    query = f"/dev/outbox.json?to={to.replace('+', '%2B')}&after={after}"
    if channel:
        query += f"&channel={channel}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, page = node.request("GET", query)
        if status == 200 and page["messages"]:
            message: dict[str, Any] = page["messages"][0]
            return message
        time.sleep(0.05)
    raise AssertionError(f"no message to {to} within {timeout_s} s")


def code_in(text: str) -> str:
    found = _CODE.search(text)
    if found is not None:
        return remember(found.group(1))
    spoken = _SPOKEN.search(text)
    if spoken is None:
        raise AssertionError(f"no code in {text!r}")
    return remember(spoken.group(1).replace("、", ""))


def enrol(node: NodeProcess, member: Member) -> None:
    after = last_sequence(node)
    status, body = node.request("POST", "/api/v1/members", member.enrolment())
    if status != 201:
        raise AssertionError(body)
    wait_message(node, member.mail, after)


def balance(page: Page, purse: str) -> int:
    text = page.locator(f"#balance-{purse}").inner_text()
    return int(re.sub(r"[^0-9]", "", text))
