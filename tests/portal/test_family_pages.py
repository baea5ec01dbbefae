"""Family access (FLOWS §3 step 5) clicked through in Chromium on a real node: a member
grants a guardian who is not a member, the guardian accepts the mailed invitation (code
from the real SMTP outbox, then a password), signs in with a mailed code and sees the
member's cafeteria calendar and purchases and nothing else; the member revokes and the
guardian's view ends. In Japanese and in English; every page reached is checked at a
phone's size (tests/portal/phone_checks.py).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.identity.nodeclient import Member
from tests.nodeproc import NodeProcess
from tests.portal.browser import (
    Words,
    code_in,
    enrol,
    last_sequence,
    menu,
    phone_context,
    shot,
    wait_message,
)
from tests.portal.phone_checks import close_context, open_page, visit
from tests.portal.test_member_pages import set_password

pytestmark = pytest.mark.slow

GUARDIAN_PASSWORD = "Hogosha-Yuzu-2026!"  # A test password.


def portal_sign_in(page: Page, node: NodeProcess, member: Member) -> None:
    page.goto("/portal/sign-in")
    page.fill("#f-mail", member.mail)
    page.fill("#f-password", "Sakura-Kaede-2026!")
    page.click("#sign-in")
    page.fill("#f-phone", member.phone_national)
    after = last_sequence(node)
    page.click("#send-sms")
    sms = wait_message(node, member.phone, after, channel="sms")
    page.fill("#f-code", code_in(sms["body"]))
    page.click("#verify-code")
    expect(page).to_have_url(f"{node.url}/portal/home")


def pay(node: NodeProcess, member: Member, key: str, yen: int, kind: str, store: str) -> None:
    body = {"key": key, "amount_yen": yen, "till_kind": kind, "store": store}
    status, answer = node.request("POST", f"/api/v1/wallets/{member.member_no}/payments", body)
    assert status == 200, answer


def accept_invitation(page: Page, node: NodeProcess, mail: str) -> None:
    page.goto("/portal/guardian")
    shot(page, "21-guardian-invitation")
    page.fill("#f-mail", mail)
    after = last_sequence(node)
    page.click("#send-code")
    expect(page.locator("#verify-code")).to_be_visible()
    code = code_in(wait_message(node, mail, after)["body"])
    page.fill("#f-code", code)
    page.click("#verify-code")
    expect(page.locator("#guardian-verified")).to_be_visible()
    # A weak password is refused next to the field.
    page.fill("#f-password", "password1")
    page.fill("#f-password_confirm", "password1")
    page.click("#continue")
    expect(page.locator("#e-password")).to_be_visible()
    page.fill("#f-password", GUARDIAN_PASSWORD)
    page.fill("#f-password_confirm", GUARDIAN_PASSWORD)
    page.click("#continue")
    expect(page.locator("#guardian-done")).to_be_visible()


def guardian_sign_in(page: Page, node: NodeProcess, mail: str, lang: str) -> None:
    page.goto("/portal/guardian/sign-in")
    page.fill("#f-mail", mail)
    page.fill("#f-password", "Wrong-Password-1!")
    page.click("#sign-in")
    expect(page.locator("#e-password")).to_contain_text(
        Words(lang)("正しくありません", "not correct")
    )
    page.fill("#f-mail", mail)
    page.fill("#f-password", GUARDIAN_PASSWORD)
    after = last_sequence(node)
    page.click("#sign-in")
    code = code_in(wait_message(node, mail, after)["body"])
    page.fill("#f-code", code)
    page.click("#verify-code")
    expect(page).to_have_url(f"{node.url}/portal/guardian/home")


def test_guardian_invitation_view_and_revoke(
    browser: Browser, node: NodeProcess, lang: str, request: pytest.FixtureRequest
) -> None:
    said = Words(lang)
    member = Member("fam")
    guardian_mail = f"guardian{member.member_no[-6:]}@example.jp"
    enrol(node, member)
    pay(node, member, f"fam-{member.member_no}-1", 520, "cafeteria", "cafe-main")
    pay(node, member, f"fam-{member.member_no}-2", 780, "shop", "shop-bookcorner")
    member_context = phone_context(browser, node, lang, request.node.nodeid)
    guardian_context = phone_context(browser, node, lang, request.node.nodeid)
    try:
        page = open_page(member_context)
        set_password(page, node, member)
        portal_sign_in(page, node, member)

        # The member grants the guardian; the guardian gets an invitation by mail.
        menu(page, "#nav-family")
        page.fill("#f-guardian_mail", guardian_mail)
        after = last_sequence(node)
        page.click("#family-apply")
        expect(page.locator("#family-done")).to_be_visible()
        expect(page.locator("#family-guardians")).to_contain_text("@example.jp")
        shot(page, "20-family-granted")
        invitation = wait_message(node, guardian_mail, after)
        assert invitation["subject"] == "【大学生協】ファミリー（保護者）閲覧のご案内"
        assert "/portal/guardian\n" in invitation["body"]

        # The guardian confirms the address, sets a password and signs in.
        guardian = open_page(guardian_context)
        accept_invitation(guardian, node, guardian_mail)
        guardian_sign_in(guardian, node, guardian_mail, lang)
        expect(guardian.locator(f"#ward-{member.member_no}")).to_be_visible()
        shot(guardian, "22-guardian-home")
        guardian.click(f"#ward-{member.member_no}")
        expect(guardian.locator("#ward-name")).to_contain_text("試験 太郎")
        expect(guardian.locator("#cafeteria")).to_contain_text("520")
        # The store by its name, never by its id.
        purchases = guardian.locator("#purchases")
        expect(purchases).to_contain_text(said("ブックセンター", "Book Center"))
        expect(purchases).not_to_contain_text("shop-bookcorner")
        expect(purchases).to_contain_text("780")
        expect(guardian.locator("#balance-base")).to_have_count(0)
        expect(guardian.locator("#nav-family")).to_have_count(0)
        shot(guardian, "23-guardian-family-view")

        # No member page and no wallet API takes the guardian's session.
        visit(guardian, "/portal/home")
        expect(guardian).to_have_url(f"{node.url}/portal/sign-in")
        visit(guardian, "/mypage/emoney")
        expect(guardian).to_have_url(f"{node.url}/mypage")
        assert guardian.request.get("/api/v1/me").status == 401
        wallet = guardian.request.get(f"/api/v1/wallets/{member.member_no}")
        assert wallet.status == 401
        history = guardian.request.get(f"/api/v1/wallets/{member.member_no}/history")
        assert history.status == 401

        # The member revokes: the guardian loses the view.
        page.goto("/portal/family")
        page.click("#revoke-1")
        expect(page.locator("#family-done")).to_be_visible()
        expect(page.locator("#family-guardians")).not_to_contain_text("@example.jp")
        refused = guardian.goto(f"/portal/family/{member.member_no}")
        assert refused is not None and refused.status == 403
        expect(guardian.locator("body")).to_contain_text(said("許可がありません", "no access"))
        # The error page leads a guardian back to the guardian's page, not the portal's.
        expect(guardian.locator("#error-home")).to_have_attribute("href", "/portal/guardian/home")
        expect(guardian.locator("header .brand")).to_have_attribute("href", "/portal/guardian/home")
        shot(guardian, "24-guardian-revoked")
        guardian.goto("/portal/guardian/home")
        expect(guardian.locator(f"#ward-{member.member_no}")).to_have_count(0)
    finally:
        close_context(member_context)
        close_context(guardian_context)
