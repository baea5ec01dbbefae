"""A change the node could not confirm in time says so: `outcome_unknown`, then the truth.

Issue 11 §3: while a shard could not answer, the API said `503 timeout` after
`http.request_timeout_s`, and the front went on and booked the payment later; a POS
system that rang the sale up again under a new key charged twice. The shard is held
here with SIGSTOP (it cannot answer, however fast the machine), so the answer is the
request timeout's by construction, not by a race.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from coopnode.domain.sharding import shard_of
from tests.nodeproc import NodeProcess, remove_tree, short_tmpdir

pytestmark = pytest.mark.slow

MEMBER = "202655000001"
REQUEST_TIMEOUT_S = 2


@pytest.fixture
def quick_node() -> Iterator[NodeProcess]:
    """A node whose requests give up while the front still retries its shard calls (each
    call waits 1 s, and the retries with their backoff go on for more than 7 s)."""
    data_dir = short_tmpdir("cnunknown")
    env = {
        "COOPNODE_HTTP__REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
        "COOPNODE_WALLET__CALL_TIMEOUT_S": "1",
    }
    process = NodeProcess(data_dir, env=env).start()
    try:
        yield process
    finally:
        process.stop()
        remove_tree(data_dir)


def test_a_payment_the_shard_did_not_confirm_is_outcome_unknown_then_booked_once(
    quick_node: NodeProcess,
) -> None:
    node = quick_node
    body = {"key": "enrol", "member_no": MEMBER, "coop": "demo", "deposits": {"base": 10_000}}
    assert node.request("POST", "/api/v1/wallets", body)[0] == 201
    status, health = node.request("GET", "/healthz")
    assert status == 200, health
    shard_pid = health["shards"][shard_of(MEMBER, len(health["shards"]))]["pid"]
    payment = {"key": "pos-77:0001", "amount_yen": 480, "till_kind": "shop", "store": "shop-1"}
    path = f"/api/v1/wallets/{MEMBER}/payments"
    os.kill(shard_pid, signal.SIGSTOP)
    try:
        status, unknown = node.request("POST", path, payment)
        status_read, read = node.request("GET", f"/api/v1/wallets/{MEMBER}")
    finally:
        os.kill(shard_pid, signal.SIGCONT)
    assert (status, unknown["reason"]) == (503, "outcome_unknown"), unknown
    assert "same idempotency key" in unknown["message"]
    assert (status_read, read["reason"]) == (503, "timeout"), read  # A read changed nothing.
    # The same request under the same key: the real outcome, booked once.
    status, booked = node.request("POST", path, payment)
    assert status == 200 and booked["kind"] == "pay", booked
    assert node.request("POST", path, payment) == (200, booked)
    status, history = node.request("GET", f"/api/v1/wallets/{MEMBER}/history")
    assert [line["key"] for line in history["lines"]] == ["pos-77:0001", "enrol"]
    status, view = node.request("GET", f"/api/v1/wallets/{MEMBER}")
    assert (
        view["balances"]["base"] + view["balances"]["points"]
        == 10_000 - 480 + booked["points_earned"]
    )


def test_the_api_document_names_outcome_unknown(node: NodeProcess) -> None:
    status, document = node.request("GET", "/api/openapi.json")
    assert status == 200
    pay = document["paths"]["/api/v1/wallets/{member_no}/payments"]["post"]
    assert "outcome_unknown" in pay["responses"]["503"]["description"]
    read = document["paths"]["/api/v1/wallets/{member_no}"]["get"]
    assert "outcome_unknown" not in read["responses"]["503"]["description"]
    history = document["paths"]["/api/v1/wallets/{member_no}/history"]["get"]
    cursor = next(p for p in history["parameters"] if p["name"] == "before_seq")
    assert cursor["schema"]["maximum"] == 2**53 - 1
