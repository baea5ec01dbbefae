"""Every member flow of FLOWS §0–5 clicked through in Chromium, as a member would, with
passcodes read from the node's real SMTP outbox, in Japanese and in English; every page
reached is checked at a phone's size (tests/portal/phone_checks.py) and screenshots of each
main screen are kept under artifacts/screenshots/.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from coopnode.domain.identity import mask_phone
from tests.identity.nodeclient import SEEN_SECRETS, Member, remember
from tests.nodeproc import NodeProcess
from tests.portal.browser import (
    PASSWORD,
    Words,
    balance,
    code_in,
    enrol,
    last_sequence,
    shot,
    wait_message,
)
from tests.portal.phone_checks import visit

pytestmark = pytest.mark.slow


def set_password(page: Page, node: NodeProcess, member: Member, *, shots: bool = False) -> None:
    """FLOWS §2 from the guide page the enrolment mail links to."""
    page.goto("/portal/password")
    if shots:
        shot(page, "02-guide")
    page.click("#set-password")
    page.fill("#f-mail", member.mail)
    after = last_sequence(node)
    page.click("#send-code")
    expect(page.locator("#verify-code")).to_be_visible()
    mail = wait_message(node, member.mail, after)
    page.fill("#f-code", code_in(mail["body"]))
    if shots:
        shot(page, "03-password-code")
    page.click("#verify-code")
    page.click("#continue")
    page.fill("#f-password", "short")
    page.fill("#f-password_confirm", "short")
    page.click("#continue")
    expect(page.locator("#e-password")).to_be_visible()
    page.fill("#f-password", PASSWORD)
    page.fill("#f-password_confirm", PASSWORD)
    page.click("#continue")
    expect(page.locator("#password-done")).to_be_visible()
    # The next step is at hand: the sign-in to the portal (and the my-page's login).
    expect(page.locator("#to-sign-in")).to_have_attribute("href", "/portal/sign-in")
    expect(page.locator("#to-mypage")).to_have_attribute("href", "/mypage/login")


def mypage_login(page: Page, node: NodeProcess, member: Member, *, shots: bool = False) -> None:
    """FLOWS §4: the my-page login with its mailed confirmation code."""
    page.goto("/mypage")
    page.click("#login")
    page.fill("#f-mail", member.mail)
    page.fill("#f-password", PASSWORD)
    # A double click on the button is one login (the engine and the script both see to it).
    page.dblclick("#sign-in")
    after = last_sequence(node)
    page.click("#send-code")
    mail = wait_message(node, member.mail, after)
    page.fill("#f-code", code_in(mail["body"]))
    if shots:
        shot(page, "06-mypage-code")
    page.click("#verify-code")
    expect(page).to_have_url(f"{node.url}/mypage/home")


def register_wallet(page: Page, node: NodeProcess, member: Member, *, shots: bool = False) -> None:
    """FLOWS §5: wallet sign-up by SMS code, then the consent screen."""
    page.click("#register-wallet")
    page.fill("#f-identifier", member.phone_national)
    after = last_sequence(node)
    page.click("#wallet-login")
    sms = wait_message(node, member.phone, after, channel="sms")
    page.fill("#f-code", code_in(sms["body"]))
    page.click("#wallet-verify")
    expect(page.locator("#allow")).to_be_visible()
    if shots:
        shot(page, "07-consent")
    page.click("#allow")
    expect(page).to_have_url(f"{node.url}/mypage/emoney?registered=1")


def test_mail_change_password_portal_mypage_and_emoney(
    page: Page, node: NodeProcess, lang: str
) -> None:
    said = Words(lang)
    member = Member("browser")
    enrol(node, member)
    # §1: the mail-address change, all six steps, before first use.
    page.goto("/portal/mail-change")
    shot(page, "01-mail-change-intro")
    page.click("#start")
    current = page.locator("ol.progress li.current")
    expect(current).to_have_text(said("個人情報入力", "Your details"))
    expect(page.locator(".progress-now")).to_contain_text(said("ステップ 1/6", "Step 1 of 6"))
    expect(page.locator("#cancel-flow")).to_be_visible()
    year, month, day = member.birth_date.split("-")
    page.fill("#f-year", year)
    page.fill("#f-month", month)
    page.fill("#f-day", day)
    page.fill("#f-member_no", "12345")
    page.click("#confirm-input")
    expect(page.locator("#e-member_no")).to_contain_text(said("12桁", "12 half-width digits"))
    page.fill("#f-member_no", member.member_no)
    page.click("#confirm-input")
    expect(page.locator("#typed-member-no")).to_have_text(member.member_no)
    page.click("#search")
    expect(page.locator("#masked-mail")).to_contain_text("@")
    # The sender's domain is named only when it can be real (not a development one).
    expect(page.locator("main")).not_to_contain_text("coop.example")
    after = last_sequence(node)
    page.click("#send-passcode")
    expect(page.locator("#passcode-sent")).to_be_visible()
    expect(current).to_have_text(said("パスコード確認", "Passcode"))
    mail = wait_message(node, member.mail, after)
    assert mail["subject"] == "大学生協加入情報（メールアドレス）変更受付"
    page.fill("#f-code", code_in(mail["body"]))
    page.click("#check-passcode")
    expect(current).to_have_text(said("メールアドレス変更", "New address"))
    new_mail = f"new-{member.mail}"
    page.fill("#f-mail", new_mail)
    page.click("#confirm-input")
    expect(page.locator("#new-mail")).to_have_text(new_mail)
    after = last_sequence(node)
    page.click("#send-passcode")
    second = wait_message(node, new_mail, after)
    shot(page, "01-mail-change-passcode")
    page.fill("#f-code", code_in(second["body"]))
    page.click("#check-passcode")
    expect(page.locator("#change-done")).to_be_visible()
    expect(current).to_have_text(said("登録完了", "Done"))
    shot(page, "01-mail-change-done")
    member.mail = new_mail
    # §2: password setting, back to the guide page by itself.
    set_password(page, node, member, shots=True)
    # §3: portal sign-in with an SMS code, then the home page.
    page.click("#to-sign-in")
    page.fill("#f-mail", member.mail)
    page.fill("#f-password", "Wrong-Password-1!")
    page.click("#sign-in")
    expect(page.locator("#e-password")).to_contain_text(said("正しくありません", "not correct"))
    page.fill("#f-mail", member.mail)
    page.fill("#f-password", PASSWORD)
    page.click("#sign-in")
    page.fill("#f-phone", member.phone_national)
    shot(page, "04-portal-mfa")
    after = last_sequence(node)
    page.click("#send-sms")
    sms = wait_message(node, member.phone, after, channel="sms")
    # The code page says where the code went: the phone on record, masked.
    expect(page.locator("#code-sent")).to_contain_text(mask_phone(member.phone))
    page.fill("#f-code", code_in(sms["body"]))
    page.click("#verify-code")
    expect(page).to_have_url(f"{node.url}/portal/home")
    expect(page.locator("#member-no")).to_have_text(member.member_no)
    empty = said("表示するレコードはありません。", "There are no records to show.")
    expect(page.locator("#purchases")).to_contain_text(empty)
    shot(page, "05-portal-home")
    # §4 and §5: the my-page, the wallet's consent, and the e-money HOME.
    mypage_login(page, node, member, shots=True)
    register_wallet(page, node, member, shots=True)
    assert balance(page, "base") == 40_000 and balance(page, "meal") == 96_000
    shot(page, "08-emoney-home")
    # Money history, then a move from base money to cafeteria money.
    page.click("#menu-history")
    expect(page.locator("#history")).to_contain_text(said("加入時入金", "Enrolment deposit"))
    shot(page, "09-history")
    page.click("#menu-move")
    expect(page.locator("main")).not_to_contain_text("教科書教材")
    page.fill("#f-amount_yen", "3000")
    page.dblclick("#move")
    expect(page.locator("#move-done")).to_be_visible()
    shot(page, "10-move")
    page.click("#menu-home")
    assert balance(page, "base") == 37_000 and balance(page, "cafeteria") == 3_000
    # A change without the session's CSRF token is refused and changes nothing.
    forged = page.request.post(
        f"{node.url}/mypage/emoney/move",
        form={"to_purse": "cafeteria", "amount_yen": "1000", "idem": "forged"},
    )
    assert forged.status == 403 and said("有効期限", "expired") in forged.text()
    visit(page)
    assert balance(page, "cafeteria") == 3_000
    page.click("#menu-notices")
    shot(page, "11-notices")
    # Suspension: the page says that resuming happens at the counter.
    page.click("#menu-suspend")
    expect(page.locator("#counter-note")).to_contain_text(said("窓口", "counter"))
    page.click("#suspend")
    page.click("#suspend-confirm")
    expect(page.locator("#suspend-done")).to_be_visible()
    shot(page, "12-suspended")
    page.click("#menu-home")
    expect(page.locator("#suspended")).to_be_visible()
    # Session ids, CSRF tokens and the wallet's access token: none may reach a disk.
    for cookie in page.context.cookies():
        if cookie["name"] not in ("cn_lang", "cn_mfa_methods", "cn_flow_mail_change_stage"):
            remember(cookie["value"])


def test_csrf_before_sign_in_and_the_language_switch(
    page: Page, node: NodeProcess, lang: str
) -> None:
    said = Words(lang)
    other = Words("en" if lang == "ja" else "ja")
    page.goto("/portal/password/details")
    forged = page.request.post(
        f"{node.url}/portal/password/details", form={"mail": "someone@example.jp"}
    )
    assert forged.status == 403 and said("有効期限", "expired") in forged.text()
    send = page.locator("#send-code")
    expect(send).to_have_text(said("確認コードを送信", "Send verification code"))
    page.click("#lang-switch")
    expect(send).to_have_text(other("確認コードを送信", "Send verification code"))
    expect(page.locator("html")).to_have_attribute("lang", other("ja", "en"))
    page.goto("/portal/mail-change/details")
    page.fill("#f-year", "2006")
    page.fill("#f-month", "02")
    page.fill("#f-day", "31")
    page.fill("#f-member_no", "999999999999")
    page.click("#confirm-input")
    expect(page.locator("#e-birth_date")).to_have_text(
        other("生年月日を正しく入力してください。", "Enter a valid birth date.")
    )
    shot(page, "13-language-switch-error")
    # 中止する, on any step, ends the change and says so.
    page.click("#cancel-flow")
    expect(page.locator("#change-cancelled")).to_be_visible()
    page.goto(f"/portal?lang={lang}")
    expect(page.locator("#lang-switch")).to_have_text(said("English", "日本語"))


def test_unknown_pages_answer_in_the_members_language(
    page: Page, node: NodeProcess, lang: str
) -> None:
    """A page path that is no page answers a 404 page with the way back; a form's address
    opened directly (405) says to start again; the API's paths keep their JSON; the icon."""
    said = Words(lang)
    answer = page.goto("/portal/no-such-page")
    assert answer is not None and answer.status == 404
    assert answer.headers["content-type"].startswith("text/html")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("#page-error")).to_contain_text(said("見つかりません", "not found"))
    expect(page.locator("#error-home")).to_have_attribute("href", "/portal")
    shot(page, "28-not-found")
    opened = page.goto("/portal/mail-change/search")
    assert opened is not None and opened.status == 405 and opened.headers["allow"] == "POST"
    expect(page.locator("#page-error")).to_contain_text(said("直接開く", "opened directly"))
    api = page.request.get(f"{node.url}/api/v1/no-such-thing")
    assert api.status == 404 and api.json()["reason"] == "not_found"
    page.goto("/mypage/no-such-page")
    expect(page.locator("#error-home")).to_have_attribute("href", "/mypage")
    icon = page.locator("link[rel=icon]")
    expect(icon).to_have_attribute("href", "/static/favicon.svg")
    served = page.request.get(f"{node.url}/static/favicon.svg")
    assert served.status == 200 and served.headers["content-type"] == "image/svg+xml"


def test_no_password_or_passcode_of_the_browser_tests_on_disk(node: NodeProcess) -> None:
    """The passwords typed and the codes read by the tests above are in no file of the
    node's data directory (LMDB, Ray's logs, the node's log).
    """
    remember(PASSWORD)
    wanted = [secret.encode() for secret in SEEN_SECRETS if len(secret) > 6]
    # A six-digit code counts only standing alone, not inside a longer number.
    codes = re.compile(
        rb"(?<![0-9A-Za-z.])("
        + b"|".join(secret.encode() for secret in SEEN_SECRETS if len(secret) == 6)
        + rb")(?![0-9A-Za-z])"
    )
    assert len(SEEN_SECRETS) >= 10, SEEN_SECRETS
    found = {}
    for path in node.data_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                data = path.read_bytes()
            except OSError:
                continue  # A socket, or a file that vanished meanwhile.
            found.update({secret: str(path) for secret in wanted if secret in data})
            found.update({match.group(1): str(path) for match in codes.finditer(data)})
    assert not found, found
