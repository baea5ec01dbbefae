"""Reconciliation: what the card acquirer captured and the convenience stores collected,
against what the journal credited through its clearing accounts, day by day.

Pure. Two lists come in: the journal's credits (entries posting to `clearing:card` or
`clearing:konbini`, keyed `charge:<charge id>`) and the payments store's charges (those
whose money came in: captured or paid, credited since, or paid back). They are matched by
charge id. A charge belongs to the day its credit was booked; one the journal never
credited belongs to the day the payments store last moved it.

What a mismatch is:

    not_credited     the money came in (captured, paid) and the journal holds no credit
    no_payment       the journal credited a charge the payments store has no money for
    amount_differs   both sides know the charge, for different amounts
    refunded_but_credited
                     a convenience-store payment was paid back and yet credited

A paid-back convenience-store payment the journal never credited is no mismatch: the
money came in and went out again, and no purse saw it.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

import msgspec

from coopnode.domain.books import day_of_ms
from coopnode.domain.days import COOP_TIMEZONE

CHARGE_KEY_PREFIX = "charge:"


class Problem(StrEnum):
    NOT_CREDITED = "not_credited"
    NO_PAYMENT = "no_payment"
    AMOUNT_DIFFERS = "amount_differs"
    REFUNDED_BUT_CREDITED = "refunded_but_credited"


class _Record(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class ClearingCredit(_Record, frozen=True):
    """A journal entry that credited a purse through a clearing account."""

    charge_id: str  # the entry's key without `charge:` ("" when keyed otherwise)
    key: str
    source: str  # card, konbini
    member_no: str
    amount_yen: int
    at_ms: int
    shard_index: int
    seq: int


class ChargeSide(_Record, frozen=True):
    """A charge as the payments store keeps it (the domain's copy of what it needs)."""

    charge_id: str
    method: str  # card, konbini
    member_no: str
    amount_yen: int
    status: str  # captured, paid, credited, refunded
    updated_at_ms: int


class Mismatch(_Record, frozen=True):
    charge_id: str
    method: str
    member_no: str
    problem: Problem
    # What each side says: the journal's credit (0 and seq 0 when it has none) and the
    # payments store's amount and status ("" when it has no such charge).
    journal_yen: int
    journal_seq: int
    payments_yen: int
    payments_status: str


class MethodTotals(_Record, frozen=True):
    method: str
    journal_yen: int
    payments_yen: int
    matched: int


class DayReconciliation(_Record, frozen=True):
    day: str
    totals: list[MethodTotals]
    mismatches: list[Mismatch]


METHODS = ("card", "konbini")
# The statuses in which the payments store holds money for a charge.
RECEIVED = frozenset({"captured", "paid", "credited"})
REFUNDED = "refunded"


def reconcile(
    day: date,
    credits: list[ClearingCredit],
    charges: list[ChargeSide],
    timezone: str = COOP_TIMEZONE,
) -> DayReconciliation:
    """Match `day`'s credits against the charges. `credits` may reach back a day before
    `day` and `charges` hold every charge either side names: what falls on another day
    is left to that day."""
    by_id = {charge.charge_id: charge for charge in charges}
    credited_ids = {credit.charge_id for credit in credits if credit.charge_id}
    journal = {method: 0 for method in METHODS}
    payments = {method: 0 for method in METHODS}
    matched = {method: 0 for method in METHODS}
    mismatches: list[Mismatch] = []
    for credit in credits:
        if day_of_ms(credit.at_ms, timezone) != day:
            continue
        journal[credit.source] = journal.get(credit.source, 0) + credit.amount_yen
        charge = by_id.get(credit.charge_id)
        problem = _credit_problem(credit, charge)
        if charge is not None and charge.status in RECEIVED:
            payments[charge.method] = payments.get(charge.method, 0) + charge.amount_yen
        if problem is None:
            matched[credit.source] = matched.get(credit.source, 0) + 1
        else:
            mismatches.append(_mismatch(problem, credit, charge, credit.source))
    for charge in charges:
        if charge.charge_id in credited_ids or day_of_ms(charge.updated_at_ms, timezone) != day:
            continue
        if charge.status in RECEIVED:
            payments[charge.method] = payments.get(charge.method, 0) + charge.amount_yen
            mismatches.append(_mismatch(Problem.NOT_CREDITED, None, charge, charge.method))
    totals = [
        MethodTotals(
            method=method,
            journal_yen=journal[method],
            payments_yen=payments[method],
            matched=matched[method],
        )
        for method in METHODS
    ]
    mismatches.sort(key=lambda each: (each.method, each.charge_id))
    return DayReconciliation(day=day.isoformat(), totals=totals, mismatches=mismatches)


def _credit_problem(credit: ClearingCredit, charge: ChargeSide | None) -> Problem | None:
    if charge is None:
        return Problem.NO_PAYMENT
    if charge.status == REFUNDED:
        return Problem.REFUNDED_BUT_CREDITED
    if charge.status not in RECEIVED:
        return Problem.NO_PAYMENT
    if charge.amount_yen != credit.amount_yen or charge.method != credit.source:
        return Problem.AMOUNT_DIFFERS
    return None


def _mismatch(
    problem: Problem, credit: ClearingCredit | None, charge: ChargeSide | None, method: str
) -> Mismatch:
    return Mismatch(
        charge_id=credit.charge_id if credit is not None else charge.charge_id if charge else "",
        method=method,
        member_no=credit.member_no if credit is not None else charge.member_no if charge else "",
        problem=problem,
        journal_yen=credit.amount_yen if credit is not None else 0,
        journal_seq=credit.seq if credit is not None else 0,
        payments_yen=charge.amount_yen if charge is not None else 0,
        payments_status=charge.status if charge is not None else "",
    )


def credit_of(
    key: str, member_no: str, postings: list[tuple[str, int]], at_ms: int, shard: int, seq: int
) -> ClearingCredit | None:
    """The clearing credit a journal entry makes, if it posts to card or konbini clearing."""
    for account, amount in postings:
        if account in ("clearing:card", "clearing:konbini"):
            return ClearingCredit(
                charge_id=key[len(CHARGE_KEY_PREFIX) :]
                if key.startswith(CHARGE_KEY_PREFIX)
                else "",
                key=key,
                source=account.split(":", 1)[1],
                member_no=member_no,
                amount_yen=-amount,
                at_ms=at_ms,
                shard_index=shard,
                seq=seq,
            )
    return None
