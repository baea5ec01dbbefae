"""The front's copy of the registry (`TillHub`) over a real registry store, called in
process: a till retired by whichever path has its live connection closed, and a member's
suspension follows the wallet's status into the registry and the deny list."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest
from nacl.signing import SigningKey

from coopnode.actors.registry.actor import RegistryActor
from coopnode.actors.registry.messages import AddTill, BindCard, RetireTill
from coopnode.actors.registry.store import RegistryStore
from coopnode.actors.wallet.client import WalletClient
from coopnode.domain.messages import Declined, Operation, Result, WalletStatus, WalletView
from coopnode.domain.money import Purses, Reason, TillKind
from coopnode.domain.till_frames import CloseCode, DenyUpdate, node_frame_decoder
from coopnode.http.tills.hub import DenyListNotUpdated, ReplayWindow, Seen, TillHub
from coopnode.metrics import Metrics
from coopnode.settings import TillSettings

MEMBER, CARD = "202655000018", "5500000000000018"


class _Ref:
    def __init__(self, value: Any) -> None:
        self._value = value

    def future(self) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future.set_result(self._value)
        return future


class _Method:
    def __init__(self, call: Callable[..., Any]) -> None:
        self._call = call

    def remote(self, *args: Any) -> Any:
        value = self._call(*args)
        if inspect.iscoroutine(value):
            # An async method of the actor runs as a task on the caller's loop; the hub
            # awaits it as it awaits a Ray call's future.
            return _TaskRef(asyncio.ensure_future(value))
        return _Ref(value)


class _TaskRef:
    def __init__(self, task: asyncio.Future[Any]) -> None:
        self._task = task

    def future(self) -> asyncio.Future[Any]:
        return self._task


class InProcessRegistry:
    """The registry actor's methods over a store, as a Ray handle is called."""

    def __init__(self, store: RegistryStore, change_log_max: int = 64) -> None:
        self.store = store
        self._actor = object.__new__(RegistryActor)  # Its __init__ opens a store of its own.
        self._actor._open(store, change_log_max)

    def __getattr__(self, method: str) -> _Method:
        return _Method(getattr(self._actor, method))


class Connection:
    """A connected till as the hub sees it; records what the hub did to it."""

    def __init__(self, till_id: str) -> None:
        self.till_id = till_id
        self.pushed: list[DenyUpdate] = []
        self.closed: list[tuple[int, str]] = []

    def push(self, frame: bytes) -> None:
        update = node_frame_decoder.decode(frame)
        assert isinstance(update, DenyUpdate)
        self.pushed.append(update)

    def close_soon(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))


class Wallet:
    """Answers `GetWallet` with the status it is set to, or a decline."""

    def __init__(self) -> None:
        self.status = WalletStatus.ACTIVE
        self.declines = False

    async def submit(self, op: Operation) -> Result:
        if self.declines:
            return Declined(reason=Reason.UNAVAILABLE, message="the shard did not answer")
        return WalletView(
            member_no=op.member_no,
            coop="demo",
            status=self.status,
            meal_plan="none",
            meal_cap_yen=0,
            meal_remaining_today_yen=0,
            balances=Purses(),
            emoney_used=False,
        )


@pytest.fixture
def store(tmp_path: Path) -> RegistryStore:
    registry = RegistryStore(tmp_path / "registry", map_size_bytes=16 << 20, fsync=False)
    registry.apply(BindCard(idm=CARD, member_no=MEMBER))
    return registry


@pytest.fixture
async def hub(store: RegistryStore) -> AsyncIterator[TillHub]:
    # No refresh of its own during a test: the tests call `refresh` when they mean it.
    settings = msgspec.structs.replace(TillSettings(), registry_refresh_s=3_600.0)
    till_hub = TillHub(InProcessRegistry(store), settings, Metrics())
    await till_hub.start(ready_timeout_s=30.0)
    try:
        yield till_hub
    finally:
        await till_hub.stop()
        store.close()


async def connected_till(hub: TillHub) -> Connection:
    public_key = bytes(SigningKey.generate().verify_key)
    change = await hub.apply(AddTill(store="shop-55", kind=TillKind.SHOP, public_key=public_key))
    connection = Connection(change.tills[-1].till_id)
    hub.attach(connection)
    return connection


async def test_retired_through_this_front_the_till_is_cut_off(hub: TillHub) -> None:
    till = await connected_till(hub)
    await hub.apply(RetireTill(till_id=till.till_id))
    assert till.closed == [(CloseCode.RETIRED, "the till is retired")]
    assert hub.till_retired(till.till_id)


async def test_retired_while_this_fronts_copy_was_behind_the_till_is_cut_off(
    hub: TillHub, store: RegistryStore
) -> None:
    till = await connected_till(hub)
    # Another front adds a till: this front's copy is one version behind, so its own
    # change below is followed by a reload of the whole registry.
    store.apply(AddTill(store="shop-56", kind=TillKind.SHOP, public_key=bytes(32)))
    await hub.apply(RetireTill(till_id=till.till_id))
    assert till.closed == [(CloseCode.RETIRED, "the till is retired")]


async def test_retired_by_another_front_the_till_is_cut_off_at_the_refresh(
    hub: TillHub, store: RegistryStore
) -> None:
    till = await connected_till(hub)
    store.apply(RetireTill(till_id=till.till_id))
    assert till.closed == []
    await hub.refresh()
    assert till.closed == [(CloseCode.RETIRED, "the till is retired")]
    assert hub.till_retired(till.till_id)


async def test_a_members_suspension_follows_the_wallet(hub: TillHub) -> None:
    till = await connected_till(hub)
    wallet = Wallet()
    client = cast(WalletClient, wallet)
    wallet.status = WalletStatus.SUSPENDED
    await hub.sync_suspended(MEMBER, client)
    assert MEMBER in hub.suspended and CARD in hub.deny
    assert till.pushed[-1].blocked == [CARD]
    # Resumed elsewhere (the counter, through the identity actor): the wallet says so.
    wallet.status = WalletStatus.ACTIVE
    await hub.sync_suspended(MEMBER, client)
    assert MEMBER not in hub.suspended and CARD not in hub.deny
    assert till.pushed[-1].unblocked == [CARD]
    # A wallet that does not answer: the caller hears of it, and nothing changed.
    wallet.declines = True
    with pytest.raises(DenyListNotUpdated):
        await hub.sync_suspended(MEMBER, client)
    assert MEMBER not in hub.suspended and len(till.pushed) == 2


async def test_the_highest_sequence_seen_from_a_till_outlives_the_front(
    hub: TillHub, store: RegistryStore
) -> None:
    """A till restored from a backup is told how far the node has seen it count."""
    window = ReplayWindow(4)
    hub.windows["till-0007"] = window
    for seq in (5, 9, 6):
        window.put(seq, Seen(b"d" * 16, asyncio.get_running_loop().create_future()))
    assert hub.seq_seen("till-0007") == 9 and hub.seq_seen("till-0008") == 0
    await hub.note_sequences()
    store.note_sequences({"till-0007": 3})  # A lower number never lowers it.
    assert store.sequences() == {"till-0007": 9}
    settings = msgspec.structs.replace(TillSettings(), registry_refresh_s=3_600.0)
    next_front = TillHub(InProcessRegistry(store), settings, Metrics())
    await next_front.start(ready_timeout_s=30.0)
    try:
        assert next_front.seq_seen("till-0007") == 9
    finally:
        await next_front.stop()
