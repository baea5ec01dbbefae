"""A front lost with SIGKILL (issue 15 §2): its till moves to the other front of the
cluster, and every frame the lost front booked without answering is answered there from
the wallet's records and charged once; the books balance.

The till reaches front A through a relay that holds A's answers, so that A decides and
books each sale while the till waits in vain and sells it offline, however fast the
machine (`tests.tillrelay`); then A is killed, and the till's next front is B itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from coopnode.domain.money import TillKind
from coopnode.reader.till_agent import TillAgent
from coopnode.reader.till_key import TillKeyFile
from coopnode.reader.till_state import TillState
from coopnode.settings import TillSettings
from tests.fronts.conftest import Cluster
from tests.fronts.test_push import PATIENCE_S, balanced, knows_card, knows_till, until
from tests.nodeproc import NodeProcess
from tests.tillclient import NoReader, add_till, enrol_with_card, tap_keys, wait_for
from tests.tillrelay import AnswerHold

pytestmark = pytest.mark.slow

# While front A's answers are held the till gives up after this long, by construction;
# afterwards a slow answer only means the frame is sent again, and answered once.
SETTINGS = msgspec.structs.replace(
    TillSettings(),
    agent_decision_timeout_s=0.3,
    agent_reconnect_backoff_ms=100,
    agent_reconnect_backoff_max_ms=400,
    agent_forward_retry_s=0.2,
)
AMOUNTS_YEN = (300, 400, 500)
DEPOSIT_YEN = 10_000


def base_yen(front: NodeProcess, member_no: str) -> int:
    status, wallet = front.request("GET", f"/api/v1/wallets/{member_no}")
    assert status == 200, wallet
    return int(wallet["balances"]["base"])


@pytest.fixture
def till_state(tmp_path: Path) -> Iterator[TillState]:
    state = TillState(tmp_path / "till", 8 << 20)
    try:
        yield state
    finally:
        state.close()


async def test_a_till_whose_front_is_killed_moves_and_each_sale_is_charged_once(
    cluster: Cluster, till_state: TillState
) -> None:
    front_a, front_b = cluster.front_a, cluster.front_b
    member, card = "202615000046", "1500000000000046"
    enrol_with_card(front_a, member, card, base=DEPOSIT_YEN)
    till_id, key = add_till(front_a, "cafe-15", kind="cafeteria")
    until(lambda: knows_till(front_b, till_id) and knows_card(front_b, card), "B's copy")
    key_file = TillKeyFile(
        till_id=till_id,
        store="cafe-15",
        kind=TillKind.CAFETERIA,
        signing_key_hex=bytes(key).hex(),
    )
    lines: list[str] = []
    async with AnswerHold(front_a.url) as relay:
        relay.hold()
        agent = TillAgent(
            key_file, [relay.url, front_b.url], SETTINGS, till_state, NoReader(), lines.append
        )
        await agent.start()
        try:
            await wait_for(lambda: agent.link.node_url == relay.url, PATIENCE_S)
            for amount in AMOUNTS_YEN:
                outcome = await agent.charge(card, amount)
                assert outcome.approved and outcome.offline, outcome
            assert till_state.queued_count() == len(AMOUNTS_YEN)
            # Front A booked every one of them; the till never heard.
            spent = sum(AMOUNTS_YEN)
            until(lambda: base_yen(front_b, member) == DEPOSIT_YEN - spent, "A's bookings")

            killed_s = time.monotonic()
            front_a.kill9()
            await wait_for(lambda: agent.link.node_url == front_b.url, PATIENCE_S)
            moved_s = time.monotonic() - killed_s
            await wait_for(lambda: till_state.queued_count() == 0, PATIENCE_S)
            # And it sells on at front B: online, or offline and forwarded, once either way.
            await agent.charge(card, 600)
            await wait_for(lambda: till_state.queued_count() == 0, PATIENCE_S)
        finally:
            await agent.stop()

    numbers = range(1, len(AMOUNTS_YEN) + 2)
    assert tap_keys(front_b, member) == sorted(f"tap:{till_id}:{seq}" for seq in numbers)
    assert base_yen(front_b, member) == DEPOSIT_YEN - sum(AMOUNTS_YEN) - 600
    assert sum("forwarded: booked" in line for line in lines) >= len(AMOUNTS_YEN), lines
    assert balanced(front_b)
    print(f"the till moved to front B {moved_s:.2f} s after front A was killed")
