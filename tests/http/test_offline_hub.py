"""Two fronts over one real registry store: limits one front sent a till are taken by the
other when the till forwards its offline taps there, and a refusal the registry cannot
keep (the till's bound reached) is reported, for the till to keep the tap queued."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from coopnode.actors.registry.messages import RefusedOfflineTap
from coopnode.actors.registry.store import RegistryStore
from coopnode.domain.money import Reason
from coopnode.domain.till_frames import TapBody
from coopnode.http.tills.hub import RefusalsFull, TillHub
from coopnode.metrics import Metrics
from coopnode.settings import TillSettings
from tests.http.test_till_hub import InProcessRegistry

TILL = "till-0007"
SETTINGS = msgspec.structs.replace(
    TillSettings(), registry_refresh_s=3_600.0, offline_refused_per_till_max=1
)


@pytest.fixture
async def fronts(tmp_path: Path) -> AsyncIterator[tuple[TillHub, TillHub]]:
    store = RegistryStore(tmp_path / "registry", map_size_bytes=16 << 20, fsync=False)
    hubs = (
        TillHub(InProcessRegistry(store), SETTINGS, Metrics()),
        TillHub(InProcessRegistry(store), SETTINGS, Metrics()),
    )
    for hub in hubs:
        await hub.start(ready_timeout_s=30.0)
    try:
        yield hubs
    finally:
        for hub in hubs:
            await hub.stop()
        store.close()


async def test_limits_sent_by_one_front_are_taken_by_another(
    fronts: tuple[TillHub, TillHub],
) -> None:
    first, second = fronts
    now_ms = time.time_ns() // 1_000_000
    # The till connects to the first front, under a limit of 800 yen...
    first.settings = msgspec.structs.replace(SETTINGS, offline_tap_max_yen=800)
    sold_under = await first.limits_to_send(TILL, now_ms - 60_000)
    # ...sells ¥800 offline, and forwards it to the second front, whose limit is 1,000
    # and which had loaded the registry before the till's Welcome.
    tap = TapBody(
        till_id=TILL, seq=1, idm="0123456789abcdef", amount_yen=800, at_ms=now_ms - 30_000,
        offline=True, limits=sold_under,
    )  # fmt: skip
    assert TILL not in second.limits_history
    assert await second.offline_refusal(TILL, tap, now_ms) is None
    forged = msgspec.structs.replace(tap, limits=second.current_limits())
    refusal = await second.offline_refusal(TILL, forged, now_ms)
    assert refusal is not None and refusal[0] is Reason.INVALID_INPUT


async def test_a_refusal_beyond_the_till_s_bound_is_not_kept(
    fronts: tuple[TillHub, TillHub],
) -> None:
    hub, _ = fronts
    refused = RefusedOfflineTap(
        till_id=TILL, seq=1, frame_digest_hex="00" * 16, idm="0123456789abcdef", member_no="",
        amount_yen=300, tapped_at_ms=1, limits=None, reason="unknown_card", message="",
        refused_at_ms=2,
    )  # fmt: skip
    await hub.note_refused(refused)
    await hub.note_refused(refused)  # The same frame again: kept once.
    with pytest.raises(RefusalsFull):
        await hub.note_refused(msgspec.structs.replace(refused, seq=2))
    assert [kept.seq for kept in await hub.refused_taps(TILL, 10)] == [1]
