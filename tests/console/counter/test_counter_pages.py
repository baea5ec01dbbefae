"""A counter clerk's walk in Chromium against a real node, in Japanese and in English:
a member found by laying their card on the counter's reader (the tills' nfcpy code over
the UDP transport to an emulated card), a lost card blocked and a new one bound with
the balance carried, and a withdrawal (脱退) under the co-op's pro-rata rule."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from coopnode.domain.staff import Role
from tests.console.conftest import Words, make_staff, sign_in
from tests.console.counter.readerproc import counter_reader, emulated_card, free_udp_port
from tests.identity.nodeclient import Member
from tests.nodeproc import REPO, NodeProcess

SCREENSHOTS = REPO / "artifacts" / "screenshots" / "console"

pytestmark = pytest.mark.slow


@pytest.fixture
def node(counter_node: NodeProcess) -> NodeProcess:
    """The console's fixtures (`page`, `context`) on the counter's node."""
    return counter_node


def enrolled_with_card(node: NodeProcess, tag: str) -> tuple[Member, str]:
    member = Member(tag)
    status, body = node.request("POST", "/api/v1/members", member.enrolment())
    assert status == 201, body
    idm = secrets.token_hex(8)
    status, body = node.request(
        "POST", "/api/v1/cards", {"idm": idm, "member_no": member.member_no}
    )
    assert status == 201, body
    return member, idm


def shot(page: Page, name: str, lang: str) -> None:
    """Keep a full-page screenshot of a counter page as a test artifact, per language."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"counter-{name}-{lang}.png"), full_page=True)


def api(node: NodeProcess, method: str, path: str, body: Any = None) -> Any:
    status, answer = node.request(method, path, body)
    assert 200 <= status < 300, (path, answer)
    return answer


def test_a_card_laid_on_the_counters_reader_opens_the_members_page(
    node: NodeProcess, page: Page, words: Words, lang: str
) -> None:
    member, idm = enrolled_with_card(node, f"tap{lang}")
    clerk = make_staff(node, Role.COUNTER_CLERK, "ctr")
    reader = f"desk-{lang}-{secrets.randbelow(10**6)}"
    port = free_udp_port()
    with counter_reader(node, reader, port):
        sign_in(page, clerk, start=f"/console/counter?reader={reader}")
        expect(page.locator("h1")).to_have_text(words("窓口", "Counter"))
        expect(page.locator("#reader-waiting")).to_contain_text(reader)
        # The page listens before the card is laid, so its tap cannot pass unseen.
        expect(page.locator("#card-reader[data-listening='1']")).to_be_attached()
        shot(page, "find", lang)
        with emulated_card(port, idm):
            page.wait_for_url(re.compile(rf"/console/counter/members/{member.member_no}$"))
    expect(page.locator("#member-no")).to_have_text(member.member_no)
    expect(page.locator("#member-status")).to_have_text(words("利用中", "Active"))
    expect(page.locator("#purse-base")).to_have_text(words("40,000円", "40,000 yen"))
    expect(page.locator(f"#card-{idm} .card-status")).to_have_text(words("利用中", "Active"))
    # A clerk may not refund nor withdraw: the page offers neither.
    expect(page.locator("#go-withdrawal")).to_have_count(0)
    shot(page, "member", lang)


def test_a_lost_card_is_blocked_and_a_new_one_bound_with_the_balance_carried(
    node: NodeProcess, page: Page, words: Words, lang: str
) -> None:
    member, old = enrolled_with_card(node, f"lost{lang}")
    tap = {"key": f"t-{secrets.token_hex(4)}", "amount_yen": 430, "till_kind": "shop",
           "store": "shop-main"}  # fmt: skip
    api(node, "POST", f"/api/v1/wallets/{member.member_no}/payments", tap)
    clerk = make_staff(node, Role.COUNTER_CLERK, "ctr")
    sign_in(page, clerk, start="/console/counter")
    page.select_option("#by", "kana")
    page.fill("#q", "しけん たろう")
    page.click("#find-submit")
    page.click(f"#result-{member.member_no}")
    expect(page.locator("#purse-base")).to_have_text(words("39,570円", "39,570 yen"))
    page.click("#go-card")
    expect(page.locator("h1")).to_have_text(words("カード紛失・再発行", "Lost card and reissue"))
    page.fill("#new_idm", old)  # the lost card itself is refused, and nothing changes
    page.click("#card-submit")
    expect(page.locator("#card-error")).to_be_visible()
    new = secrets.token_hex(8)
    page.fill("#new_idm", new)
    page.click("#card-submit")
    expect(page.locator("#done")).to_have_text(
        words(
            "カードを停止し、新しいカードを登録しました。",
            "The lost card is blocked and the new card is bound.",
        )
    )
    expect(page.locator(f"#card-{old} .card-status")).to_have_text(
        words("紛失（停止）", "Lost (blocked)")
    )
    expect(page.locator(f"#card-{new} .card-status")).to_have_text(words("利用中", "Active"))
    expect(page.locator("#purse-base")).to_have_text(words("39,570円", "39,570 yen"))
    deny = api(node, "GET", "/api/v1/deny-list")
    assert old in deny["idms"] and new not in deny["idms"]
    audit = api(node, "GET", "/api/v1/staff/audit?limit=100")
    mine = {(e["actor"], e["action"]) for e in audit["entries"] if e["target"] == member.member_no}
    assert {("staff:" + clerk.staff_id, "counter.card_lost"),
            ("staff:" + clerk.staff_id, "counter.card_issued")} <= mine  # fmt: skip


