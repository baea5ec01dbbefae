"""Changes pushed by the registry actor to every front's copy: the actor's change log and
its waiting `changes_since` call, over a real registry store, called in process (the
two-front test over a real Ray cluster is tests/fronts/test_fronts.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from nacl.signing import SigningKey

from coopnode.actors.registry.messages import (
    AddTill,
    BindCard,
    CardStatus,
    RegistryChanges,
    ReportLost,
    RetireTill,
)
from coopnode.actors.registry.store import RegistryStore
from coopnode.domain.money import TillKind
from coopnode.domain.till_frames import CloseCode
from coopnode.http.tills.hub import ReplayWindow, Seen, TillHub
from coopnode.metrics import Metrics
from coopnode.settings import TillSettings
from tests.http.test_till_hub import Connection, InProcessRegistry

MEMBER, CARD = "202655000026", "5500000000000026"
# Generous patience for something that happens at once: never the bound being tested.
PATIENCE_S = 30.0
# No repair reload during these tests: whatever arrives, arrives by push.
SETTINGS = msgspec.structs.replace(TillSettings(), registry_refresh_s=3_600.0)
_changes = msgspec.msgpack.Decoder(RegistryChanges)


@pytest.fixture
def store(tmp_path: Path) -> RegistryStore:
    registry = RegistryStore(tmp_path / "registry", map_size_bytes=16 << 20, fsync=False)
    registry.apply(BindCard(idm=CARD, member_no=MEMBER))
    return registry


async def _until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@pytest.fixture
async def fronts(store: RegistryStore) -> AsyncIterator[tuple[TillHub, TillHub]]:
    """Two fronts' copies over one registry actor."""
    registry = InProcessRegistry(store, change_log_max=4)
    front_a = TillHub(registry, SETTINGS, Metrics())
    front_b = TillHub(registry, SETTINGS, Metrics())
    await front_a.start(ready_timeout_s=30.0)
    await front_b.start(ready_timeout_s=30.0)
    try:
        yield front_a, front_b
    finally:
        await front_a.stop()
        await front_b.stop()
        store.close()


async def test_a_card_lost_through_one_front_is_pushed_to_the_other(
    fronts: tuple[TillHub, TillHub],
) -> None:
    front_a, front_b = fronts
    public_key = bytes(SigningKey.generate().verify_key)
    added = await front_a.apply(AddTill(store="shop-1", kind=TillKind.SHOP, public_key=public_key))
    till_id = added.tills[0].till_id
    await _until(lambda: till_id in front_b.tills, "the till at front B")
    till_on_b = Connection(till_id)
    front_b.attach(till_on_b)
    await front_a.apply(ReportLost(idm=CARD))
    await _until(lambda: till_on_b.pushed, "the deny-list push at front B")
    assert till_on_b.pushed[0].blocked == [CARD]
    assert front_b.cards[CARD].status is CardStatus.LOST and CARD in front_b.deny
    assert front_b.version == front_a.version


async def test_a_till_retired_through_one_front_is_cut_off_at_the_other(
    fronts: tuple[TillHub, TillHub],
) -> None:
    front_a, front_b = fronts
    public_key = bytes(SigningKey.generate().verify_key)
    added = await front_a.apply(AddTill(store="shop-1", kind=TillKind.SHOP, public_key=public_key))
    till_id = added.tills[0].till_id
    await _until(lambda: till_id in front_b.tills, "the till at front B")
    till_on_b = Connection(till_id)
    front_b.attach(till_on_b)
    await front_a.apply(RetireTill(till_id=till_id))
    await _until(lambda: till_on_b.closed, "the till's connection closed at front B")
    assert till_on_b.closed == [(CloseCode.RETIRED, "the till is retired")]


