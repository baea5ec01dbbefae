"""The tills page in Chromium against a real node, in Japanese and English: a store
manager registers a till, downloads its key once (a second download is refused), the
till connects with that key and taps, and the page shows it connected with its last tap
and the sale it forwarded after being offline; then the till is retired."""

from __future__ import annotations

import json
import re
import secrets

from nacl.signing import SigningKey
from playwright.sync_api import Page, expect

from coopnode.domain.staff import Role
from tests.console.conftest import Words, make_staff, sign_in
from tests.console.tills.tillthread import TillThread
from tests.nodeproc import NodeProcess
from tests.tillclient import enrol_with_card


def a_member(node: NodeProcess) -> str:
    """A member with a card of their own (numbers unique to this test's run)."""
    digits = f"{secrets.randbelow(10**7):07d}"
    member, card = f"20267{digits}", f"78{digits}0000000"
    enrol_with_card(node, member, card, base=5_000)
    return card


def test_a_till_is_registered_its_key_downloaded_once_and_seen_connected(
    node: NodeProcess, page: Page, words: Words
) -> None:
    manager = make_staff(node, Role.STORE_MANAGER, "mgr")
    store = f"north-{secrets.token_hex(3)}"
    sign_in(page, manager, "/console/tills")
    expect(page.locator("h1")).to_have_text(words("レジ端末", "Tills"))
    page.fill("#new-store", store)
    page.select_option("#new-kind", "cafeteria")
    page.click("#till-register")
    registered = page.locator("#till-registered")
    expect(registered).to_contain_text(store)
    till_id = re.search(r"till-\d+", registered.inner_text()).group(0)  # type: ignore[union-attr]

    with page.expect_download() as download:
        page.click("#key-download")
    key_file = json.loads(open(download.value.path(), encoding="utf-8").read())  # noqa: SIM115
    assert (key_file["till_id"], key_file["store"]) == (till_id, store)
    key = SigningKey(bytes.fromhex(key_file["signing_key_hex"]))

    # Once only: the same form again is refused, in the page's language.
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    again = page.request.post(f"/console/tills/{till_id}/key", form={"csrf": csrf or ""})
    assert again.status == 410
    assert words("ダウンロード済み", "downloaded already") in again.text()

    page.goto("/console/tills")
    row = page.locator(f"#till-{till_id}")
    expect(row.locator(".state")).to_have_text(words("未接続", "Not connected"))
    card = a_member(node)
    till = TillThread(node.url, till_id, key).open()
    try:
        assert till.tap(card, 430).approved
        page.reload()
        expect(row.locator(".state")).to_have_text(words("接続中", "Connected"))
        expect(row.locator(".last-tap")).to_contain_text(words("承認 430円", "approved, 430 yen"))
        expect(row.locator(".taps")).to_have_text("1")
        assert not till.tap(card, 9_000).approved  # More than the balance.
        page.reload()
        expect(row.locator(".last-tap")).to_contain_text(
            words("不可（残高不足）", "declined (Balance too low)")
        )
        forwarded = till.forward(card, 800)
        assert forwarded.approved and forwarded.offline
        page.reload()
        expect(row.locator(".last-tap")).to_contain_text(words("承認 800円", "approved, 800 yen"))
        expect(row.locator(".taps")).to_have_text("3")
        expect(row.locator(".forwarded")).to_have_text("1")
        page.click(f"#till-{till_id} .forwarded a")
        sale = page.locator(f"#forwarded-{forwarded.seq}")
        expect(sale.locator(".outcome")).to_have_text(words("計上", "Booked"))
        page.goto("/console/tills")
    finally:
        till.close()
    page.click(f"#retire-{till_id}")
    expect(page.locator(f"#till-{till_id} .state")).to_have_text(words("廃止", "Retired"))


def test_a_counter_clerk_sees_the_tills_but_may_not_register(
    node: NodeProcess, page: Page, words: Words
) -> None:
    clerk = make_staff(node, Role.COUNTER_CLERK, "clk")
    sign_in(page, clerk, "/console/tills")
    expect(page.locator("#tills-table")).to_be_visible()
    expect(page.locator("#till-form")).to_have_count(0)
    expect(page.locator("#menu-tills")).to_be_visible()
