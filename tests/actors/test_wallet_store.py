"""The shard's LMDB store on real files: durability, checks on open, history, bounds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import lmdb
import msgspec
import pytest

from coopnode.actors.kernel.files import LockTimeout
from coopnode.actors.wallet.store import ShardMeta, WalletStore
from coopnode.domain.errors import InvariantViolation
from coopnode.domain.messages import (
    Booked,
    Declined,
    GetHistory,
    GetWallet,
    HistoryPage,
    MemberWallet,
    OpenWallet,
    Pay,
    Recall,
    Resume,
    StatusChanged,
    Suspend,
    VoidPayment,
    WalletStatus,
    WalletView,
)
from coopnode.domain.money import Purse, Purses, Reason, TillKind
from coopnode.domain.rules import CoopRules

COOPS = {"demo": CoopRules()}
MEMBER = "202600000017"
TOKYO = ZoneInfo("Asia/Tokyo")


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def tokyo_ms(year: int, month: int, day: int, hour: int = 12) -> int:
    return int(datetime(year, month, day, hour, tzinfo=TOKYO).timestamp() * 1000)


def open_store(path: Path, clock: Clock | None = None, **kwargs: object) -> WalletStore:
    options: dict[str, object] = {
        "shard_index": 0,
        "shard_count": 1,
        "coops": COOPS,
        "map_size_bytes": 64 << 20,
        "lock_wait_s": 0.5,
    }
    options.update(kwargs)
    return WalletStore(path, clock_ms=clock, **options)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[WalletStore]:
    shard = open_store(tmp_path / "shard")
    shard.apply_batch([enrol()])
    yield shard
    shard.close()


def enrol(member_no: str = MEMBER, base: int = 40_000) -> OpenWallet:
    return OpenWallet(
        key="enrol",
        member_no=member_no,
        coop="demo",
        meal_plan="meal-1000",
        deposits={Purse.MEAL: 96_000, Purse.BASE: base},
    )


def shop(amount: int, key: str, member_no: str = MEMBER) -> Pay:
    return Pay(key=key, member_no=member_no, amount_yen=amount, till_kind=TillKind.SHOP, store="s1")


def test_committed_operations_survive_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "shard"
    first = open_store(path)
    first.apply_batch([enrol(), shop(500, "a"), shop(700, "b")])
    first.close()
    again = open_store(path)
    [view] = again.apply_batch([GetWallet(member_no=MEMBER)])
    assert isinstance(view, WalletView)
    # The first payment earns 5 points; the second spends them first, then earns 6.
    assert view.balances == Purses(meal=96_000, base=40_000 - 500 - 695, points=6)
    [replay] = again.apply_batch([shop(500, "a")])
    assert isinstance(replay, Booked) and replay.seq == 2
    assert again.audit().balanced
    again.close()


def test_same_key_different_content_is_refused_and_changes_nothing(store: WalletStore) -> None:
    [first] = store.apply_batch([shop(500, "k")])
    [conflict] = store.apply_batch([shop(501, "k")])
    assert isinstance(first, Booked)
    assert isinstance(conflict, Declined) and conflict.reason is Reason.IDEMPOTENCY_CONFLICT
    [view] = store.apply_batch([GetWallet(member_no=MEMBER)])
    assert isinstance(view, WalletView) and view.balances.base == 39_500


def test_duplicates_inside_one_batch_are_applied_once(store: WalletStore) -> None:
    results = store.apply_batch([shop(500, "k")] * 5)
    assert len({result.seq for result in results if isinstance(result, Booked)}) == 1
    assert store.audit().entries == 2


def test_unknown_member_leaves_no_trace(store: WalletStore) -> None:
    entries_before = store.audit().entries
    [result] = store.apply_batch([shop(100, "x", member_no="209900000000")])
    assert isinstance(result, Declined) and result.reason is Reason.UNKNOWN_MEMBER
    with store.env.begin() as txn:
        operations = store.env.open_db(b"operations", txn=txn)
        assert txn.stat(operations)["entries"] == 1  # Only the enrolment's record.
    assert store.audit().entries == entries_before


def test_a_tampered_balance_stops_the_shard_on_open(tmp_path: Path) -> None:
    path = tmp_path / "shard"
    shard = open_store(path)
    shard.apply_batch([enrol()])
    shard.close()
    env = lmdb.open(str(path), max_dbs=8, map_size=64 << 20)
    members = env.open_db(b"members")
    with env.begin(write=True) as txn:
        wallet = msgspec.msgpack.decode(
            txn.get(MEMBER.encode(), db=members) or b"", type=MemberWallet
        )
        richer = msgspec.structs.replace(wallet, balances=wallet.balances.add(Purses(base=1)))
        txn.put(MEMBER.encode(), msgspec.msgpack.encode(richer), db=members)
    env.close()
    with pytest.raises(InvariantViolation, match="do not balance"):
        open_store(path)


def test_a_negative_purse_on_disk_stops_the_shard_on_open(tmp_path: Path) -> None:
    path = tmp_path / "shard"
    shard = open_store(path)
    shard.apply_batch([enrol()])
    shard.close()
    env = lmdb.open(str(path), max_dbs=8, map_size=64 << 20)
    members = env.open_db(b"members")
    with env.begin(write=True) as txn:
        wallet = msgspec.msgpack.decode(
            txn.get(MEMBER.encode(), db=members) or b"", type=MemberWallet
        )
        broken = msgspec.structs.replace(wallet, balances=Purses(meal=136_001, base=-1))
        txn.put(MEMBER.encode(), msgspec.msgpack.encode(broken), db=members)
    env.close()
    with pytest.raises(InvariantViolation, match="negative"):
        open_store(path)


def test_a_void_rewrites_the_payment_record_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "shard"
    shard = open_store(path)
    shard.apply_batch([enrol(), shop(500, "sale")])
    [voided] = shard.apply_batch([VoidPayment(key="void-1", member_no=MEMBER, payment_key="sale")])
    assert isinstance(voided, Booked)
    shard.close()
    again = open_store(path)
    [twice] = again.apply_batch([VoidPayment(key="void-2", member_no=MEMBER, payment_key="sale")])
    assert isinstance(twice, Declined) and twice.reason is Reason.ALREADY_VOIDED
    [replay] = again.apply_batch([VoidPayment(key="void-1", member_no=MEMBER, payment_key="sale")])
    assert replay == voided
    [view] = again.apply_batch([GetWallet(member_no=MEMBER)])
    assert isinstance(view, WalletView) and view.balances == Purses(meal=96_000, base=40_000)
    assert again.audit().balanced
    again.close()


def test_a_declined_enrolment_keeps_its_key_and_the_shard_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "shard"
    shard = open_store(path)
    [refused] = shard.apply_batch([enrol(member_no="202600000025", base=100_001)])
    assert isinstance(refused, Declined) and refused.reason is Reason.OVER_LIMIT
    shard.apply_batch([enrol(), shop(500, "a")])
    shard.close()
    again = open_store(path)
    [replay] = again.apply_batch([enrol(member_no="202600000025", base=100_001)])
    assert replay == refused
    report = again.audit()
    assert report.balanced and report.members == 1
    again.close()


def test_files_of_an_older_layout_are_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "shard"
    open_store(path).close()
    env = lmdb.open(str(path), max_dbs=8, map_size=64 << 20)
    meta_db = env.open_db(b"meta")
    with env.begin(write=True) as txn:
        meta = msgspec.msgpack.decode(txn.get(b"shard", db=meta_db) or b"", type=ShardMeta)
        old = msgspec.structs.replace(meta, layout=1)
        txn.put(b"shard", msgspec.msgpack.encode(old), db=meta_db)
    env.close()
    with pytest.raises(InvariantViolation, match=r"layout 1.*older version; move them aside"):
        open_store(path)


def test_shard_count_cannot_change_under_existing_files(tmp_path: Path) -> None:
    path = tmp_path / "shard"
    open_store(path).close()
    with pytest.raises(InvariantViolation, match="shard_count cannot change"):
        open_store(path, shard_count=2)


def test_a_second_owner_is_refused_while_the_first_holds_the_files(store: WalletStore) -> None:
    with pytest.raises(LockTimeout):
        open_store(Path(store.env.path()))


def test_a_full_map_answers_storage_full_and_changes_nothing(tmp_path: Path) -> None:
    shard = open_store(tmp_path / "shard", map_size_bytes=256 * 1024)
    shard.apply_batch([enrol()])
    before = shard.audit()
    big_batch = [enrol(member_no=f"2026{index:08d}") for index in range(5_000)]
    results = shard.apply_batch(big_batch)
    assert {result.reason for result in results if isinstance(result, Declined)} == {
        Reason.STORAGE_FULL
    }
    assert len(results) == len(big_batch)
    assert shard.audit() == before
    shard.close()


def test_history_pages_newest_first_and_filters_by_month(tmp_path: Path) -> None:
    clock = Clock(tokyo_ms(2026, 10, 31))
    shard = open_store(tmp_path / "shard", clock=clock)
    shard.apply_batch([enrol(), shop(100, "oct")])
    clock.now_ms = tokyo_ms(2026, 11, 1, 0) + 60_000  # 00:01 on 1 November in Tokyo.
    shard.apply_batch([shop(200 + index, f"nov{index}") for index in range(5)])
    [page] = shard.apply_batch([GetHistory(member_no=MEMBER, limit=2)])
    assert isinstance(page, HistoryPage)
    assert [line.key for line in page.lines] == ["nov4", "nov3"]
    keys: list[str] = []
    before = 0
    while True:
        [page] = shard.apply_batch([GetHistory(member_no=MEMBER, limit=2, before_seq=before)])
        assert isinstance(page, HistoryPage)
        keys += [line.key for line in page.lines]
        if not page.next_before_seq:
            break
        before = page.next_before_seq
    assert keys == ["nov4", "nov3", "nov2", "nov1", "nov0", "oct", "enrol"]
    [october] = shard.apply_batch([GetHistory(member_no=MEMBER, month="2026-10")])
    assert isinstance(october, HistoryPage)
    assert [line.key for line in october.lines] == ["oct", "enrol"]
    assert october.lines[0].changes.base == -100
    [empty] = shard.apply_batch([GetHistory(member_no=MEMBER, month="2026-09")])
    assert isinstance(empty, HistoryPage) and empty.lines == []
    shard.close()


def test_suspend_and_resume_are_journaled_and_idempotent(store: WalletStore) -> None:
    [first, again] = store.apply_batch([Suspend(member_no=MEMBER), Suspend(member_no=MEMBER)])
    assert isinstance(first, StatusChanged) and first.status is WalletStatus.SUSPENDED
    assert isinstance(again, StatusChanged) and again.seq == 0
    [refused] = store.apply_batch([shop(100, "while-suspended")])
    assert isinstance(refused, Declined) and refused.reason is Reason.SUSPENDED
    [resumed] = store.apply_batch([Resume(member_no=MEMBER)])
    assert isinstance(resumed, StatusChanged) and resumed.status is WalletStatus.ACTIVE
    [page] = store.apply_batch([GetHistory(member_no=MEMBER)])
    assert isinstance(page, HistoryPage)
    assert [line.kind for line in page.lines[:2]] == ["active", "suspended"]
    assert store.audit().balanced


def test_a_retry_listing_deposits_in_another_order_is_the_same_operation(tmp_path: Path) -> None:
    shard = open_store(tmp_path / "shard")
    first = OpenWallet(
        key="enrol",
        member_no=MEMBER,
        coop="demo",
        deposits={Purse.MEAL: 96_000, Purse.BASE: 40_000},
    )
    reordered = msgspec.structs.replace(first, deposits={Purse.BASE: 40_000, Purse.MEAL: 96_000})
    [opened] = shard.apply_batch([first])
    [again] = shard.apply_batch([reordered])
    assert isinstance(opened, Booked) and again == opened
    shard.close()


def test_a_recall_answers_what_was_decided_under_a_key_and_decides_nothing(
    store: WalletStore,
) -> None:
    [booked] = store.apply_batch([shop(500, "tap:till-0001:7")])
    entries = store.audit().entries
    recall = Recall(member_no=MEMBER, payment=shop(500, "tap:till-0001:7"))
    other = Recall(member_no=MEMBER, payment=shop(501, "tap:till-0001:7"))
    never = Recall(member_no=MEMBER, payment=shop(500, "tap:till-0001:8"))
    elsewhere = Recall(member_no=MEMBER, payment=shop(500, "tap:till-0001:7", "202600000025"))
    [same, conflict, unknown, misrouted] = store.apply_batch([recall, other, never, elsewhere])
    assert same == booked
    assert isinstance(conflict, Declined) and conflict.reason is Reason.IDEMPOTENCY_CONFLICT
    assert isinstance(unknown, Declined) and unknown.reason is Reason.UNKNOWN_PAYMENT
    assert isinstance(misrouted, Declined) and misrouted.reason is Reason.INVALID_INPUT
    # Nothing was written: the key recalled but never decided is still free.
    assert store.audit().entries == entries
    [later] = store.apply_batch([shop(500, "tap:till-0001:8")])
    assert isinstance(later, Booked)
