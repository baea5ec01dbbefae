"""The unused-balance report (未使用残高) against a history computed by hand.

The history crosses the reference date, 2026-03-31: money paid in and spent before its
24:00 JST counts, what happens from 00:00 on April 1 does not, even a minute after; and
today's balances (after April's business) differ from the report's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import msgspec
import pytest

from coopnode.actors.wallet.messages import PurseTotalsReply
from coopnode.actors.wallet.shard import WalletShard
from coopnode.domain.books import (
    UNUSED_BALANCE_THRESHOLD_YEN,
    day_window_ms,
    latest_reference_date,
    unused_balance,
)
from coopnode.domain.messages import (
    Booked,
    Charge,
    ChargeSource,
    GetWallet,
    Move,
    OpenWallet,
    Operation,
    Pay,
    Refund,
    WalletView,
)
from coopnode.domain.money import Purse, Purses, TillKind
from coopnode.settings import NodeSettings, Settings, WalletSettings
from tests.console.books.conftest import Clock, tokyo_ms

A, B = "202600000017", "202600000025"
REFERENCE = date(2026, 3, 31)


@pytest.fixture
async def shard(tmp_path: Path, clock: Clock) -> AsyncIterator[WalletShard]:
    settings = Settings(
        node=NodeSettings(data_dir=str(tmp_path)),
        wallet=WalletSettings(shard_count=1, books_read_chunk_entries=16),
    )
    actor = WalletShard(0, msgspec.json.encode(settings), "token", clock_ms=clock)
    yield actor
    actor.close_books()
    actor._store.close()


def book(shard: WalletShard, clock: Clock, at_ms: int, *ops: Operation) -> None:
    clock.now_ms = at_ms
    for result in shard._store.apply_batch(list(ops)):
        assert isinstance(result, Booked), result


def history(shard: WalletShard, clock: Clock) -> None:
    book(
        shard,
        clock,
        tokyo_ms(2026, 3, 2, 10),
        OpenWallet(
            key="enrol",
            member_no=A,
            coop="demo",
            meal_plan="meal-1000",
            deposits={Purse.MEAL: 50_000, Purse.BASE: 10_000},
        ),
        OpenWallet(
            key="enrol", member_no=B, coop="demo", meal_plan="none", deposits={Purse.BASE: 20_000}
        ),
    )
    book(
        shard,
        clock,
        tokyo_ms(2026, 3, 10, 12),
        # A: the meal plan pays 800 of it (cap 1,000), earning no points in the cafeteria.
        Pay(
            key="p1",
            member_no=A,
            amount_yen=800,
            till_kind=TillKind.CAFETERIA,
            store="north",
            till_id="n-1",
        ),
        Charge(
            key="charge:c1",
            member_no=B,
            purse=Purse.CAFETERIA,
            amount_yen=5_000,
            source=ChargeSource.CARD,
        ),
        Move(
            key="m1", member_no=B, from_purse=Purse.BASE, to_purse=Purse.TEXTBOOK, amount_yen=7_000
        ),
    )
    book(
        shard,
        clock,
        tokyo_ms(2026, 3, 31, 23, 59),  # A minute before the reference's end.
        Pay(
            key="p2",
            member_no=B,
            amount_yen=3_000,
            till_kind=TillKind.BOOKSTORE,
            store="books",
            till_id="b-1",
        ),
    )
    # After 24:00 of March 31: April's, left out of the report.
    book(
        shard,
        clock,
        tokyo_ms(2026, 4, 1, 0, 0),
        Charge(
            key="charge:c2",
            member_no=A,
            purse=Purse.BASE,
            amount_yen=30_000,
            source=ChargeSource.KONBINI,
        ),
        Refund(key="r2", member_no=B, payment_key="p2", amount_yen=3_000),
    )
    book(
        shard,
        clock,
        tokyo_ms(2026, 4, 2, 12),
        Pay(
            key="p3",
            member_no=A,
            amount_yen=900,
            till_kind=TillKind.CAFETERIA,
            store="north",
            till_id="n-1",
        ),
    )


async def test_the_report_counts_the_journal_up_to_24_00_of_the_reference_date(
    shard: WalletShard, clock: Clock
) -> None:
    history(shard, clock)
    # By hand, at 24:00 JST on March 31:
    #   A: meal 50,000 - 800 = 49,200; base 10,000.
    #   B: base 20,000 - 7,000 = 13,000; textbook 7,000; cafeteria 5,000; the bookstore's
    #      3,000 came from the textbook purse first (the bookstore's spend order), so
    #      textbook 4,000.
    expected = Purses(meal=49_200, cafeteria=5_000, textbook=4_000, base=23_000)
    _, end_ms = day_window_ms(REFERENCE)
    raw = await shard.purse_totals(end_ms)
    reply = msgspec.msgpack.decode(raw, type=PurseTotalsReply)
    # The bookstore's 1 % on 3,000 yen: 30 points, reported apart from the prepaid purses.
    assert reply.totals == msgspec.structs.replace(expected, points=30)
    assert reply.entries == 6

    report = unused_balance(REFERENCE, end_ms, reply.totals, reply.entries)
    assert report.purses_yen == {
        "meal": 49_200,
        "cafeteria": 5_000,
        "textbook": 4_000,
        "base": 23_000,
    }
    assert report.total_yen == 81_200
    assert report.points_yen == 30
    assert not report.exceeds_threshold and report.deposit_required_yen == 0

    # Today's balances are not the report's: April moved them.
    [view_a, view_b] = shard._store.apply_batch([GetWallet(member_no=A), GetWallet(member_no=B)])
    assert isinstance(view_a, WalletView) and isinstance(view_b, WalletView)
    today = view_a.balances.add(view_b.balances)
    assert today.base == 23_000 + 30_000 and today.meal == 49_200 - 900


def test_above_the_threshold_half_is_deposited_rounded_up() -> None:
    totals = Purses(meal=6_000_000, cafeteria=2_000_000, textbook=1_000_000, base=1_000_001)
    report = unused_balance(REFERENCE, 0, totals, 4)
    assert report.total_yen == UNUSED_BALANCE_THRESHOLD_YEN + 1
    assert report.exceeds_threshold
    assert report.deposit_required_yen == 5_000_001
    at_threshold = unused_balance(REFERENCE, 0, Purses(base=UNUSED_BALANCE_THRESHOLD_YEN), 1)
    assert not at_threshold.exceeds_threshold and at_threshold.deposit_required_yen == 0


def test_the_default_reference_date_is_the_last_one_that_is_over() -> None:
    assert latest_reference_date(date(2026, 4, 1)) == date(2026, 3, 31)
    assert latest_reference_date(date(2026, 3, 31)) == date(2025, 9, 30)
    assert latest_reference_date(date(2026, 12, 7)) == date(2026, 9, 30)
    assert latest_reference_date(date(2026, 1, 5)) == date(2025, 9, 30)
