"""A convenience-store charge the store network reports paid but the wallet will not credit
(the purse reached its cap meanwhile) is refunded by staff, over HTTP on a real node and
with `coopnode admin konbini refund`: idempotent, audited, shown to the member on HOME;
and the store network's API is in the OpenAPI document. The member's pages in Japanese
and in English, each checked at a phone's size (tests/portal/phone_checks.py).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from playwright.sync_api import Page, expect

from tests.nodeproc import REPO, TEST_CONFIG, NodeProcess
from tests.portal.browser import Words, balance, shot
from tests.portal.phone_checks import visit
from tests.portal.test_charging import issue_konbini, pay_at_store, to_emoney_home

pytestmark = pytest.mark.slow

UNKNOWN_CHARGE = "0123456789abcdef01234567"


def refund_command(node: NodeProcess, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "coopnode.node.cli", "--config", str(TEST_CONFIG)]
    command += ["admin", "konbini", "refund", *arguments, "--node", node.url]
    command += ["--token-file", str(node.machine_token_file)]
    return subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )


def newest_charge_id(page: Page) -> str:
    visit(page, "/mypage/emoney")
    href = page.locator("#pending a").first.get_attribute("href")
    assert href is not None
    return href.rsplit("/", 1)[-1]


def refund_path(charge_id: str) -> str:
    return f"/api/v1/staff/konbini/charges/{charge_id}/refund"


def test_paid_but_not_credited_is_refunded(page: Page, node: NodeProcess, lang: str) -> None:
    said = Words(lang)
    paid_status = said("反映をお待ち", "being credited")
    member = to_emoney_home(page, node, "refund")
    number = issue_konbini(page, node, member, 20_000, lang)
    charge_id = newest_charge_id(page)
    # Meanwhile the counter fills the cafeteria purse to 90,000 of its 100,000 yen cap.
    counter = {"key": f"counter-{charge_id}", "purse": "cafeteria", "amount_yen": 90_000}
    status, booked = node.request(
        "POST", f"/api/v1/wallets/{member.member_no}/charges", {**counter, "source": "counter"}
    )
    assert status == 200, booked
    # The store reports the payment; the wallet refuses the credit: paid, not credited.
    paid = pay_at_store(node, number)
    assert paid.returncode != 0 and "not_credited" in paid.stdout, paid.stdout
    page.goto("/mypage/emoney")
    expect(page.locator(f"#charge-{charge_id} .charge-status")).to_contain_text(paid_status)
    assert balance(page, "cafeteria") == 90_000

    # Bad requests change nothing: no token, an unknown charge, a malformed body.
    status, _ = node.request("POST", refund_path(charge_id), {}, token="wrong-token")
    assert status == 401
    status, body = node.request("POST", refund_path(UNKNOWN_CHARGE), {})
    assert (status, body["reason"]) == (404, "unknown_charge")
    status, body = node.request("POST", refund_path(charge_id), {"note": "x" * 201})
    assert (status, body["reason"]) == (400, "invalid_input")
    status, body = node.request("POST", refund_path(charge_id), {"amount": 1})
    assert status == 400
    visit(page)
    expect(page.locator(f"#charge-{charge_id} .charge-status")).to_contain_text(paid_status)

    # The refund, then the same refund again over HTTP and from the command line.
    status, body = node.request("POST", refund_path(charge_id), {"note": "purse cap reached"})
    assert status == 200, body
    assert body == {
        "charge_id": charge_id,
        "member_no": member.member_no,
        "amount_yen": 20_000,
        "status": "refunded",
        "refunded_now": True,
    }
    status, again = node.request("POST", refund_path(charge_id), {"note": "twice"})
    assert status == 200 and again["refunded_now"] is False and again["status"] == "refunded"
    command = refund_command(node, charge_id, "--note", "from the counter")
    assert command.returncode == 0, command.stdout + command.stderr
    assert "already refunded" in command.stdout
    bad = refund_command(node, "not-a-charge-id")
    assert bad.returncode == 2 and "24 hexadecimal" in bad.stderr
    status, audit = node.request("GET", "/api/v1/staff/audit?limit=100")
    assert status == 200, audit
    # This member's charges only: the walk runs once per language on the same node.
    refunds = [
        entry
        for entry in audit["entries"]
        if entry["action"] == "konbini.refund" and entry["target"] == charge_id
    ]
    assert len(refunds) == 1
    assert "20000 yen" in refunds[0]["detail"] and "purse cap reached" in refunds[0]["detail"]

    # The member sees it refunded on HOME; the store network repeating itself credits nothing.
    visit(page)
    expect(page.locator(f"#charge-{charge_id} .charge-status")).to_contain_text(
        said("返金済み", "Refunded")
    )
    shot(page, "25-home-konbini-refunded")
    repeated = pay_at_store(node, number)
    assert repeated.returncode == 0 and "refunded" in repeated.stdout, repeated.stdout
    visit(page)
    assert balance(page, "cafeteria") == 90_000

    # A charge still awaiting payment is not refundable (nor is anything else credited).
    issue_konbini(page, node, member, 1_000, lang)
    pending_id = newest_charge_id(page)
    status, body = node.request("POST", refund_path(pending_id), {})
    assert (status, body["reason"]) == (409, "not_refundable")
    status, audit = node.request("GET", "/api/v1/staff/audit?limit=100")
    targets = [e["target"] for e in audit["entries"] if e["action"] == "konbini.refund"]
    assert targets.count(charge_id) == 1 and pending_id not in targets


def test_konbini_endpoints_in_openapi(node: NodeProcess) -> None:
    status, document = node.request("GET", "/api/openapi.json")
    assert status == 200
    paths = document["paths"]
    webhook = paths["/webhooks/konbini"]["post"]
    assert "security" not in webhook
    assert webhook["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PaymentNotice"
    }
    sweep = paths["/api/v1/staff/konbini/sweep"]["post"]
    assert sweep["security"] == [
        {"apiToken": ["node.operate"]},
        {"staffSession": ["node.operate"], "csrfToken": []},
    ]
    refund = paths["/api/v1/staff/konbini/charges/{charge_id}/refund"]["post"]
    assert refund["security"] == [
        {"apiToken": ["money.refund"]},
        {"staffSession": ["money.refund"], "csrfToken": []},
    ]
    assert [p["name"] for p in refund["parameters"]] == ["charge_id"]
    assert {"KonbiniRefundRequest", "KonbiniRefundAnswer", "SweepAnswer", "WebhookAnswer"} <= set(
        document["components"]["schemas"]
    )
    # The wallet's own refund of a payment keeps its schema beside the konbini one.
    assert "RefundRequest" in document["components"]["schemas"]
