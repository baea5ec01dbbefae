"""The till's side of offline sales: a card's day is the co-op's (midnight in Tokyo, by
an injected clock, whatever the host's time zone), each offline tap states the limits it
was sold under, and a sale the node declines after the till made it is set aside for
staff, never dropped. The link is scripted (tests/reader/test_agent_forwarding.py); the
same against a real node is in tests/node/test_offline_limits.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import msgspec
import pytest

from coopnode.domain.days import coop_day
from coopnode.domain.money import Reason
from coopnode.domain.till_frames import (
    Decision,
    OfflineLimits,
    Signed,
    SignedBody,
    TapBody,
    signed_body_decoder,
    till_frame_decoder,
)
from coopnode.reader.till_state import TillState
from tests.domain.test_offline_limits import utc_ms
from tests.reader.test_agent_forwarding import (
    CARD,
    ScriptedLink,
    agent_with,
    decision,
    welcome,
)


class Clock:
    """The till's clock, set by the test."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def host_in_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The till's host keeps UTC, as many a server does."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def offline_state(path: Path, clock: Clock) -> TillState:
    state = TillState(path, 8 << 20, clock_ms=clock)
    state.remember_welcome(welcome())  # 1,000 yen a tap, 3,000 a card a day offline.
    return state


def offline_body(link: ScriptedLink, seq: int) -> TapBody:
    signed = till_frame_decoder.decode(link.sent[seq][-1])
    assert isinstance(signed, Signed)
    body = signed_body_decoder.decode(signed.body)
    assert isinstance(body, TapBody)
    return body


async def test_a_card_s_day_turns_at_midnight_in_tokyo_on_a_host_in_utc(
    tmp_path: Path, host_in_utc: None
) -> None:
    """¥2,400 at 23:30 in Tokyo (14:30 UTC), then ¥900 at 00:30 (15:30 UTC): two co-op
    days, so the second sale is within the card's ¥3,000 a day. By the host's date (both
    March 31 in UTC) it would be refused as over the day's limit."""
    clock = Clock(utc_ms(2026, 3, 31, 14, 30))
    state = offline_state(tmp_path / "till", clock)
    agent = agent_with(state, lambda body, attempt: None, [])
    agent.link.online = False  # type: ignore[misc]
    try:
        for _ in range(3):
            assert (await agent.charge(CARD, 800)).approved
        assert state.sale(1).day == coop_day(clock.now_ms)  # type: ignore[union-attr]
        clock.now_ms = utc_ms(2026, 3, 31, 15, 30)
        late = await agent.charge(CARD, 900)
        assert late.approved and late.offline, late
        assert state.sale(late.seq).day == datetime(2026, 4, 1).toordinal()  # type: ignore[union-attr]
        # The same card at 23:30 UTC the same evening: still April 1st in Tokyo.
        clock.now_ms = utc_ms(2026, 3, 31, 23, 30)
        assert (await agent.charge(CARD, 1_000)).approved
        assert (await agent.charge(CARD, 1_000)).approved
        refused = await agent.charge(CARD, 1_000)
        assert (refused.approved, refused.reason) == (False, Reason.OVER_LIMIT.value)
    finally:
        state.close()


async def test_an_offline_tap_states_its_limits_and_a_late_decline_is_set_aside(
    tmp_path: Path,
) -> None:
    clock = Clock(utc_ms(2026, 3, 31, 3, 0))
    state = offline_state(tmp_path / "till", clock)
    declined: list[SignedBody] = []

    def script(body: SignedBody, attempt: int) -> Decision:
        declined.append(body)
        return decision(body, False, Reason.UNKNOWN_CARD)

    lines: list[str] = []
    agent = agent_with(state, script, lines)
    link = agent.link
    assert isinstance(link, ScriptedLink)
    link.online = False
    try:
        sale = await agent.charge(CARD, 800)
        assert sale.approved and sale.offline
        # The limits change while the sale waits: the tap keeps those it was sold under.
        limits = welcome().limits
        lower = OfflineLimits(tap_max_yen=500, card_day_max_yen=800, queue_max_taps=3)
        state.remember_welcome(msgspec.structs.replace(welcome(), limits=lower))
        await agent.forward_queue()
        body = offline_body(link, sale.seq)
        assert body.offline and body.limits == limits
        assert state.queued_count() == 0
        [aside] = state.set_aside_frames()
        assert (aside.tap.seq, aside.reason) == (sale.seq, "unknown_card")
        assert any(f"#{sale.seq} REFUSED BY THE NODE (unknown_card)" in line for line in lines)
        # Set aside, it is not sent again.
        await agent.forward_queue()
        assert len(declined) == 1
    finally:
        state.close()
