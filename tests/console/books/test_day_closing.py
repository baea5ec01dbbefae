"""A day's settlement from a shard's journal, its closing, and a later correction.

The shard actor runs in this process on its own files with a clock the test moves (no
Ray): a day's taps, voids, refunds, charges, an offline tap and its settling are booked
on 2026-06-01 (JST), the day is closed on the 2nd, and a refund made on the 3rd of a
payment of the 1st shows on the 3rd, linked to that payment; the closed day's figures
are compared with the journal's postings added up here, to the yen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import msgspec
import pytest

from coopnode.actors.wallet.messages import ClosingReply, ShardDay
from coopnode.actors.wallet.shard import WalletShard
from coopnode.domain.books import (
    Line,
    accounts_from_figures,
    day_window_ms,
    figure_problems,
    meal_use_yen,
)
from coopnode.domain.messages import (
    Booked,
    Charge,
    ChargeSource,
    JournalEntry,
    Move,
    OfflinePay,
    OpenWallet,
    Operation,
    Pay,
    Refund,
    SettleOverdraft,
    VoidPayment,
)
from coopnode.domain.money import Purse, TillKind
from coopnode.settings import NodeSettings, Settings, WalletSettings
from tests.console.books.conftest import Clock, tokyo_ms

MEMBERS = ("202600000017", "202600000025", "202600000033")
DAY = date(2026, 6, 1)


@pytest.fixture
async def shard(tmp_path: Path, clock: Clock) -> AsyncIterator[WalletShard]:
    # Chunks of 16 entries (the least allowed), so that the reads cross chunks.
    settings = Settings(
        node=NodeSettings(data_dir=str(tmp_path)),
        wallet=WalletSettings(shard_count=1, books_read_chunk_entries=16),
    )
    actor = WalletShard(0, msgspec.json.encode(settings), "token", clock_ms=clock)
    yield actor
    actor.close_books()
    actor._store.close()


def book(shard: WalletShard, clock: Clock, at_ms: int, *ops: Operation) -> list[object]:
    clock.now_ms = at_ms
    results: list[object] = list(shard._store.apply_batch(list(ops)))
    for result in results:
        assert isinstance(result, Booked), result
    return results


def journal(shard: WalletShard) -> list[JournalEntry]:
    with shard._store.env.begin() as txn:
        return [
            msgspec.msgpack.decode(raw, type=JournalEntry)
            for _, raw in txn.cursor(db=shard._store.journal_db)
        ]


def a_day_of_business(shard: WalletShard, clock: Clock) -> None:
    """Enrolment the day before; then the first of June: sales at two stores and tills, a
    void, a refund, charges by card, konbini and counter, a move, an offline tap that the
    balance does not cover, and its settling."""
    book(
        shard,
        clock,
        tokyo_ms(2026, 5, 31, 10),
        *(
            OpenWallet(
                key="enrol",
                member_no=member,
                coop="demo",
                meal_plan="meal-1000",
                deposits={Purse.MEAL: 96_000, Purse.BASE: 3_000},
            )
            for member in MEMBERS
        ),
    )
    first, second, third = MEMBERS
    book(
        shard,
        clock,
        tokyo_ms(2026, 6, 1, 0, 5),  # Five past midnight: the 1st.
        Pay(
            key="t1",
            member_no=first,
            amount_yen=600,
            till_kind=TillKind.CAFETERIA,
            store="north",
            till_id="n-1",
        ),
    )
    book(
        shard,
        clock,
        tokyo_ms(2026, 6, 1, 12),
        Pay(
            key="t2",
            member_no=second,
            amount_yen=1_300,
            till_kind=TillKind.CAFETERIA,
            store="north",
            till_id="n-2",
        ),
        Pay(
            key="t3",
            member_no=third,
            amount_yen=480,
            till_kind=TillKind.SHOP,
            store="shop",
            till_id="s-1",
        ),
        Pay(
            key="t4",
            member_no=first,
            amount_yen=2_000,
            till_kind=TillKind.SHOP,
            store="shop",
            till_id="s-1",
        ),
    )
    book(
        shard,
        clock,
        tokyo_ms(2026, 6, 1, 13),
        VoidPayment(key="v4", member_no=first, payment_key="t4"),
        Refund(key="r3", member_no=third, payment_key="t3", amount_yen=200),
        Charge(
            key="charge:c1",
            member_no=second,
            purse=Purse.BASE,
            amount_yen=5_000,
            source=ChargeSource.CARD,
            reference="c1",
        ),
        Charge(
            key="charge:k1",
            member_no=third,
            purse=Purse.CAFETERIA,
            amount_yen=3_000,
            source=ChargeSource.KONBINI,
            reference="k1",
        ),
        Charge(
            key="counter-1",
            member_no=first,
            purse=Purse.BASE,
            amount_yen=1_000,
            source=ChargeSource.COUNTER,
        ),
    )
    book(
        shard,
        clock,
        tokyo_ms(2026, 6, 1, 17),
        Move(
            key="m1",
            member_no=second,
            from_purse=Purse.BASE,
            to_purse=Purse.TEXTBOOK,
            amount_yen=2_000,
        ),
        OfflinePay(
            key="off-1",
            member_no=second,
            amount_yen=9_000,
            till_kind=TillKind.SHOP,
            store="shop",
            till_id="s-1",
            tapped_at_ms=tokyo_ms(2026, 6, 1, 16),
        ),
    )
    book(
        shard,
        clock,
        tokyo_ms(2026, 6, 1, 23, 59),
        Charge(
            key="counter-2",
            member_no=second,
            purse=Purse.BASE,
            amount_yen=9_000,
            source=ChargeSource.COUNTER,
        ),
        SettleOverdraft(key="settle-1", member_no=second, payment_key="off-1"),
    )
    # After midnight: the 2nd's, not the 1st's.
    book(
        shard,
        clock,
        tokyo_ms(2026, 6, 2, 0, 1),
        Pay(
            key="t5",
            member_no=third,
            amount_yen=400,
            till_kind=TillKind.CAFETERIA,
            store="north",
            till_id="n-1",
        ),
    )


def journal_accounts(entries: list[JournalEntry], day: date) -> dict[str, int]:
    """The day's net change of every account, added up from the raw postings."""
    start_ms, end_ms = day_window_ms(day)
    sums: dict[str, int] = {}
    for entry in entries:
        if start_ms <= entry.at_ms < end_ms:
            for account, amount in entry.postings:
                name = (
                    f"purses:{account.rsplit(':', 1)[1]}"
                    if account.startswith("member:")
                    else account
                )
                sums[name] = sums.get(name, 0) + amount
    return {name: yen for name, yen in sorted(sums.items()) if yen}


