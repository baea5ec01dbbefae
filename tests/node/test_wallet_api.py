"""The wallet's JSON API on a real node: Ray shards, LMDB files, HTTP."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.nodeproc import NodeProcess

pytestmark = pytest.mark.slow

HANAKO = "202600000017"  # A demo member: meal 96,000, base 40,000, meal plan 1,000 a day.


def wallet(node: NodeProcess, member_no: str) -> dict[str, Any]:
    status, body = node.request("GET", f"/api/v1/wallets/{member_no}")
    assert status == 200, body
    return dict(body)


def audit(node: NodeProcess) -> dict[str, Any]:
    status, body = node.request("GET", "/api/v1/audit")
    assert status == 200, body
    return dict(body)


def enrol(node: NodeProcess, member_no: str, **deposits: int) -> dict[str, Any]:
    body = {"key": "enrol", "member_no": member_no, "coop": "demo", "deposits": deposits}
    status, answer = node.request("POST", "/api/v1/wallets", {**body, "meal_plan": "meal-1000"})
    assert status == 201, answer
    return dict(answer)


def test_health_metrics_and_openapi(node: NodeProcess) -> None:
    status, health = node.request("GET", "/healthz")
    assert status == 200 and health["ready"] is True
    assert [shard["shard_index"] for shard in health["shards"]] == [0, 1]
    with urllib.request.urlopen(node.url + "/metrics") as response:
        metrics = response.read().decode()
    assert "coopnode_wallet_commit_seconds_bucket" in metrics
    assert "coopnode_wallet_front_batch_ops_bucket" in metrics
    status, document = node.request("GET", "/api/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.1")
    payments = document["paths"]["/api/v1/wallets/{member_no}/payments"]["post"]
    schema_ref = payments["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert set(schema["required"]) >= {"key", "amount_yen", "till_kind", "store"}
    assert schema["properties"]["amount_yen"]["minimum"] == 1
    assert payments["security"] == [
        {"apiToken": ["payments.take"]},
        {"staffSession": ["payments.take"], "csrfToken": []},
    ]


def test_enrol_pay_balance_history_void(node: NodeProcess) -> None:
    member = "202611000001"
    opened = enrol(node, member, meal=96_000, base=40_000)
    assert opened["balances"]["meal"] == 96_000
    status, paid = node.request(
        "POST",
        f"/api/v1/wallets/{member}/payments",
        {"key": "till-7:0001", "amount_yen": 1_250, "till_kind": "cafeteria", "store": "cafe-1"},
    )
    assert status == 200, paid
    assert paid["changes"] == {
        "meal": -1_000,
        "cafeteria": 0,
        "textbook": 0,
        "base": -250,
        "points": 0,
    }
    assert paid["meal_remaining_today_yen"] == 0
    view = wallet(node, member)
    assert view["balances"]["base"] == 39_750 and view["emoney_used"] is True
    status, history = node.request("GET", f"/api/v1/wallets/{member}/history?limit=10")
    assert status == 200
    assert [line["kind"] for line in history["lines"]] == ["pay", "open"]
    status, voided = node.request(
        "POST", f"/api/v1/wallets/{member}/payments/till-7:0001/void", {"key": "void-1"}
    )
    assert status == 200, voided
    assert wallet(node, member)["balances"]["base"] == 40_000
    assert audit(node)["balanced"] is True


def test_a_retry_returns_the_first_result_and_a_changed_retry_is_refused(node: NodeProcess) -> None:
    member = "202611000002"
    enrol(node, member, base=10_000)
    payment = {"key": "pos-42", "amount_yen": 300, "till_kind": "shop", "store": "shop-1"}
    first = node.request("POST", f"/api/v1/wallets/{member}/payments", payment)
    again = node.request("POST", f"/api/v1/wallets/{member}/payments", payment)
    assert first == again and first[0] == 200
    changed = node.request(
        "POST", f"/api/v1/wallets/{member}/payments", {**payment, "amount_yen": 301}
    )
    assert changed == (409, changed[1]) and changed[1]["reason"] == "idempotency_conflict"
    assert wallet(node, member)["balances"]["base"] == 9_700


def _post_raw(
    node: NodeProcess, path: str, data: bytes, token: str | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(node.url + path, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {node.token if token is None else token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


PAY = f"/api/v1/wallets/{HANAKO}/payments"
GOOD = {"key": "bad-input", "amount_yen": 100, "till_kind": "shop", "store": "shop-1"}


@pytest.mark.parametrize(
    ("path", "body", "status", "reason"),
    [
        (PAY, {**GOOD, "amount_yen": -100}, 400, "invalid_input"),
        (PAY, {**GOOD, "amount_yen": 0}, 400, "invalid_input"),
        (PAY, {**GOOD, "amount_yen": 100.5}, 400, "invalid_input"),
        (PAY, {**GOOD, "amount_yen": "100"}, 400, "invalid_input"),
        (PAY, {**GOOD, "amount_yen": 10**30}, 400, "invalid_input"),
        (PAY, {**GOOD, "amount_yen": 200_000}, 422, "above_maximum"),
        (PAY, {**GOOD, "till_kind": "casino"}, 400, "invalid_input"),
        (PAY, {**GOOD, "surprise": 1}, 400, "invalid_input"),
        (PAY, {**GOOD, "key": ""}, 400, "invalid_input"),
        (PAY, {**GOOD, "key": "x" * 81}, 400, "invalid_input"),
        (PAY, {**GOOD, "amount_yen": 500_000 // 5}, 402, "insufficient_funds"),
        ("/api/v1/wallets/209900000000/payments", GOOD, 404, "unknown_member"),
        ("/api/v1/wallets/12345/payments", GOOD, 400, "invalid_input"),
        (
            f"/api/v1/wallets/{HANAKO}/charges",
            {"key": "c", "purse": "base", "amount_yen": 70_000, "source": "card"},
            422,
            "over_limit",
        ),
        (
            f"/api/v1/wallets/{HANAKO}/moves",
            {"key": "m", "from_purse": "meal", "to_purse": "base", "amount_yen": 10},
            422,
            "purse_not_allowed",
        ),
        (
            f"/api/v1/wallets/{HANAKO}/payments/never-made/refunds",
            {"key": "r", "amount_yen": 10},
            404,
            "unknown_payment",
        ),
    ],
)
def test_bad_input_gets_a_clear_error_and_changes_nothing(
    node: NodeProcess, path: str, body: dict[str, Any], status: int, reason: str
) -> None:
    before_wallet, before_audit = wallet(node, HANAKO), audit(node)
    if body.get("key") == GOOD["key"]:
        body = {**body, "key": f"bad-{reason}"}  # Declines are kept under their key.
    got_status, answer = node.request("POST", path, body)
    assert (got_status, answer["reason"]) == (status, reason), answer
    assert answer["message"]
    after_audit = audit(node)
    assert wallet(node, HANAKO) == before_wallet
    entries = [shard["entries"] for shard in after_audit["shards"]]
    assert entries == [shard["entries"] for shard in before_audit["shards"]]


def test_malformed_oversized_and_unauthorised_requests(node: NodeProcess) -> None:
    before = wallet(node, HANAKO)
    assert _post_raw(node, PAY, b"{not json")[0] == 400
    assert _post_raw(node, PAY, b"[]")[1]["reason"] == "invalid_input"
    huge = json.dumps({**GOOD, "store": "x" * 100_000}).encode()
    assert _post_raw(node, PAY, huge) == (
        413,
        {"reason": "too_large", "message": "the request body is too large"},
    )
    assert _post_raw(node, PAY, json.dumps(GOOD).encode(), token="wrong")[0] == 401
    status, answer = node.request("GET", f"/api/v1/wallets/{HANAKO}", token="")
    assert (status, answer["reason"]) == (401, "unauthorized")
    assert wallet(node, HANAKO) == before


def test_suspended_member_is_refused_until_resumed(node: NodeProcess) -> None:
    member = "202611000003"
    enrol(node, member, base=5_000)
    assert node.request("POST", f"/api/v1/wallets/{member}/suspend")[1]["status"] == "suspended"
    payment = {"key": "s1", "amount_yen": 100, "till_kind": "shop", "store": "shop-1"}
    status, answer = node.request("POST", f"/api/v1/wallets/{member}/payments", payment)
    assert (status, answer["reason"]) == (403, "suspended")
    assert node.request("POST", f"/api/v1/wallets/{member}/resume")[1]["status"] == "active"
    payment["key"] = "s2"
    assert node.request("POST", f"/api/v1/wallets/{member}/payments", payment)[0] == 200
