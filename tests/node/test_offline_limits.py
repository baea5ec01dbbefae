"""A sale the till approved offline is never lost, against a real node.

The node's offline limit is lowered (800 → 500 yen) while a till is out of reach: the
¥800 sale the till approved under the old limit is booked when forwarded, because the
tap states the limits it was sold under and the node gave the till those. A sale the
node refuses all the same (a card it does not know) is set aside at the till, listed for
staff at GET /api/v1/offline-refusals and counted in /metrics. And a till's key cannot
make the node take limits it never gave that till, nor limits superseded when the tap is
dated; a refusal the node cannot keep for staff is answered "try again".
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from nacl.signing import SigningKey

from coopnode.domain.money import Reason, TillKind
from coopnode.domain.till_frames import OfflineLimits
from coopnode.reader.till_agent import TillAgent
from coopnode.reader.till_key import TillKeyFile
from coopnode.reader.till_state import TillState
from tests.node.test_offline_till import SETTINGS, free_port
from tests.node.test_till_channel import metric
from tests.nodeproc import NodeProcess, remove_tree, short_tmpdir
from tests.tillclient import NoReader, RawTill, add_till, enrol_with_card, tap_keys, wait_for

pytestmark = pytest.mark.slow

ANNA, ANNA_CARD = "202646000011", "4600000000000011"
# Never bound to anyone: a till approves it offline (it only knows the deny list).
STRANGER_CARD = "46000000000000ff"
LIMIT_YEN = "COOPNODE_TILL__OFFLINE_TAP_MAX_YEN"
ENV = {
    LIMIT_YEN: "800",
    # The node's and the till's clocks are this machine's: limits stop being in force
    # the moment newer ones went out, so a test can date a tap just after.
    "COOPNODE_TILL__OFFLINE_TAP_CLOCK_SKEW_MAX_S": "0",
    "COOPNODE_TILL__OFFLINE_REFUSED_PER_TILL_MAX": "3",
}
REFUSED = 'coopnode_till_offline_refused_total{reason="%s"}'


@pytest.fixture
def limits_node() -> Iterator[NodeProcess]:
    data_dir = short_tmpdir("cnlim")
    process = NodeProcess(data_dir, port=free_port(), env=dict(ENV)).start()
    try:
        yield process
    finally:
        process.stop()
        remove_tree(data_dir)


async def test_a_sale_under_a_limit_since_lowered_is_booked_and_a_refused_one_is_kept(
    limits_node: NodeProcess, tmp_path: Path
) -> None:
    node = limits_node
    enrol_with_card(node, ANNA, ANNA_CARD, base=300)
    till_id, key = add_till(node, "cafe-46", kind="cafeteria")
    key_file = TillKeyFile(
        till_id=till_id, store="cafe-46", kind=TillKind.CAFETERIA, signing_key_hex=bytes(key).hex()
    )
    lines: list[str] = []
    state = TillState(tmp_path / "till", 8 << 20)
    agent = TillAgent(key_file, node.url, SETTINGS, state, NoReader(), out=lines.append)
    await agent.start()
    try:
        await asyncio.wait_for(agent.link.connected.wait(), 10)
        sold_under = state.limits
        assert sold_under.tap_max_yen == 800
        await asyncio.get_running_loop().run_in_executor(None, node.kill9)
        await wait_for(lambda: not agent.link.online, 5)
        sale = await agent.charge(ANNA_CARD, 800)
        stranger = await agent.charge(STRANGER_CARD, 300)
        assert sale.approved and sale.offline and stranger.approved and stranger.offline
        node.env[LIMIT_YEN] = "500"
        await asyncio.get_running_loop().run_in_executor(None, node.start)
        await wait_for(lambda: state.queued_count() == 0, 60)
        assert state.limits.tap_max_yen == 500  # The new limit reached the till.
    finally:
        await agent.stop()
        state.close()
    # Booked under the limit it was sold under: 300 from the purse, 500 owed.
    assert tap_keys(node, ANNA) == [f"tap:{till_id}:{sale.seq}"]
    status, listing = node.request("GET", "/api/v1/overdrafts")
    owed = {r["payment_key"]: r["overdraft_yen"] for r in listing["overdrafts"]}
    assert owed == {f"tap:{till_id}:{sale.seq}": 500}
    # The stranger's sale: set aside at the till, listed on the node, counted.
    [aside] = TillState(tmp_path / "till", 8 << 20).set_aside_frames()
    assert (aside.tap.seq, aside.reason) == (stranger.seq, Reason.UNKNOWN_CARD.value)
    [refused] = refusals(node)
    assert (refused["till_id"], refused["seq"], refused["amount_yen"]) == (
        till_id, stranger.seq, 300,
    )  # fmt: skip
    assert refused["reason"] == "unknown_card" and refused["limits"]["tap_max_yen"] == 800
    assert metric(node, REFUSED % "unknown_card") == 1
    assert any("REFUSED BY THE NODE (unknown_card)" in line for line in lines), lines
    await a_till_key_cannot_claim_limits_it_was_not_given(
        node, till_id, key, sold_under, tap_keys(node, ANNA)
    )
    status, audit = node.request("GET", "/api/v1/audit")
    assert status == 200 and audit["balanced"], audit


async def a_till_key_cannot_claim_limits_it_was_not_given(
    node: NodeProcess,
    till_id: str,
    key: SigningKey,
    sold_under: OfflineLimits,
    booked: list[str],
) -> None:
    till = await RawTill(node.url, till_id, key).open()
    try:
        assert till.welcome is not None and till.welcome.limits.tap_max_yen == 500
        forged = msgspec.structs.replace(sold_under, tap_max_yen=100_000)
        big = till.tap(ANNA_CARD, 5_000, seq=101, offline=True, limits=forged)
        decision = await till.decide(big, till.signed(big))
        assert (decision.approved, decision.reason) == (False, Reason.INVALID_INPUT)
        # The old limits, dated after the new ones went out: superseded by then.
        stale = till.tap(ANNA_CARD, 800, seq=102, offline=True, limits=sold_under)
        decision = await till.decide(stale, till.signed(stale))
        assert (decision.approved, decision.reason) == (False, Reason.INVALID_INPUT)
        # A fourth refusal for this till is beyond what the node keeps (3): "try again",
        # so the till keeps it queued instead of losing it.
        fourth = till.tap(STRANGER_CARD, 100, seq=103, offline=True, limits=till.welcome.limits)
        decision = await till.decide(fourth, till.signed(fourth))
        assert (decision.approved, decision.reason) == (False, Reason.UNAVAILABLE)
    finally:
        await till.close()
    assert [(r["seq"], r["reason"]) for r in refusals(node)][1:] == [
        (101, "invalid_input"), (102, "invalid_input"),
    ]  # fmt: skip
    assert metric(node, REFUSED % "invalid_input") == 2
    assert tap_keys(node, ANNA) == booked  # Nothing more was booked.
    status, answer = node.request("GET", "/api/v1/offline-refusals?till_id=till-x")
    assert status == 400 and answer["reason"] == "invalid_input", answer
    status, answer = node.request("GET", f"/api/v1/offline-refusals?till_id={till_id}", token="")
    assert status == 401, answer
    status, document = node.request("GET", "/api/openapi.json")
    listing = document["paths"]["/api/v1/offline-refusals"]["get"]
    # Staff who may read the tills, in a session or with a machine's token of that scope.
    assert listing["security"] == [{"apiToken": ["tills.read"]}, {"staffSession": ["tills.read"]}]
    assert listing["parameters"][0]["name"] == "till_id"


def refusals(node: NodeProcess) -> list[dict[str, Any]]:
    status, listing = node.request("GET", "/api/v1/offline-refusals")
    assert status == 200 and not listing["more"], listing
    assert listing["total_yen"] == sum(r["amount_yen"] for r in listing["refusals"])
    found: list[dict[str, Any]] = listing["refusals"]
    return found