async def test_a_closed_day_equals_the_journal_to_the_yen(shard: WalletShard, clock: Clock) -> None:
    a_day_of_business(shard, clock)
    clock.now_ms = tokyo_ms(2026, 6, 2, 9)
    refused = msgspec.msgpack.decode(
        await shard.close_day("2026-06-02", "staff:kato"), type=ClosingReply
    )
    assert refused.refused == "day_not_over" and refused.closing is None

    reply = msgspec.msgpack.decode(
        await shard.close_day(DAY.isoformat(), "staff:kato"), type=ClosingReply
    )
    assert reply.created and reply.closing is not None
    closed = reply.closing.sums
    assert reply.closing.closed_by == "staff:kato"
    assert reply.closing.closed_at_ms == tokyo_ms(2026, 6, 2, 9)

    # The figures explain the journal's postings of the day, account by account.
    expected = journal_accounts(journal(shard), DAY)
    assert closed.accounts == expected
    assert accounts_from_figures(closed.figures) == expected
    assert figure_problems(closed) == []
    assert expected["sales:north"] == 600 + 1_300
    assert expected["sales:shop"] == 480 + 2_000 - 2_000 - 200 + 9_000
    assert expected["clearing:card"] == -5_000 and expected["clearing:konbini"] == -3_000
    assert closed.entries == 13

    figures = {(f.store, f.till_id, f.line, f.purse, f.source): f.yen for f in closed.figures}
    assert (
        figures[("shop", "s-1", Line.VOID, "base", "")]
        + figures.get(("shop", "s-1", Line.VOID, "cafeteria", ""), 0)
        == 2_000
    )
    assert figures[("", "", Line.CHARGE, "base", "card")] == 5_000
    assert figures[("", "", Line.CHARGE, "cafeteria", "konbini")] == 3_000
    assert figures[("shop", "s-1", Line.SALE, "", "overdraft")] > 0
    assert meal_use_yen(closed) == 600 + 1_000  # The second member's cap was 1,000.
    # Sales by hour: the five past midnight tap is hour 0, net of the void at 13.
    assert closed.hourly_sales["north"][0] == 600
    assert closed.hourly_sales["shop"][13] == -2_200

    # Closed once: a second closing keeps the first.
    again = msgspec.msgpack.decode(
        await shard.close_day(DAY.isoformat(), "staff:sato"), type=ClosingReply
    )
    assert not again.created and again.closing == reply.closing


async def test_a_later_correction_shows_on_its_own_day_linked_to_the_payment(
    shard: WalletShard, clock: Clock
) -> None:
    a_day_of_business(shard, clock)
    clock.now_ms = tokyo_ms(2026, 6, 2, 9)
    closing = msgspec.msgpack.decode(
        await shard.close_day(DAY.isoformat(), "staff:kato"), type=ClosingReply
    )
    [refund] = book(
        shard,
        clock,
        tokyo_ms(2026, 6, 3, 11),
        Refund(key="r2", member_no=MEMBERS[1], payment_key="t2", amount_yen=300),
    )

    first = msgspec.msgpack.decode(await shard.books_day(DAY.isoformat()), type=ShardDay)
    assert closing.closing is not None
    assert first.closing == closing.closing and first.sums == closing.closing.sums

    third = msgspec.msgpack.decode(await shard.books_day("2026-06-03"), type=ShardDay)
    assert third.closing is None
    [correction] = third.sums.corrections
    original_seq = next(e.seq for e in journal(shard) if e.key == "t2")
    assert (correction.key, correction.payment_key) == ("r2", "t2")
    assert (correction.payment_day, correction.payment_seq) == ("2026-06-01", original_seq)
    assert correction.amount_yen == 300 and correction.seq == refund.seq  # type: ignore[attr-defined]
    assert third.sums.accounts["sales:north"] == -300
    # The 1st's own void and refund are its business, not corrections.
    assert first.sums.corrections == []
