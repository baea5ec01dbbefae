"""What the registry keeps of tills' offline sales, on real LMDB files: the limits sent
to each till, and the offline taps the node refused, for staff."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from coopnode.actors.registry.messages import RefusedOfflineTap
from coopnode.actors.registry.store import RegistryStore
from coopnode.domain.errors import InvariantViolation
from coopnode.domain.offline import LimitsSent
from coopnode.domain.till_frames import OfflineLimits

MAP_BYTES = 16 << 20
NOW_MS = 1_770_000_000_000
LIMITS = OfflineLimits(tap_max_yen=800, card_day_max_yen=3_000, queue_max_taps=100)
LOWER = msgspec.structs.replace(LIMITS, tap_max_yen=500)


def refused(till_id: str, seq: int, digest: str = "00" * 16) -> RefusedOfflineTap:
    return RefusedOfflineTap(
        till_id=till_id, seq=seq, frame_digest_hex=digest, idm="0123456789abcdef",
        member_no="", amount_yen=800, tapped_at_ms=NOW_MS - 1, limits=LIMITS,
        reason="unknown_card", message="the card is not registered", refused_at_ms=NOW_MS,
    )  # fmt: skip


def open_store(path: Path) -> RegistryStore:
    return RegistryStore(path, map_size_bytes=MAP_BYTES, clock_ms=lambda: NOW_MS)


def test_the_limits_sent_to_a_till_are_kept_across_a_restart(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    first = LimitsSent(sent_at_ms=NOW_MS - 10, limits=LIMITS)
    assert store.note_limits("till-0001", first, 300_000) == [first]
    # The same limits again (the till reconnects): no new entry.
    again = LimitsSent(sent_at_ms=NOW_MS - 5, limits=LIMITS)
    assert store.note_limits("till-0001", again, 300_000) == [first]
    lower = LimitsSent(sent_at_ms=NOW_MS, limits=LOWER)
    assert store.note_limits("till-0001", lower, 300_000) == [first, lower]
    store.close()
    store = open_store(tmp_path)
    try:
        assert store.limits_history() == {"till-0001": [first, lower]}
        assert store.limits_of("till-0001") == [first, lower]
        assert store.limits_of("till-0002") == []
    finally:
        store.close()


def test_refused_taps_are_kept_once_per_frame_and_bounded_per_till(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        assert store.note_refused(refused("till-0001", 7), per_till_max=2) == "new"
        assert store.note_refused(refused("till-0001", 7), per_till_max=2) == "seen"
        # Another frame under the same number (a till restored from a backup) is its own.
        assert store.note_refused(refused("till-0001", 7, "11" * 16), per_till_max=2) == "new"
        assert store.note_refused(refused("till-0001", 9), per_till_max=2) == "full"
        # Another till's bound is its own; till-00011 sorts after till-0001 but is apart.
        assert store.note_refused(refused("till-00011", 1), per_till_max=2) == "new"
        assert store.note_refused(refused("till-0002", 3), per_till_max=2) == "new"
        listed = [(r.till_id, r.seq) for r in store.refused_taps("", 10)]
        assert listed == [("till-0001", 7), ("till-0001", 7), ("till-00011", 1), ("till-0002", 3)]
        assert [r.seq for r in store.refused_taps("till-0001", 10)] == [7, 7]
        assert [r.till_id for r in store.refused_taps("", 2)] == ["till-0001", "till-0001"]
        with pytest.raises(InvariantViolation):
            store.note_refused(msgspec.structs.replace(refused("till-0001", 8), amount_yen=0), 2)
    finally:
        store.close()