async def test_a_waiting_call_is_answered_by_the_next_change(store: RegistryStore) -> None:
    registry = InProcessRegistry(store)
    version = store.version()
    waiting = registry.changes_since.remote(version, PATIENCE_S).future()
    for _ in range(10):
        await asyncio.sleep(0)
    assert not waiting.done(), "answered with nothing changed"
    await registry.apply.remote(msgspec.msgpack.encode(ReportLost(idm=CARD))).future()
    answer = _changes.decode(await asyncio.wait_for(waiting, PATIENCE_S))
    assert not answer.reload and [change.version for change in answer.changes] == [version + 1]
    assert answer.changes[0].cards[0].status is CardStatus.LOST


async def test_a_waiting_call_with_nothing_changed_is_answered_empty(
    store: RegistryStore,
) -> None:
    registry = InProcessRegistry(store)
    raw = await registry.changes_since.remote(store.version(), 0.01).future()
    assert _changes.decode(raw) == RegistryChanges(version=store.version())


async def test_a_front_behind_the_log_or_ahead_of_the_registry_reloads(
    store: RegistryStore,
) -> None:
    registry = InProcessRegistry(store, change_log_max=2)
    start = store.version()
    # Before any change went through the actor (a restarted actor), the log is empty.
    raw = await registry.changes_since.remote(start - 1, 1.0).future()
    assert _changes.decode(raw).reload
    for number in range(3):
        public_key = bytes(SigningKey.generate().verify_key)
        op = AddTill(store=f"shop-{number}", kind=TillKind.SHOP, public_key=public_key)
        await registry.apply.remote(msgspec.msgpack.encode(op)).future()
    behind = _changes.decode(await registry.changes_since.remote(start, 1.0).future())
    assert behind.reload and behind.version == start + 3
    within = _changes.decode(await registry.changes_since.remote(start + 1, 1.0).future())
    assert [change.version for change in within.changes] == [start + 2, start + 3]
    ahead = _changes.decode(await registry.changes_since.remote(start + 9, 1.0).future())
    assert ahead.reload


async def test_a_front_told_to_reload_takes_the_whole_snapshot(store: RegistryStore) -> None:
    registry = InProcessRegistry(store, change_log_max=1)
    front = TillHub(registry, SETTINGS, Metrics())
    await front.start(ready_timeout_s=30.0)
    try:
        # Changes written past the actor (as by a restored registry) are not in its log.
        store.apply(ReportLost(idm=CARD))
        await front.take_changes(RegistryChanges(version=store.version(), reload=True))
        assert front.cards[CARD].status is CardStatus.LOST
        assert front.version == store.version()
    finally:
        await front.stop()
        store.close()


async def test_a_till_moving_between_fronts_is_told_what_the_other_saw(
    fronts: tuple[TillHub, TillHub],
) -> None:
    """Each front saves the numbers it saw; the front a till moves to reads them afresh."""
    front_a, front_b = fronts
    window = ReplayWindow(8)
    front_a.windows["till-0042"] = window
    window.put(17, Seen(b"d" * 16, asyncio.get_running_loop().create_future()))
    assert await front_b.welcome_seq("till-0042") == 0
    await front_a.note_sequences()
    assert await front_b.welcome_seq("till-0042") == 17


class FailingWatch(InProcessRegistry):
    """A registry actor whose first waiting calls fail, as while Ray restarts it."""

    def __init__(self, store: RegistryStore, failures: int) -> None:
        super().__init__(store)
        self.failures = failures

    def __getattr__(self, method: str) -> Any:
        if method == "changes_since" and self.failures > 0:
            self.failures -= 1
            raise ConnectionError("the registry actor is restarting")
        return super().__getattr__(method)


async def test_the_watch_outlives_failed_calls_and_pushes_what_came_after(
    store: RegistryStore,
) -> None:
    registry = FailingWatch(store, failures=3)
    front = TillHub(registry, SETTINGS, Metrics())
    await front.start(ready_timeout_s=30.0)
    try:
        await _until(lambda: registry.failures == 0, "the failed calls")
        await registry.apply.remote(msgspec.msgpack.encode(ReportLost(idm=CARD))).future()
        await _until(lambda: CARD in front.deny, "the push after the failures")
    finally:
        await front.stop()
        store.close()
