"""The till's own LMDB: durable sequence numbers, the deny list, the offline queue."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from coopnode.domain.errors import InvariantViolation
from coopnode.domain.money import Reason, TillKind
from coopnode.domain.till_frames import DenyUpdate, OfflineLimits, Welcome
from coopnode.reader.till_state import QueuedTap, TillState

MAP_BYTES = 8 << 20
CARD = "012e4cd1a2b3c4d5"
LOST = "012e4cd1a2b3c4e6"


def welcome(deny: list[str]) -> Welcome:
    return Welcome(
        till_id="till-0001", store="cafe-1", kind=TillKind.CAFETERIA, node_time_ms=1,
        limits=OfflineLimits(tap_max_yen=500, card_day_max_yen=800, queue_max_taps=3),
        session_key_box=bytes(80), deny_version=5, deny_idms=deny,
    )  # fmt: skip


def tap(seq: int, amount: int, idm: str = CARD) -> QueuedTap:
    return QueuedTap(
        seq=seq, frame=b"signed-%d" % seq, idm=idm, amount_yen=amount,
        approved_locally=True, offline=True,
    )  # fmt: skip


def test_sequence_numbers_and_the_deny_list_survive_a_restart(tmp_path: Path) -> None:
    state = TillState(tmp_path, MAP_BYTES)
    assert [state.reserve_seq() for _ in range(3)] == [1, 2, 3]
    state.remember_welcome(welcome([]))
    state.apply_deny_update(DenyUpdate(version=6, blocked=[LOST], unblocked=[], changed_at_ms=1))
    state.apply_deny_update(DenyUpdate(version=4, blocked=[CARD], unblocked=[], changed_at_ms=1))
    state.close()
    reopened = TillState(tmp_path, MAP_BYTES)
    try:
        assert reopened.reserve_seq() == 4
        assert reopened.deny == {LOST}  # The stale update (version 4) was ignored.
        assert reopened.limits.tap_max_yen == 500
    finally:
        reopened.close()


def test_a_till_that_never_connected_approves_nothing_offline(tmp_path: Path) -> None:
    state = TillState(tmp_path, MAP_BYTES)
    try:
        refusal = state.approve_offline(tap(1, 100), state.today())
        assert refusal is not None and refusal[0] is Reason.ABOVE_MAXIMUM
        assert state.queued_count() == 0
    finally:
        state.close()


def test_offline_limits_hold_and_a_refused_tap_queues_nothing(tmp_path: Path) -> None:
    state = TillState(tmp_path, MAP_BYTES)
    try:
        state.remember_welcome(welcome([LOST]))
        day = state.today()
        assert state.approve_offline(tap(1, 500), day) is None
        assert state.approve_offline(tap(2, 501), day)[0] is Reason.ABOVE_MAXIMUM  # type: ignore[index]
        assert state.approve_offline(tap(3, 400), day)[0] is Reason.OVER_LIMIT  # type: ignore[index]
        assert state.approve_offline(tap(4, 300), day) is None
        assert state.approve_offline(tap(5, 10, LOST), day)[0] is Reason.CARD_BLOCKED  # type: ignore[index]
        # Tomorrow the card may spend again.
        assert state.approve_offline(tap(6, 500), day + 1) is None
        other = "00000000000000aa"
        assert state.approve_offline(tap(7, 10, other), day)[0] is Reason.OVERLOADED  # type: ignore[index]
        assert [queued.seq for queued in state.queued()] == [1, 4, 6]
        state.forwarded(4)
        assert [queued.seq for queued in state.queued()] == [1, 6]
    finally:
        state.close()


def test_a_follow_up_replaces_its_queued_frame_in_one_step(tmp_path: Path) -> None:
    state = TillState(tmp_path, MAP_BYTES)
    try:
        state.remember_welcome(welcome([]))
        assert state.approve_offline(tap(1, 300), state.today()) is None
        state.replace_queued(1, msgspec.structs.replace(tap(9, 300), reverses=1))
        state.close()
        state = TillState(tmp_path, MAP_BYTES)
        assert [(queued.seq, queued.reverses) for queued in state.queued()] == [(9, 1)]
        # Replacing what is not queued (answered already) is a bug, not an outcome.
        with pytest.raises(InvariantViolation):
            state.replace_queued(1, tap(10, 300))
        assert [queued.seq for queued in state.queued()] == [9]
    finally:
        state.close()
