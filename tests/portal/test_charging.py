"""Charging (FLOWS §6) clicked through in Chromium, in Japanese and in English: by card
through the embedded test acquirer, and at a convenience store paid through the simulated
store network; then a search of the node's files for the card numbers and security codes
typed. Every page reached is checked at a phone's size (tests/portal/phone_checks.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import Page, expect

from tests.identity.nodeclient import Member
from tests.nodeproc import REPO, TEST_CONFIG, NodeProcess
from tests.portal.browser import Words, balance, enrol, last_sequence, shot, wait_message
from tests.portal.phone_checks import open_page, visit
from tests.portal.test_member_pages import mypage_login, register_wallet, set_password

pytestmark = pytest.mark.slow

APPROVED = "4242424242424242"
DECLINED = "4000000000000002"
INSUFFICIENT = "4000000000009995"
CVC = "737"
TYPED_CARDS = (APPROVED, DECLINED, INSUFFICIENT)


def to_emoney_home(page: Page, node: NodeProcess, tag: str) -> Member:
    member = Member(tag)
    enrol(node, member)
    set_password(page, node, member)
    mypage_login(page, node, member)
    register_wallet(page, node, member)
    return member


def build_amount(page: Page, steps: list[int], purse: str = "base") -> None:
    """The charge page opens at 5,000 yen; from 0 (リセット), the buttons add `steps`."""
    page.click("#menu-charge")
    page.click("#reset")
    for step in steps:
        page.click(f"#add-{step}")
    page.check(f"#purse-{purse}")


def fill_card(page: Page, number: str) -> None:
    page.fill("#f-card_number", number)
    page.select_option("#f-exp_month", "12")
    page.select_option("#f-exp_year", str(time.gmtime().tm_year + 2))
    page.fill("#f-cvc", CVC)
    page.fill("#f-birthday", "0517")


def test_card_charges(page: Page, node: NodeProcess, lang: str) -> None:
    said = Words(lang)
    to_emoney_home(page, node, "card")
    assert balance(page, "base") == 40_000
    # The amount starts at a value, as the manual's page does, and grows by the buttons.
    page.click("#menu-charge")
    amount = page.locator("#amount")
    expect(amount).to_have_text(said("5,000円", "¥5,000"))
    for step in (10_000, 10_000, 3_000):
        page.click(f"#add-{step}")
    expect(amount).to_have_text(said("28,000円", "¥28,000"))
    page.click("#reset")
    expect(amount).to_have_text(said("0円", "¥0"))
    page.click("#add-20000")
    page.check("#purse-base")
    page.click("#pay-card")
    # The expiry starts unset (never at a date already past); 戻る keeps the amount.
    expect(page.locator("#f-exp_month")).to_have_value("")
    expect(page.locator("#f-exp_year")).to_have_value("")
    page.click("#card-back")
    expect(amount).to_have_text(said("20,000円", "¥20,000"))
    expect(page.locator("#purse-base")).to_be_checked()
    page.click("#pay-card")
    shot(page, "14-charge-card")
    # A number that fails the Luhn check is refused by the node, next to the field.
    fill_card(page, APPROVED[:-1] + "1")
    page.click("#buy")
    expect(page.locator("#e-card_number")).to_contain_text(said("カード番号", "card number"))
    expect(page.locator("#f-card_number")).to_have_value("")
    fill_card(page, APPROVED)
    page.click("#buy")
    expect(page.locator("#charge-done")).to_be_visible()
    expect(page.locator("#card-used")).to_contain_text("4242")
    shot(page, "15-charge-done")
    page.click("#to-home")
    assert balance(page, "base") == 60_000
    # A double click on 購入 is one charge.
    build_amount(page, [1_000])
    page.click("#pay-card")
    fill_card(page, APPROVED)
    page.dblclick("#buy")
    expect(page.locator("#charge-done")).to_be_visible()
    page.click("#to-home")
    assert balance(page, "base") == 61_000
    refusals = (
        (DECLINED, said("ご利用いただけません", "declined")),
        (INSUFFICIENT, said("不足", "not enough")),
    )
    for number, words in refusals:
        build_amount(page, [1_000])
        page.click("#pay-card")
        fill_card(page, number)
        page.click("#buy")
        expect(page.locator("#card-error")).to_contain_text(words)
    # Over the purse's cap (100,000 yen): refused before any payment page is shown.
    build_amount(page, [50_000])
    page.click("#pay-card")
    expect(page.locator("#e-amount_yen")).to_be_visible()
    expect(page.locator("#f-card_number")).to_have_count(0)
    page.click("#menu-home")
    assert balance(page, "base") == 61_000
    # An amount under the co-op's minimum is refused next to the amount.
    page.click("#menu-charge")
    page.click("#reset")
    expect(page.locator("#pay-card")).to_have_text(said("クレジットカード", "Credit card"))
    page.click("#pay-card")
    expect(page.locator("#e-amount_yen")).to_have_text(
        said("チャージ金額を設定してください。", "Set the amount.")
    )


def pay_at_store(node: NodeProcess, number: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "coopnode.node.cli", "--config", str(TEST_CONFIG)]
    command += ["konbini", "pay", number, "--data-dir", str(node.data_dir)]
    return subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )


def issue_konbini(
    page: Page, node: NodeProcess, member: Member, amount: int, lang: str = "ja"
) -> str:
    said = Words(lang)
    build_amount(page, [amount], purse="cafeteria")
    page.click("#pay-konbini")
    page.fill("#f-kana_family", "yamada")
    page.fill("#f-kana_given", "タロウ")
    page.fill("#f-mail", member.mail)
    page.fill("#f-phone1", "090")
    page.fill("#f-phone2", "1234")
    page.fill("#f-phone3", "5678")
    page.click("#konbini-confirm")
    expect(page.locator("#e-kana_family")).to_contain_text(said("全角カタカナ", "katakana"))
    page.fill("#f-kana_family", "ヤマダ")
    page.click("#konbini-confirm")
    # The store chain is chosen after 確定する; 戻る keeps what was typed.
    page.click("#konbini-back")
    expect(page.locator("#f-kana_family")).to_have_value("ヤマダ")
    page.click("#konbini-confirm")
    page.click("#konbini-issue")
    expect(page.locator("#e-store")).to_be_visible()
    page.check("#store-lawson")
    after = last_sequence(node)
    page.click("#konbini-issue")
    expect(page.locator("#konbini-issued")).to_be_visible()
    mail = wait_message(node, member.mail, after)
    assert mail["subject"] == "【大学生協事業連合】コンビニチャージのお知らせ"
    assert "/mypage/emoney/charge/konbini/" in mail["body"]
    return page.locator("#payment-number").inner_text()


def forged_notice(node: NodeProcess, number: str) -> int:
    body = json.dumps(
        {
            "event": "payment.succeeded",
            "payment_number": number,
            "amount": 3000,
            "store": "lawson",
            "paid_at": int(time.time()),
        }
    ).encode()
    stamp = int(time.time())
    wrong = hmac.new(b"not-the-key", f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(f"{node.url}/webhooks/konbini", data=body, method="POST")
    request.add_header("Konbini-Signature", f"t={stamp},v1={wrong}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_konbini_charge_paid_forged_and_expired(page: Page, node: NodeProcess, lang: str) -> None:
    said = Words(lang)
    member = to_emoney_home(page, node, "konbini")
    number = issue_konbini(page, node, member, 3_000, lang)
    shot(page, "16-konbini-numbers")
    page.click("#to-home")
    expect(page.locator("#pending")).to_contain_text(said("ローソン", "Lawson"))
    expect(page.locator("#pending .pay-by")).to_be_visible()
    shot(page, "17-home-pending-konbini")
    assert balance(page, "cafeteria") == 0
    # A notification with a wrong signature changes nothing.
    assert forged_notice(node, number) == 401
    visit(page)
    assert balance(page, "cafeteria") == 0
    paid = pay_at_store(node, number)
    assert paid.returncode == 0, paid.stdout + paid.stderr
    # The store network sending the same notice again (here from the simulator's page)
    # credits nothing more.
    page.goto("/dev/konbini")
    page.fill("#f-payment_number", number)
    page.click("#sim-pay")
    expect(page.locator("#sim-result")).to_contain_text("already_credited")
    visit(page, "/mypage/emoney")
    assert balance(page, "cafeteria") == 3_000
    expect(page.locator("#pending")).to_have_count(0)
    # A charge not paid by its deadline is cancelled by the sweep; paying late is refused.
    late = issue_konbini(page, node, member, 1_000, lang)
    eight_days_ms = int((time.time() + 8 * 86_400) * 1000)
    status, swept = node.request("POST", "/api/v1/staff/konbini/sweep", {"at_ms": eight_days_ms})
    assert status == 200 and swept["expired"], swept
    refused = pay_at_store(node, late)
    assert refused.returncode != 0 and "409" in refused.stdout, refused.stdout
    page.click("#to-home")
    expect(page.locator("#pending")).to_have_count(0)
    assert balance(page, "cafeteria") == 3_000


def test_no_card_number_or_cvc_on_disk(node: NodeProcess) -> None:
    """The card numbers and security code typed above are in no file of the node's data
    directory (the payments LMDB, Ray's logs, the node's log).
    """
    wanted = [number.encode() for number in TYPED_CARDS] + [f'"{CVC}"'.encode()]
    found = {}
    for path in node.data_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                data = path.read_bytes()
            except OSError:
                continue
            found.update({secret: str(path) for secret in wanted if secret in data})
    assert (node.data_dir / "payments").is_dir()
    assert not found, found


def test_a_suspended_account_starts_no_charge(page: Page, node: NodeProcess, lang: str) -> None:
    """Forms opened before the suspension are refused after it, before any payment starts
    (no authorization, no payment number); numbers issued before it are still credited."""
    said = Words(lang)
    member = to_emoney_home(page, node, "suspended")
    number = issue_konbini(page, node, member, 3_000, lang)
    card_form = open_page(page.context)
    card_form.goto("/mypage/emoney")
    build_amount(card_form, [1_000])
    card_form.click("#pay-card")
    fill_card(card_form, APPROVED)
    konbini_form = open_page(page.context)
    konbini_form.goto("/mypage/emoney")
    build_amount(konbini_form, [1_000])
    konbini_form.click("#pay-konbini")
    konbini_form.fill("#f-kana_family", "ヤマダ")
    konbini_form.fill("#f-kana_given", "タロウ")
    konbini_form.fill("#f-mail", member.mail)
    for part, digits in (("1", "090"), ("2", "1234"), ("3", "5678")):
        konbini_form.fill(f"#f-phone{part}", digits)
    konbini_form.click("#konbini-confirm")
    konbini_form.check("#store-lawson")

    # The suspension asks first; 'cancel' suspends nothing.
    page.goto("/mypage/emoney/suspend")
    page.click("#suspend")
    expect(page.locator("#suspend-confirmation")).to_contain_text(said("停止しますか", "Suspend"))
    shot(page, "26-suspend-confirm")
    page.click("#suspend-cancel")
    expect(page.locator("#balances")).to_be_visible()
    expect(page.locator("#suspended")).to_have_count(0)
    page.goto("/mypage/emoney/suspend")
    page.click("#suspend")
    page.click("#suspend-confirm")
    expect(page.locator("#suspend-done")).to_be_visible()

    # The forms opened before are refused, with the reason.
    card_form.click("#buy")
    expect(card_form.locator("#charge-suspended")).to_contain_text(
        said("停止中のため、チャージできません", "suspended, so it cannot be charged")
    )
    after = last_sequence(node)
    konbini_form.click("#konbini-issue")
    expect(konbini_form.locator("#charge-suspended")).to_be_visible()
    expect(konbini_form.locator("#konbini-issued")).to_have_count(0)
    # The charge page says so and offers no way to pay.
    page.goto("/mypage/emoney/charge")
    expect(page.locator("#charge-suspended")).to_be_visible()
    expect(page.locator("#pay-card")).to_have_count(0)
    shot(page, "27-charge-suspended")
    visit(page, "/mypage/emoney")
    assert balance(page, "base") == 40_000
    # Only the charge issued before the suspension awaits payment, and HOME says that it
    # will still be credited.
    expect(page.locator("#pending .pending-charge")).to_have_count(1)
    expect(page.locator("#konbini-suspended")).to_contain_text(
        said("停止中もチャージされ", "still credited")
    )
    status, outbox = node.request("GET", f"/dev/outbox.json?to={member.mail}&after={after}")
    assert status == 200 and outbox["messages"] == [], outbox

    # Paid at the store after the suspension, it is credited to the frozen purse.
    paid = pay_at_store(node, number)
    assert paid.returncode == 0 and '"credited"' in paid.stdout, paid.stdout + paid.stderr
    visit(page)
    assert balance(page, "cafeteria") == 3_000
    expect(page.locator("#suspended")).to_be_visible()
    expect(page.locator("#pending")).to_have_count(0)
