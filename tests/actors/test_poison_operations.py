"""One operation never fails another: a poison operation among good ones fails alone.

On the real shard store (LMDB files) and on a real shard actor served over a loopback
socket (the shard's own code, without Ray), with the front's real batcher in front of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from coopnode.actors.wallet import store as wallet_store
from coopnode.actors.wallet.client import ShardBatcher
from coopnode.actors.wallet.link import ShardLink
from coopnode.actors.wallet.shard import WalletShard
from coopnode.actors.wallet.store import WalletStore
from coopnode.domain.errors import StoreCorrupt
from coopnode.domain.messages import (
    Booked,
    Declined,
    GetHistory,
    GetWallet,
    OpenWallet,
    Operation,
    Pay,
    Result,
    WalletView,
)
from coopnode.domain.money import Purse, Purses, Reason, TillKind
from coopnode.domain.rules import CoopRules
from coopnode.domain.sharding import shard_of
from coopnode.domain.wallet import Change, decide
from coopnode.metrics import Metrics
from coopnode.settings import NodeSettings, Settings, WalletSettings

SHARDS = 2  # Shard 0 of 2, so that an operation can also arrive at the wrong shard.
MEMBERS = [n for n in (f"20263300{i:04d}" for i in range(40)) if shard_of(n, SHARDS) == 0][:10]
ELSEWHERE = next(n for n in (f"20263301{i:04d}" for i in range(40)) if shard_of(n, SHARDS) == 1)
OPENING_YEN = 50_000
PAYMENT_YEN = 100


def enrol(member_no: str) -> OpenWallet:
    return OpenWallet(
        key="enrol", member_no=member_no, coop="demo", deposits={Purse.BASE: OPENING_YEN}
    )


def payments() -> list[Operation]:
    """100 good payments, ten for each member."""
    return [
        Pay(
            key=f"pay-{index:03d}",
            member_no=MEMBERS[index % len(MEMBERS)],
            amount_yen=PAYMENT_YEN,
            till_kind=TillKind.SHOP,
            store="shop-1",
        )
        for index in range(100)
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[WalletStore]:
    shard = WalletStore(
        tmp_path / "shard",
        shard_index=0,
        shard_count=SHARDS,
        coops={"demo": CoopRules()},
        map_size_bytes=64 << 20,
        lock_wait_s=0.5,
    )
    shard.apply_batch([enrol(member_no) for member_no in MEMBERS])
    yield shard
    shard.close()


def broken_rule(monkeypatch: pytest.MonkeyPatch) -> Operation:
    """A payment whose result breaks a rule (a defect in `decide`, injected for its key)."""

    def defective(op: Any, *args: Any, **kwargs: Any) -> Any:
        change = decide(op, *args, **kwargs)
        if op.key != "poison" or not isinstance(change, Change):
            return change
        negative = msgspec.structs.replace(change.wallet, balances=Purses(base=-1))
        return msgspec.structs.replace(change, wallet=negative)

    monkeypatch.setattr(wallet_store, "decide", defective)
    return Pay(key="poison", member_no=MEMBERS[3], amount_yen=1, till_kind=TillKind.SHOP, store="s")


POISONS: dict[str, Callable[[pytest.MonkeyPatch], Operation]] = {
    # Past the 8 bytes of a journal key: what an unbounded `before_seq` did.
    "a cursor past any key": lambda _: GetHistory(member_no=MEMBERS[0], before_seq=2**70),
    "a member of another shard": lambda _: Pay(
        key="lost", member_no=ELSEWHERE, amount_yen=1, till_kind=TillKind.SHOP, store="s"
    ),
    "a result that breaks a rule": broken_rule,
}


def booked_once(store: WalletStore, results: list[Result]) -> None:
    assert all(isinstance(result, Booked) for result in results)
    assert len({result.seq for result in results if isinstance(result, Booked)}) == 100
    views = store.apply_batch([GetWallet(member_no=member_no) for member_no in MEMBERS])
    for view in views:
        assert isinstance(view, WalletView)
        mine = [r for r in results if isinstance(r, Booked) and r.member_no == view.member_no]
        assert len(mine) == 10 and {r.amount_yen for r in mine} == {PAYMENT_YEN}
        moved = sum(r.changes.total() + r.points_earned for r in mine)
        assert view.balances.total() == OPENING_YEN + moved
    report = store.audit()
    assert report.balanced and report.entries == len(MEMBERS) + 100


@pytest.mark.parametrize("poison_of", POISONS.values(), ids=POISONS.keys())
def test_a_poison_operation_among_100_fails_alone_and_the_100_are_booked_once(
    store: WalletStore,
    monkeypatch: pytest.MonkeyPatch,
    poison_of: Callable[[pytest.MonkeyPatch], Operation],
) -> None:
    good = payments()
    batch = [*good[:50], poison_of(monkeypatch), *good[50:]]
    results = store.apply_batch(batch)
    refused = results.pop(50)
    assert isinstance(refused, Declined) and refused.reason is Reason.OPERATION_FAILED
    booked_once(store, results)
    # The front sends a batch again when it hears nothing: the same answers, nothing twice.
    again = store.apply_batch(batch)
    assert again[50] == refused and again[:50] + again[51:] == results
    booked_once(store, results)


def test_a_broken_record_still_stops_the_shard_and_commits_nothing(store: WalletStore) -> None:
    members = store.env.open_db(b"members")  # Outside the write: LMDB has one writer.
    with store.env.begin(write=True) as txn:
        txn.put(MEMBERS[5].encode(), b"\xc1 not a wallet", db=members)
    next_seq = store.next_seq
    with pytest.raises(StoreCorrupt, match="does not decode"):
        store.apply_batch(payments())
    assert store.next_seq == next_seq
    [view] = store.apply_batch([GetWallet(member_no=MEMBERS[0])])
    assert isinstance(view, WalletView) and view.balances.base == OPENING_YEN


# The shard actor behind its socket, with the front's batcher ----------------------------

TOKEN = "a-link-token-for-tests"


@pytest.fixture
async def shard(tmp_path: Path) -> AsyncIterator[WalletShard]:
    settings = Settings(
        node=NodeSettings(data_dir=str(tmp_path)), wallet=WalletSettings(shard_count=1)
    )
    actor = WalletShard(0, msgspec.json.encode(settings), TOKEN)
    await actor.data_endpoint()
    yield actor
    if actor._link_server is not None:
        actor._link_server.close()
    actor._store.close()


def batcher_for(actor: WalletShard, metrics: Metrics) -> ShardBatcher:
    return ShardBatcher(0, None, WalletSettings(), metrics, TOKEN, endpoint=actor.data_endpoint)


async def test_an_operation_the_front_cannot_encode_fails_alone(shard: WalletShard) -> None:
    metrics = Metrics()
    batcher = batcher_for(shard, metrics)
    opened = await asyncio.gather(*(batcher.submit(enrol(member_no)) for member_no in MEMBERS))
    assert all(isinstance(result, Booked) for result in opened)
    good = payments()
    # Built without its type's checks, as code (not a client) could: 2**70 has no encoding.
    poison = GetHistory(member_no=MEMBERS[0], before_seq=2**70)
    futures = [batcher.submit(op) for op in good[:50]]
    refused_future = batcher.submit(poison)
    futures += [batcher.submit(op) for op in good[50:]]
    results = await asyncio.gather(*futures)
    refused = await refused_future
    assert isinstance(refused, Declined) and refused.reason is Reason.OPERATION_FAILED
    assert all(isinstance(result, Booked) for result in results)
    assert len({result.seq for result in results if isinstance(result, Booked)}) == 100
    await batcher.close()


async def test_an_operation_the_shard_cannot_decode_fails_alone(shard: WalletShard) -> None:
    link = ShardLink(shard.data_endpoint, TOKEN, 1 << 20)
    encode = msgspec.msgpack.encode
    good = [msgspec.Raw(encode(op)) for op in [enrol(MEMBERS[0]), *payments()[:100:10]]]
    negative = {**msgspec.to_builtins(payments()[0]), "key": "negative", "amount_yen": -5}
    unknown = msgspec.Raw(encode({"type": "print_money", "member_no": MEMBERS[0]}))
    reply = await link.call([*good[:5], msgspec.Raw(encode(negative)), unknown, *good[5:]])
    refused = reply.results[5:7]
    assert all(isinstance(r, Declined) and r.reason is Reason.OPERATION_FAILED for r in refused)
    served = reply.results[:5] + reply.results[7:]
    assert all(isinstance(result, Booked) for result in served)
    assert reply.commit_ops == len(good)
    await link.close()
