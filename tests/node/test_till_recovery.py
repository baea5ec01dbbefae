"""The till agent's recovery paths, against a real node: an online tap whose decision did
not come back in time, the till program restarted, and the queue forwarded by the next
run of the agent from the same LMDB.

The first agent talks to the node through a relay that holds the node's answers, so the
node decides (and books) every online tap while the till waits in vain and gives up on it,
however fast the machine; the second connects straight to the node and waits as long as a
real till.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from nacl.signing import SigningKey

from coopnode.domain.money import TillKind
from coopnode.domain.till_frames import TapBody, frame_encoder
from coopnode.reader.till_agent import TillAgent
from coopnode.reader.till_key import TillKeyFile
from coopnode.reader.till_state import QueuedTap, TillState
from coopnode.settings import TillSettings
from coopnode.till_keys import sign_body
from tests.nodeproc import NodeProcess
from tests.tillclient import NoReader, add_till, enrol_with_card, tap_keys, wait_for
from tests.tillrelay import AnswerHold

pytestmark = pytest.mark.slow

PATIENT = msgspec.structs.replace(
    TillSettings(),
    agent_reconnect_backoff_ms=100,
    agent_reconnect_backoff_max_ms=400,
    agent_decision_timeout_s=5.0,
    agent_forward_retry_s=0.2,
)
# Its answers are held back (see `held_answers`): the till gives up after this long, by
# construction, not because the node happened to be slower than a timer.
IMPATIENT = msgspec.structs.replace(PATIENT, agent_decision_timeout_s=0.3)


class Till:
    """A cafeteria till whose agent can be stopped and started again on the same files."""

    def __init__(self, node: NodeProcess, store_dir: Path) -> None:
        self.node = node
        till_id, key = add_till(node, "cafe-45", kind="cafeteria")
        self.till_id = till_id
        self.key_file = TillKeyFile(
            till_id=till_id,
            store="cafe-45",
            kind=TillKind.CAFETERIA,
            signing_key_hex=bytes(key).hex(),
        )
        self.state = TillState(store_dir, 8 << 20)
        self.lines: list[str] = []
        self.agent: TillAgent | None = None

    async def start(self, settings: TillSettings, node_url: str | None = None) -> TillAgent:
        agent = TillAgent(
            self.key_file,
            node_url or self.node.url,
            settings,
            self.state,
            NoReader(),
            self.lines.append,
        )
        await agent.start()
        await asyncio.wait_for(agent.link.connected.wait(), 10)
        self.agent = agent
        return agent

    async def stop(self) -> None:
        if self.agent is not None:
            await self.agent.stop()
            self.agent = None

    def history(self, member_no: str) -> list[tuple[str, str, int]]:
        status, page = self.node.request("GET", f"/api/v1/wallets/{member_no}/history?limit=50")
        assert status == 200, page
        return sorted((line["kind"], line["key"], line["amount_yen"]) for line in page["lines"])


@pytest.fixture
async def till(node: NodeProcess, tmp_path: Path) -> AsyncIterator[Till]:
    till = Till(node, tmp_path / "till")
    try:
        yield till
    finally:
        await till.stop()
        till.state.close()


@pytest.fixture
async def held_answers(node: NodeProcess) -> AsyncIterator[AnswerHold]:
    """A way to the node whose answers never reach the till."""
    async with AnswerHold(node.url) as relay:
        relay.hold()
        yield relay


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def balances(node: NodeProcess, member_no: str) -> dict[str, int]:
    status, wallet = node.request("GET", f"/api/v1/wallets/{member_no}")
    assert status == 200, wallet
    balances: dict[str, int] = wallet["balances"]
    return balances


async def test_a_sale_the_till_refused_but_the_node_booked_is_voided(
    node: NodeProcess, till: Till, held_answers: AnswerHold
) -> None:
    member, card = "202645000011", "4500000000000011"
    enrol_with_card(node, member, card, base=5_000)
    agent = await till.start(IMPATIENT, held_answers.url)
    # 1,500 yen is above the offline limit (1,000): with no answer in time, the till
    # refuses the sale, though the node books it.
    outcome = await agent.charge(card, 1_500)
    assert not outcome.approved and outcome.reason == "above_maximum"
    await wait_for(lambda: balances(node, member)["base"] == 3_500, 10)
    await till.stop()
    queued = list(till.state.queued())
    assert [(tap.seq, tap.approved_locally) for tap in queued] == [(outcome.seq, False)]

    await till.start(PATIENT)
    await wait_for(lambda: till.state.queued_count() == 0, 20)
    assert balances(node, member)["base"] == 5_000
    tap_key = f"tap:{till.till_id}:{outcome.seq}"
    assert tap_keys(node, member) == [tap_key]
    assert any(kind == "void" for kind, _, _ in till.history(member)), till.history(member)
    assert any("voiding" in line for line in till.lines), till.lines
    assert any(f"#{outcome.seq} reversed" in line for line in till.lines), till.lines
    status, audit = node.request("GET", "/api/v1/audit")
    assert status == 200 and audit["balanced"], audit


async def test_a_sale_the_till_approved_and_the_node_declined_is_booked_as_owed(
    node: NodeProcess, till: Till, held_answers: AnswerHold
) -> None:
    member, card = "202645000029", "4500000000000029"
    enrol_with_card(node, member, card, base=300)
    agent = await till.start(IMPATIENT, held_answers.url)
    # Within the offline limits: the till approves the sale when no answer comes; the
    # node declines the online frame for want of funds.
    outcome = await agent.charge(card, 800)
    assert outcome.approved and outcome.offline
    await till.stop()
    [queued] = till.state.queued()
    assert queued.approved_locally and not queued.offline

    await till.start(PATIENT)
    await wait_for(lambda: till.state.queued_count() == 0, 20)
    # The till's approval stands: booked once, as an offline tap, with the rest owed.
    [booked] = tap_keys(node, member)
    assert booked != f"tap:{till.till_id}:{outcome.seq}"
    assert balances(node, member)["base"] == 0
    status, listing = node.request("GET", "/api/v1/overdrafts")
    owed = {r["payment_key"]: r["overdraft_yen"] for r in listing["overdrafts"]}
    assert owed[booked] == 500
    assert any("declined late" in line for line in till.lines), till.lines

    # Forwarding the queue again, or restarting once more, books nothing more.
    await till.stop()
    again = await till.start(PATIENT)
    assert await again.forward_queue() == 0
    assert tap_keys(node, member) == [booked]
    status, audit = node.request("GET", "/api/v1/audit")
    assert status == 200 and audit["balanced"], audit


async def test_a_sale_booked_while_the_till_waited_is_not_booked_twice(
    node: NodeProcess, till: Till, held_answers: AnswerHold
) -> None:
    member, card = "202645000037", "4500000000000037"
    enrol_with_card(node, member, card, base=5_000)
    agent = await till.start(IMPATIENT, held_answers.url)
    outcome = await agent.charge(card, 600)
    assert outcome.approved and outcome.offline
    await till.stop()
    await till.start(PATIENT)
    await wait_for(lambda: till.state.queued_count() == 0, 20)
    assert tap_keys(node, member) == [f"tap:{till.till_id}:{outcome.seq}"]
    assert balances(node, member)["base"] == 4_400
    assert any("forwarded: booked" in line for line in till.lines), till.lines


async def test_a_queued_frame_the_node_refuses_is_set_aside_and_the_till_sells_on(
    node: NodeProcess, till: Till
) -> None:
    """A tap queued under a key the node does not know for this till (a till whose key
    was replaced while taps waited) is refused as badly signed: it is set aside for staff
    instead of being sent on every link until the node hangs up on the till."""
    member, card = "202645000045", "4500000000000045"
    enrol_with_card(node, member, card, base=5_000)
    seq = till.state.reserve_seq()
    body = TapBody(
        till_id=till.till_id, seq=seq, idm=card, amount_yen=300, at_ms=now_ms(), offline=True
    )
    frame = frame_encoder.encode(sign_body(SigningKey.generate(), body))
    queued = QueuedTap(
        seq=seq, frame=frame, idm=card, amount_yen=300, approved_locally=True, offline=True
    )
    till.state.queue_unanswered(queued)
    agent = await till.start(PATIENT)
    await wait_for(lambda: till.state.queued_count() == 0, 20)
    [aside] = till.state.set_aside_frames()
    assert (aside.tap.seq, aside.reason) == (seq, "bad_signature")
    assert tap_keys(node, member) == []
    # The link stayed up, and the next sale goes through online.
    assert agent.link.online
    outcome = await agent.charge(card, 450)
    assert outcome.approved and not outcome.offline
    assert balances(node, member)["base"] == 4_550


async def test_a_till_restored_from_a_backup_numbers_on_from_where_the_node_saw_it(
    node: NodeProcess, till: Till, tmp_path: Path
) -> None:
    """The same card paying the same amount under a number used before would be answered
    with the old sale's decision: approved, and nothing charged. The node tells the till
    how far it has seen it count, and the till moves its counter past that."""
    member, card = "202645000053", "4500000000000053"
    enrol_with_card(node, member, card, base=5_000)
    agent = await till.start(PATIENT)
    for _ in range(2):
        assert (await agent.charge(card, 430)).approved
    await till.stop()
    till.state.close()
    till.state = TillState(tmp_path / "restored-from-an-older-backup", 8 << 20)

    agent = await till.start(PATIENT)
    outcome = await agent.charge(card, 430)
    assert outcome.approved and not outcome.offline and outcome.seq == 3, outcome
    assert balances(node, member)["base"] == 5_000 - 3 * 430
    assert len(tap_keys(node, member)) == 3
    assert any("numbering resumes at #3" in line for line in till.lines), till.lines
