"""The till agent's answers to "try again" and to a void that comes too late.

The node cannot be made to answer UNAVAILABLE or VOID_WINDOW_CLOSED on cue, so here the
agent talks to a scripted link that answers each frame as the test says; the agent's
files are a real `TillState` on disk. The same paths against a real node, where the node
can be made to decide late, are in tests/node/test_till_recovery.py.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from nacl.signing import SigningKey

from coopnode.domain.money import Reason, TillKind
from coopnode.domain.till_frames import (
    Decision,
    OfflineLimits,
    RefundBody,
    Refused,
    Signed,
    SignedBody,
    TapBody,
    VoidBody,
    Welcome,
    frame_encoder,
    signed_body_decoder,
    till_frame_decoder,
)
from coopnode.reader.till_agent import TillAgent
from coopnode.reader.till_key import TillKeyFile
from coopnode.reader.till_state import QueuedTap, TillState
from coopnode.settings import TillSettings
from coopnode.till_keys import sign_body
from tests.tillclient import NoReader

CARD = "012e4cd1a2b3c4d5"
TILL_KEY = SigningKey.generate()
SETTINGS = msgspec.structs.replace(TillSettings(), agent_forward_retry_s=0.05)

Script = Callable[[SignedBody, int], Decision | Refused | None]


class ScriptedLink:
    """Stands in for `TillLink`: answers each frame by the test's script; keeps what came."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.online = True
        self.connected = asyncio.Event()
        self.connected.set()
        self.sent: dict[int, list[bytes]] = defaultdict(list)

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def request(self, body: SignedBody, timeout_s: float) -> Decision | None:
        self.sent[body.seq].append(b"sealed")
        answer = self.script(body, len(self.sent[body.seq]))
        return answer if isinstance(answer, Decision) else None

    async def forward(self, seq: int, frame: bytes, timeout_s: float) -> Decision | Refused | None:
        self.sent[seq].append(frame)
        signed = till_frame_decoder.decode(frame)
        assert isinstance(signed, Signed)
        return self.script(signed_body_decoder.decode(signed.body), len(self.sent[seq]))


def decision(body: SignedBody, approved: bool, reason: Reason | None = None) -> Decision:
    kind = {TapBody: "tap", VoidBody: "void", RefundBody: "refund"}[type(body)]
    return Decision(seq=body.seq, kind=kind, approved=approved, reason=reason)


def welcome() -> Welcome:
    return Welcome(
        till_id="till-0045", store="cafe-45", kind=TillKind.CAFETERIA, node_time_ms=1,
        limits=OfflineLimits(tap_max_yen=1_000, card_day_max_yen=3_000, queue_max_taps=10),
        session_key_box=bytes(80), deny_version=1, deny_idms=[],
    )  # fmt: skip


@pytest.fixture
def state(tmp_path: Path) -> TillState:
    state = TillState(tmp_path / "till", 8 << 20)
    state.remember_welcome(welcome())
    return state


def agent_with(state: TillState, script: Script, lines: list[str]) -> TillAgent:
    key_file = TillKeyFile(
        till_id="till-0045",
        store="cafe-45",
        kind=TillKind.CAFETERIA,
        signing_key_hex=bytes(TILL_KEY).hex(),
    )

    agent = TillAgent(key_file, "http://127.0.0.1:1", SETTINGS, state, NoReader(), lines.append)
    agent.link = ScriptedLink(script)  # type: ignore[assignment]
    return agent


def queue_refused_tap(state: TillState, amount_yen: int) -> TapBody:
    """An online tap that got no answer and that the till then refused (above its offline
    limit): queued to learn whether the node booked it after all."""
    tap = TapBody(till_id="till-0045", seq=state.reserve_seq(), idm=CARD,
                  amount_yen=amount_yen, at_ms=1)  # fmt: skip
    state.queue_unanswered(
        QueuedTap(
            seq=tap.seq,
            frame=frame_encoder.encode(sign_body(TILL_KEY, tap)),
            idm=CARD,
            amount_yen=amount_yen,
            approved_locally=False,
            offline=False,
        )
    )
    return tap


