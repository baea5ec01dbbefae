"""The live lunch view in Chromium against a real node, in Japanese and English: the page
is open, a till taps, and the page shows the taps, the decline and the till connected
from the event stream, without reloading."""

from __future__ import annotations

import secrets

from nacl.signing import SigningKey
from playwright.sync_api import Page, expect

from coopnode.domain.staff import Role
from tests.console.conftest import Words, make_staff, sign_in
from tests.console.tills.tillthread import TillThread
from tests.nodeproc import NodeProcess
from tests.tillclient import enrol_with_card


def register_till(node: NodeProcess, store: str) -> TillThread:
    status, registered = node.request(
        "POST", "/api/v1/console/tills", {"store": store, "kind": "cafeteria"}
    )
    assert status == 201, registered
    status, key_file = node.request("POST", registered["key_path"])
    assert status == 200, key_file
    key = SigningKey(bytes.fromhex(key_file["signing_key_hex"]))
    return TillThread(node.url, key_file["till_id"], key)


def test_the_live_view_shows_taps_as_they_come(node: NodeProcess, page: Page, words: Words) -> None:
    manager = make_staff(node, Role.STORE_MANAGER, "mgr")
    store = f"lunch-{secrets.token_hex(3)}"
    digits = f"{secrets.randbelow(10**7):07d}"
    member, card = f"20268{digits}", f"79{digits}0000000"
    enrol_with_card(node, member, card, base=500)
    sign_in(page, manager, "/console/live")
    expect(page.locator("h1")).to_have_text(words("ライブ（昼食時）", "Live lunch view"))
    # The stream's first event has arrived: the script is listening.
    expect(page.locator("#live-status")).not_to_have_attribute("data-version", "0")
    page.evaluate("window.sameLoad = true")
    till = register_till(node, store).open()
    try:
        assert till.tap(card, 430).approved
        assert not till.tap(card, 430).approved  # 70 yen left: declined.
        row = page.locator(f'#live-stores tr[data-store="{store}"]')
        expect(row.locator(".window")).to_have_text("2")
        expect(row.locator(".tills")).to_have_text("1")
        expect(row.locator(".declines")).to_have_text(words("残高不足: 1", "Balance too low: 1"))
    finally:
        till.close()
    # The till gone, the next figures say so.
    expect(row.locator(".tills")).to_have_text("0")
    expect(row.locator(".wait")).to_have_text(words("接続中の端末なし", "No till connected"))
    assert page.evaluate("window.sameLoad") is True  # Updated in place, not reloaded.