def test_a_withdrawal_pays_back_under_the_rule_and_closes_the_account(
    node: NodeProcess, page: Page, words: Words, lang: str
) -> None:
    member, idm = enrolled_with_card(node, f"grad{lang}")
    accountant = make_staff(node, Role.ACCOUNTANT, "acc")
    sign_in(page, accountant, start=f"/console/counter/members/{member.member_no}")
    page.click("#go-withdrawal")
    expect(page.locator("h1")).to_have_text(words("脱退手続き", "Withdrawal"))
    shown = api(node, "GET", f"/api/v1/counter/members/{member.member_no}/withdrawal")["plan"]
    meal = shown["refunded"]["meal"]
    assert meal == 96_000 * shown["term_days_left"] // shown["term_days"]  # pro rata
    total = meal + 40_000 + 20_000  # the meal plan's share, base money, the share capital
    assert shown["refund_yen"] == total
    expect(page.locator("#plan-meal .refunded")).to_have_text(words(f"{meal:,}円", f"{meal:,} yen"))
    expect(page.locator("#plan-share-capital .refunded")).to_have_text(
        words("20,000円", "20,000 yen")
    )
    expect(page.locator("#refund-total")).to_have_text(words(f"{total:,}円", f"{total:,} yen"))
    shot(page, "withdrawal", lang)
    page.click("#withdrawal-submit")
    expect(page.locator("#done")).to_be_visible()
    expect(page.locator("#member-status")).to_have_text(
        words("脱退済み（口座閉鎖）", "Withdrawn (closed)")
    )
    expect(page.locator("#purse-meal")).to_have_text(words("0円", "0 yen"))
    expect(page.locator("#go-withdrawal")).to_have_count(0)
    wallet = api(node, "GET", f"/api/v1/wallets/{member.member_no}")
    assert wallet["status"] == "closed"
    assert idm in api(node, "GET", "/api/v1/deny-list")["idms"]
    assert api(node, "GET", "/api/v1/audit")["balanced"]


def test_the_desk_creates_an_event_and_refuses_a_bad_one(
    node: NodeProcess, page: Page, words: Words, lang: str
) -> None:
    clerk = make_staff(node, Role.COUNTER_CLERK, "dsk")
    sign_in(page, clerk, start="/console/counter/desk")
    expect(page.locator("h1")).to_have_text(
        words("お問合せ・資料・イベント", "Inquiries, documents and events")
    )
    title = f"新入生歓迎会 {lang}"
    page.fill("#title", title)
    page.fill("#date", "2027-04-10")
    page.fill("#place", "中央食堂")
    page.fill("#capacity", "0")  # no seats is not an event
    page.fill("#apply_until", "2027-04-05T17:00")
    page.click("#event-form button[type=submit]")
    expect(page.locator("#desk-error")).to_be_visible()
    page.fill("#title", title)
    page.fill("#date", "2027-04-10")
    page.fill("#place", "中央食堂")
    page.fill("#capacity", "40")
    page.fill("#apply_until", "2027-04-05T17:00")
    page.click("#event-form button[type=submit]")
    expect(page.locator("h1")).to_have_text(title)
    expect(page.locator("#roster")).to_contain_text(
        words("表示するレコードはありません。", "There are no records to show.")
    )
    audit = api(node, "GET", "/api/v1/staff/audit?limit=50")
    assert any(
        e["actor"] == f"staff:{clerk.staff_id}" and e["action"].startswith("event")
        for e in audit["entries"]
    ), audit["entries"][:5]


def test_the_address_is_changed_after_the_identity_check(
    node: NodeProcess, page: Page, words: Words, lang: str
) -> None:
    member, _ = enrolled_with_card(node, f"addr{lang}")
    clerk = make_staff(node, Role.COUNTER_CLERK, "adr")
    sign_in(page, clerk, start=f"/console/counter/members/{member.member_no}")
    page.click("#go-mail")
    new_mail = f"counter-{member.mail}"
    page.select_option("#identification", "student_card")
    page.fill("#birth_date", "2001-01-01")
    page.fill("#mail", new_mail)
    page.click("#mail-submit")
    expect(page.locator("#mail-error")).to_have_text(
        words("生年月日が登録内容と一致しません。", "The birth date does not match the member's.")
    )
    page.fill("#birth_date", member.birth_date)
    page.click("#mail-submit")
    expect(page.locator("#done")).to_be_visible()
    expect(page.locator("#member-mail")).to_have_text(new_mail)
    audit = api(node, "GET", "/api/v1/staff/audit?limit=50")
    [entry] = [
        e for e in audit["entries"]
        if e["target"] == member.member_no and e["action"] == "counter.change_mail"
    ]  # fmt: skip
    assert entry["actor"] == f"staff:{clerk.staff_id}"
    assert "identification: student_card" in entry["detail"]