async def test_try_again_keeps_the_tap_queued_under_its_number_until_it_is_booked(
    state: TillState,
) -> None:
    """UNAVAILABLE may mean "booked, but the answer was lost": the tap must be sent again
    under the same number, not shown as declined (the cashier would ring it up again as
    a new tap and charge the member twice) nor dropped from the queue (a lost sale)."""

    def script(body: SignedBody, attempt: int) -> Decision:
        if attempt <= 3:
            return decision(body, False, Reason.UNAVAILABLE)
        return decision(body, True)

    lines: list[str] = []
    agent = agent_with(state, script, lines)
    link = agent.link
    assert isinstance(link, ScriptedLink)
    outcome = await agent.charge(CARD, 700)
    assert outcome.approved and outcome.offline, outcome
    assert state.queued_count() == 1
    await agent.start()
    try:
        for _ in range(200):
            if state.queued_count() == 0:
                break
            await asyncio.sleep(0.02)
    finally:
        await agent.stop()
    assert state.queued_count() == 0
    # One number for the whole story: the online try, then the same signed frame again.
    assert list(link.sent) == [outcome.seq]
    forwarded = link.sent[outcome.seq][1:]
    assert len(forwarded) == 3 and len(set(forwarded)) == 1
    assert any("forwarded: booked" in line for line in lines), lines


async def test_a_void_that_comes_after_midnight_becomes_a_refund_of_the_whole_sale(
    state: TillState,
) -> None:
    """The node booked a sale the till had refused; the void reaches the node the next
    day, when only a refund can give the money back."""
    answers: list[SignedBody] = []

    def script(body: SignedBody, attempt: int) -> Decision:
        answers.append(body)
        match body:
            case TapBody():
                return decision(body, True)  # Booked, though the till refused it.
            case VoidBody():
                return decision(body, False, Reason.VOID_WINDOW_CLOSED)
            case RefundBody():
                return decision(body, True)
        raise AssertionError(body)

    lines: list[str] = []
    agent = agent_with(state, script, lines)
    tap = queue_refused_tap(state, 1_500)
    for _ in range(3):
        await agent.forward_queue()
    assert state.queued_count() == 0
    kinds = [type(body).__name__ for body in answers]
    assert kinds == ["TapBody", "VoidBody", "RefundBody"], kinds
    refund = answers[-1]
    assert isinstance(refund, RefundBody)
    assert (refund.tap_till_id, refund.tap_seq, refund.amount_yen) == ("till-0045", tap.seq, 1_500)
    assert any("refunding instead" in line for line in lines), lines


async def test_a_void_with_no_answer_is_sent_again_as_the_same_frame(state: TillState) -> None:
    voids: list[VoidBody] = []

    def script(body: SignedBody, attempt: int) -> Decision | None:
        if isinstance(body, VoidBody):
            voids.append(body)
            return None if len(voids) < 3 else decision(body, True)
        return decision(body, True)

    agent = agent_with(state, script, [])
    queue_refused_tap(state, 1_200)
    for _ in range(4):
        await agent.forward_queue()
    assert state.queued_count() == 0
    # The same void, by number and by bytes: it cannot reverse the sale twice.
    assert len(voids) == 3 and len({void.seq for void in voids}) == 1


async def test_a_frame_the_node_refuses_outright_is_set_aside_not_sent_again(
    state: TillState,
) -> None:
    """Sent again on every link, a frame the node will never take would get the link
    closed for bad frames each time: it is set aside, with the node's reason, for staff."""

    def script(body: SignedBody, attempt: int) -> Decision | Refused:
        return Refused(seq=body.seq, reason="bad_signature", message="not signed by this till")

    lines: list[str] = []
    agent = agent_with(state, script, lines)
    tap = queue_refused_tap(state, 500)
    for _ in range(3):
        await agent.forward_queue()
    link = agent.link
    assert isinstance(link, ScriptedLink)
    assert len(link.sent[tap.seq]) == 1
    assert state.queued_count() == 0
    [aside] = state.set_aside_frames()
    assert (aside.tap.seq, aside.reason) == (tap.seq, "bad_signature")
    assert any("REFUSED BY THE NODE" in line for line in lines), lines
