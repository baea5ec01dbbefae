"""Offline: the node dies mid-shift (kill -9), the till keeps selling within its limits,
the node comes back, and every queued tap is booked exactly once with balanced books."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from coopnode.domain.money import Reason, TillKind
from coopnode.reader.till_agent import TillAgent
from coopnode.reader.till_key import TillKeyFile
from coopnode.reader.till_state import TillState
from coopnode.settings import TillSettings
from tests.nodeproc import NodeProcess, remove_tree, short_tmpdir
from tests.tillclient import NoReader, RawTill, add_till, enrol_with_card, tap_keys, wait_for

pytestmark = pytest.mark.slow

ANNA, ANNA_CARD = "202644000019", "4400000000000019"
BEN, BEN_CARD = "202644000027", "4400000000000027"
LOST_MEMBER, LOST_CARD = "202644000035", "4400000000000035"
SETTINGS = msgspec.structs.replace(
    TillSettings(),
    agent_reconnect_backoff_ms=100,
    agent_reconnect_backoff_max_ms=400,
    agent_decision_timeout_s=5.0,
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def offline_node() -> Iterator[NodeProcess]:
    data_dir = short_tmpdir("cnoff")
    process = NodeProcess(data_dir, port=free_port()).start()
    try:
        yield process
    finally:
        process.stop()
        remove_tree(data_dir)


async def test_offline_sales_are_booked_exactly_once_when_the_node_returns(
    offline_node: NodeProcess, tmp_path: Path
) -> None:
    node = offline_node
    enrol_with_card(node, ANNA, ANNA_CARD, base=1_500)
    enrol_with_card(node, BEN, BEN_CARD, base=10_000)
    enrol_with_card(node, LOST_MEMBER, LOST_CARD, base=10_000)
    assert node.request("POST", f"/api/v1/cards/{LOST_CARD}/lost")[0] == 200
    # A cafeteria till: no points, so the arithmetic of the overdrafts stays plain.
    till_id, key = add_till(node, "cafe-44", kind="cafeteria")
    key_file = TillKeyFile(
        till_id=till_id, store="cafe-44", kind=TillKind.CAFETERIA, signing_key_hex=bytes(key).hex()
    )
    lines: list[str] = []
    state = TillState(tmp_path / "till", 8 << 20)
    agent = TillAgent(key_file, node.url, SETTINGS, state, NoReader(), out=lines.append)
    await agent.start()
    try:
        await asyncio.wait_for(agent.link.connected.wait(), 10)
        assert (await agent.charge(ANNA_CARD, 400)).approved
        await asyncio.get_running_loop().run_in_executor(None, node.kill9)
        await wait_for(lambda: not agent.link.online, 5)
        outcomes = [await agent.charge(idm, yen) for idm, yen in SHIFT]
        assert [(o.approved, o.offline, o.reason) for o in outcomes] == EXPECTED
        queued = list(state.queued())
        assert [tap.seq for tap in queued] == [2, 3, 5, 7]
        await asyncio.get_running_loop().run_in_executor(None, node.start)
        await wait_for(lambda: state.queued_count() == 0, 60)
        # Once more by hand: a queued frame sent again is answered, not booked again.
        replay = await RawTill(node.url, till_id, key).open()
        try:
            again = await replay.decide(replay.tap(ANNA_CARD, 900, seq=2), queued[0].frame)
            assert again.approved and again.offline
        finally:
            await replay.close()
    finally:
        await agent.stop()
        state.close()
    assert tap_keys(node, ANNA) == sorted(f"tap:{till_id}:{seq}" for seq in (1, 2, 3, 5))
    assert tap_keys(node, BEN) == [f"tap:{till_id}:7"]
    assert tap_keys(node, LOST_MEMBER) == []
    status, wallet = node.request("GET", f"/api/v1/wallets/{ANNA}")
    assert wallet["balances"]["base"] == 0
    status, listing = node.request("GET", "/api/v1/overdrafts")
    owed = {r["payment_key"]: r["overdraft_yen"] for r in listing["overdrafts"]}
    # 1,500 yen covered the 400 sold online, the first 900 offline and 200 of the second.
    assert owed == {f"tap:{till_id}:3": 700, f"tap:{till_id}:5": 700}
    status, audit = node.request("GET", "/api/v1/audit")
    assert status == 200 and audit["balanced"], audit
    assert any("forwarded: booked, overdraft" in line for line in lines), lines


# What the cashier sells while the node is down, and what the till decides alone: offline
# a tap is at most 1,000 yen and a card spends at most 3,000 yen a day; the lost card is on
# the deny list the till was given.
SHIFT = [
    (ANNA_CARD, 900),  # seq 2: approved
    (ANNA_CARD, 900),  # seq 3: approved
    (ANNA_CARD, 1_200),  # seq 4: over the per-tap limit
    (ANNA_CARD, 700),  # seq 5: approved, 2,500 today
    (ANNA_CARD, 600),  # seq 6: over the card's daily limit
    (BEN_CARD, 500),  # seq 7: approved
    (LOST_CARD, 100),  # seq 8: on the deny list
]
EXPECTED = [
    (True, True, ""),
    (True, True, ""),
    (False, True, Reason.ABOVE_MAXIMUM.value),
    (True, True, ""),
    (False, True, Reason.OVER_LIMIT.value),
    (True, True, ""),
    (False, True, Reason.CARD_BLOCKED.value),
]
