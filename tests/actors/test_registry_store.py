"""The card and till registry on real LMDB files: bind, lost, reissue, tills, suspension."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lmdb
import msgspec
import pytest

from coopnode.actors.registry.messages import (
    AddTill,
    BindCard,
    CardRecord,
    CardStatus,
    Reissue,
    ReportLost,
    RetireTill,
    SetSuspended,
)
from coopnode.actors.registry.store import RegistryStore
from coopnode.domain.errors import InvariantViolation
from coopnode.domain.money import Reason, TillKind

HANAKO = "202600000017"
TARO = "202600000025"
CARD_1 = "012e4cd1a2b3c4d5"
CARD_2 = "012e4cd1a2b3c4e6"
CARD_3 = "012e4cd1a2b3c4f7"
MAP_BYTES = 16 << 20


class Clock:
    def __init__(self) -> None:
        self.now_ms = 1_000

    def __call__(self) -> int:
        self.now_ms += 1
        return self.now_ms


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RegistryStore]:
    registry = RegistryStore(tmp_path, map_size_bytes=MAP_BYTES, fsync=False, clock_ms=Clock())
    yield registry
    registry.close()


def test_bind_then_a_second_card_for_the_member_or_a_second_member_for_the_card_is_refused(
    store: RegistryStore,
) -> None:
    change = store.apply(BindCard(idm=CARD_1, member_no=HANAKO))
    assert change.ok and change.version == 1
    assert change.cards[0].status is CardStatus.ACTIVE
    for op in (BindCard(idm=CARD_2, member_no=HANAKO), BindCard(idm=CARD_1, member_no=TARO)):
        refused = store.apply(op)
        assert not refused.ok and refused.reason is Reason.DUPLICATE
        assert refused.version == 1  # Nothing changed.
    assert store.version() == 1


def test_lost_blocks_the_card_and_reissue_reaches_the_same_member(store: RegistryStore) -> None:
    store.apply(BindCard(idm=CARD_1, member_no=HANAKO))
    lost = store.apply(ReportLost(idm=CARD_1))
    assert lost.cards[0].status is CardStatus.LOST and lost.cards[0].blocked_at_ms > 0
    assert store.apply(ReportLost(idm=CARD_1)).reason is Reason.CARD_BLOCKED
    reissued = store.apply(Reissue(member_no=HANAKO, new_idm=CARD_2))
    assert reissued.ok
    assert [(card.idm, card.status) for card in reissued.cards] == [(CARD_2, CardStatus.ACTIVE)]
    # A second reissue replaces the active card; the replaced one stays blocked.
    again = store.apply(Reissue(member_no=HANAKO, new_idm=CARD_3))
    assert [(card.idm, card.status) for card in again.cards] == [
        (CARD_2, CardStatus.REPLACED),
        (CARD_3, CardStatus.ACTIVE),
    ]
    cards = {card.idm: card for card in store.snapshot().cards}
    assert {idm: card.member_no for idm, card in cards.items()} == dict.fromkeys(
        (CARD_1, CARD_2, CARD_3), HANAKO
    )
    # An old card can never be bound again, to anyone.
    assert store.apply(BindCard(idm=CARD_1, member_no=TARO)).reason is Reason.DUPLICATE


def test_tills_are_numbered_and_retired(store: RegistryStore) -> None:
    key = bytes(range(32))
    first = store.apply(AddTill(store="cafe-1", kind=TillKind.CAFETERIA, public_key=key))
    second = store.apply(AddTill(store="shop-1", kind=TillKind.SHOP, public_key=key))
    assert [first.tills[0].till_id, second.tills[0].till_id] == ["till-0001", "till-0002"]
    retired = store.apply(RetireTill(till_id="till-0001"))
    assert retired.tills[0].retired
    assert store.apply(RetireTill(till_id="till-0099")).reason is Reason.INVALID_INPUT


def test_suspension_is_recorded_once_and_survives_a_reopen(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path, map_size_bytes=MAP_BYTES, fsync=True)
    store.apply(BindCard(idm=CARD_1, member_no=HANAKO))
    assert store.apply(SetSuspended(member_no=HANAKO, suspended=True)).suspended == [HANAKO]
    assert store.apply(SetSuspended(member_no=HANAKO, suspended=True)).suspended == []
    version = store.version()
    store.close()
    reopened = RegistryStore(tmp_path, map_size_bytes=MAP_BYTES, fsync=True)
    try:
        snapshot = reopened.snapshot()
        assert snapshot.version == version
        assert snapshot.suspended == [HANAKO]
        assert reopened.apply(SetSuspended(member_no=HANAKO, suspended=False)).resumed == [HANAKO]
    finally:
        reopened.close()


def test_a_member_with_two_active_cards_on_disk_refuses_to_open(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path, map_size_bytes=MAP_BYTES, fsync=False)
    store.apply(BindCard(idm=CARD_1, member_no=HANAKO))
    store.close()
    env = lmdb.open(str(tmp_path), max_dbs=6)
    cards = env.open_db(b"cards")
    forged = CardRecord(idm=CARD_2, member_no=HANAKO, status=CardStatus.ACTIVE, bound_at_ms=1)
    with env.begin(write=True) as txn:
        txn.put(CARD_2.encode(), msgspec.msgpack.encode(forged), db=cards)
    env.close()
    with pytest.raises(InvariantViolation, match="two active cards"):
        RegistryStore(tmp_path, map_size_bytes=MAP_BYTES, fsync=False)
