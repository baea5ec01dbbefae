"""Reconciliation: the payments store's charges against the journal's clearing credits.

A day of charges is made in both stores as the charging flow makes them, then one
mismatch of each kind is made by hand; the reconciliation lists each with what both
sides say, and lets through what crosses midnight.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from coopnode.actors.payments.messages import (
    Advance,
    BeginCard,
    ChargesMoved,
    ChargeStatus,
    IssueKonbini,
    KonbiniPaid,
)
from coopnode.actors.payments.store import PaymentsStore
from coopnode.domain.books import day_window_ms
from coopnode.domain.money import Purse
from coopnode.domain.reconciliation import (
    ChargeSide,
    ClearingCredit,
    Problem,
    credit_of,
    reconcile,
)
from tests.console.books.conftest import tokyo_ms

DAY = date(2026, 6, 1)
MEMBER = "202600000017"


def card(store: PaymentsStore, key: str, amount: int, at_ms: int, *, credit: bool) -> str:
    [record] = store.apply(
        BeginCard(
            form_key=key,
            member_no=MEMBER,
            purse=Purse.BASE,
            amount_yen=amount,
            card_brand="visa",
            card_last4="4242",
            now_ms=at_ms,
        )
    ).charges
    for status in (ChargeStatus.AUTHORIZED, ChargeStatus.CAPTURED) + (
        (ChargeStatus.CREDITED,) if credit else ()
    ):
        store.apply(Advance(charge_id=record.charge_id, status=status, now_ms=at_ms))
    return record.charge_id


def konbini(store: PaymentsStore, key: str, amount: int, at_ms: int) -> str:
    [record] = store.apply(
        IssueKonbini(
            form_key=key,
            member_no=MEMBER,
            purse=Purse.BASE,
            amount_yen=amount,
            store="seven",
            kana_name="カトウ",
            mail="k@example.jp",
            pay_by_ms=at_ms + 86_400_000,
            now_ms=at_ms - 3_600_000,
            pending_max=5,
        )
    ).charges
    store.apply(KonbiniPaid(payment_number=record.payment_number, amount_yen=amount, now_ms=at_ms))
    store.apply(Advance(charge_id=record.charge_id, status=ChargeStatus.CREDITED, now_ms=at_ms))
    return record.charge_id


def credit(charge_id: str, source: str, amount: int, at_ms: int, seq: int) -> ClearingCredit:
    found = credit_of(
        f"charge:{charge_id}",
        MEMBER,
        [(f"member:{MEMBER}:base", amount), (f"clearing:{source}", -amount)],
        at_ms,
        0,
        seq,
    )
    assert found is not None
    return found


def sides(store: PaymentsStore, day: date) -> list[ChargeSide]:
    start_ms, end_ms = day_window_ms(day)
    charges = store.apply(ChargesMoved(from_ms=start_ms, to_ms=end_ms, limit=100)).charges
    return [
        ChargeSide(
            charge_id=c.charge_id,
            method=c.method.value,
            member_no=c.member_no,
            amount_yen=c.amount_yen,
            status=c.status.value,
            updated_at_ms=c.updated_at_ms,
        )
        for c in charges
    ]


def test_a_made_mismatch_of_each_kind_is_listed_with_both_sides(tmp_path: Path) -> None:
    store = PaymentsStore(tmp_path / "payments", map_size_bytes=16 << 20, fsync=False)
    noon = tokyo_ms(2026, 6, 1, 12)
    good_card = card(store, "f1", 5_000, noon, credit=True)
    good_konbini = konbini(store, "f2", 3_000, noon)
    stuck = card(store, "f3", 2_000, noon, credit=False)  # Captured, never credited.
    wrong_amount = card(store, "f4", 4_000, noon, credit=True)
    # Credited late in the evening of the 31st, moved to credited after midnight.
    late = card(store, "f5", 1_000, tokyo_ms(2026, 6, 1, 0, 0) + 500, credit=True)
    credits = [
        credit(late, "card", 1_000, tokyo_ms(2026, 5, 31, 23, 59), 1),
        credit(good_card, "card", 5_000, noon, 2),
        credit(good_konbini, "konbini", 3_000, noon, 3),
        credit(wrong_amount, "card", 4_400, noon, 4),
        credit("nosuchcharge", "card", 7_000, noon, 5),  # Credited without any payment.
    ]
    result = reconcile(DAY, credits, sides(store, DAY))
    store.close()

    problems = {(m.charge_id, m.problem): m for m in result.mismatches}
    assert set(problems) == {
        (stuck, Problem.NOT_CREDITED),
        (wrong_amount, Problem.AMOUNT_DIFFERS),
        ("nosuchcharge", Problem.NO_PAYMENT),
    }
    differs = problems[(wrong_amount, Problem.AMOUNT_DIFFERS)]
    assert (differs.journal_yen, differs.journal_seq) == (4_400, 4)
    assert (differs.payments_yen, differs.payments_status) == (4_000, "credited")
    not_credited = problems[(stuck, Problem.NOT_CREDITED)]
    assert (not_credited.journal_yen, not_credited.payments_yen) == (0, 2_000)
    assert not_credited.payments_status == "captured"
    orphan = problems[("nosuchcharge", Problem.NO_PAYMENT)]
    assert (orphan.journal_yen, orphan.payments_yen, orphan.payments_status) == (7_000, 0, "")

    totals = {t.method: t for t in result.totals}
    assert totals["card"].journal_yen == 5_000 + 4_400 + 7_000
    assert totals["card"].payments_yen == 5_000 + 4_000 + 2_000
    assert totals["card"].matched == 1
    assert (totals["konbini"].journal_yen, totals["konbini"].payments_yen) == (3_000, 3_000)
    # The charge credited on the 31st is the 31st's: matched there, absent here.
    assert late not in {m.charge_id for m in result.mismatches}


def test_a_day_that_matches_lists_nothing() -> None:
    noon = tokyo_ms(2026, 6, 1, 12)
    charges = [
        ChargeSide(
            charge_id="c1",
            method="card",
            member_no=MEMBER,
            amount_yen=900,
            status="credited",
            updated_at_ms=noon,
        )
    ]
    result = reconcile(DAY, [credit("c1", "card", 900, noon, 1)], charges)
    assert result.mismatches == []
    assert [(t.method, t.journal_yen, t.payments_yen, t.matched) for t in result.totals] == [
        ("card", 900, 900, 1),
        ("konbini", 0, 0, 0),
    ]
