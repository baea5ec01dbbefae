"""Withdrawal at graduation (脱退): what a leaving member is paid back, purse by purse.

A member who leaves the co-op is paid back their share capital (出資金) and, for each
purse, what the co-op's configured rule says: refunded in full, refunded pro rata of the
meal plan's term still to come, or forfeited (kept by the co-op). The wallet is then
closed and refuses every further money operation.

Pure: the shard passes the wallet, the rule, the day and what the member still owes;
`plan` says what each purse becomes, and `postings` the balanced journal entry. The
clerk sees the plan before confirming it, and the confirmation carries the refund the
clerk saw: a plan that changed in between (a tap, a charge) is refused, not paid out.
"""

from __future__ import annotations

import datetime
from enum import StrEnum
from typing import Annotated

import msgspec

from coopnode.domain import ledger
from coopnode.domain.money import PURSES, Purse, Purses

# One day of the year a term starts on, "MM-DD" (a leap day never: it is not every year's).
MonthDay = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]|30|31)$",
        description="month and day, MM-DD",
    ),
]

# The journal's accounts of a withdrawal, on the counter side of the books:
# what is paid out to the leaving member (cash at the counter or a bank transfer),
WITHDRAWAL_PAYOUT = "payout:withdrawal"
# what the co-op keeps of the purses the rule forfeits (money purses; points go back to
# `points:issued`, as when a refund claws them back),
WITHDRAWAL_FORFEITED = "income:withdrawal_forfeited"
# and the member's share capital, paid back out of the co-op's capital.
SHARE_CAPITAL = "equity:share_capital"

# A share capital above this is a typing error, not a member's (the settings bound a
# share to ¥1,000,000 and a member's shares to 1,000; a co-op's real ones are far less).
SHARE_CAPITAL_MAX_YEN = 10_000_000


class OnWithdrawal(StrEnum):
    """What a purse becomes when its member withdraws."""

    REFUND = "refund"  # its balance is paid back
    # Paid back in proportion to the days of the meal plan's term still to come: the
    # days past were the member's to eat, the days to come are theirs to take back.
    PRO_RATA = "pro_rata"
    FORFEIT = "forfeit"  # kept by the co-op


def _default_purses() -> dict[Purse, OnWithdrawal]:
    # The safe default takes nothing from a member that a co-op did not choose to take:
    # every purse of money is paid back whole; points, which were never bought, lapse.
    return {
        Purse.MEAL: OnWithdrawal.REFUND,
        Purse.CAFETERIA: OnWithdrawal.REFUND,
        Purse.TEXTBOOK: OnWithdrawal.REFUND,
        Purse.BASE: OnWithdrawal.REFUND,
        Purse.POINTS: OnWithdrawal.FORFEIT,
    }


class WithdrawalRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A co-op's rule for its leaving members' purses (`[coops.<id>.withdrawal]`)."""

    purses: dict[Purse, OnWithdrawal] = msgspec.field(default_factory=_default_purses)
    # The first day of the meal plan's term, which lasts a year (the academic year from
    # April 1 in most co-ops); `pro_rata` counts the term's days from it.
    term_start: MonthDay = "04-01"

    def __post_init__(self) -> None:
        for purse in PURSES:
            if purse not in self.purses:
                raise ValueError(f"withdrawal.purses says nothing of the {purse.value!r} purse")
        month, day_of_month = (int(part) for part in self.term_start.split("-"))
        try:
            datetime.date(2001, month, day_of_month)  # A year without a leap day.
        except ValueError:
            raise ValueError(f"withdrawal.term_start {self.term_start!r} is no day") from None


class WithdrawalPlan(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What a withdrawal pays and keeps, for the clerk to read and the journal to book."""

    # Paid back, per purse (the purse's balance, or its share of it).
    refunded: Purses
    # Kept by the co-op, per purse: every purse's balance is refunded + forfeited.
    forfeited: Purses
    share_capital_yen: int
    # What the member is handed: the purses refunded and the share capital.
    refund_yen: int
    # The meal plan's term as `pro_rata` counted it: its days, and those after today.
    term_days: int
    term_days_left: int


def term_of(rule: WithdrawalRule, day: int) -> tuple[int, int]:
    """The first and last day (ordinals) of the term that `day` falls in."""
    month, day_of_month = (int(part) for part in rule.term_start.split("-"))
    date = datetime.date.fromordinal(day)
    start = datetime.date(date.year, month, day_of_month)
    if start > date:
        start = datetime.date(date.year - 1, month, day_of_month)
    end = datetime.date(start.year + 1, month, day_of_month) - datetime.timedelta(days=1)
    return start.toordinal(), end.toordinal()


def plan(
    balances: Purses, rule: WithdrawalRule, day: int, share_capital_yen: int
) -> WithdrawalPlan:
    """What each purse becomes for a member who withdraws on `day` (a co-op day ordinal).

    `pro_rata` pays back the balance times the days of the term after `day` over the
    term's days, rounded down to the yen: the co-op keeps the fraction of a yen, and the
    member has eaten (or could have) on the day they leave."""
    if share_capital_yen < 0 or share_capital_yen > SHARE_CAPITAL_MAX_YEN:
        raise ValueError(f"a share capital of {share_capital_yen} yen is out of bounds")
    first, last = term_of(rule, day)
    term_days = last - first + 1
    days_left = last - day
    refunded: dict[Purse, int] = {}
    forfeited: dict[Purse, int] = {}
    for purse, balance in balances.items():
        match rule.purses[purse]:
            case OnWithdrawal.REFUND:
                back = balance
            case OnWithdrawal.PRO_RATA:
                back = balance * days_left // term_days
            case OnWithdrawal.FORFEIT:
                back = 0
        refunded[purse] = back
        forfeited[purse] = balance - back
    paid_back = Purses.of(refunded)
    return WithdrawalPlan(
        refunded=paid_back,
        forfeited=Purses.of(forfeited),
        share_capital_yen=share_capital_yen,
        refund_yen=paid_back.total() + share_capital_yen,
        term_days=term_days,
        term_days_left=days_left,
    )


def postings(member_no: str, withdrawal: WithdrawalPlan) -> list[ledger.Posting]:
    """The balanced journal entry of a withdrawal: every purse emptied, what is paid back
    to the payout account, what the co-op keeps to its income (points to the points
    issued), and the share capital out of the co-op's capital."""
    emptied = withdrawal.refunded.add(withdrawal.forfeited)
    entry = ledger.member_postings(member_no, emptied.negate())
    kept = withdrawal.forfeited
    paid_out = withdrawal.refund_yen
    if paid_out:
        entry.append((WITHDRAWAL_PAYOUT, paid_out))
    if kept.total() - kept.points:
        entry.append((WITHDRAWAL_FORFEITED, kept.total() - kept.points))
    if kept.points:
        entry.append((ledger.POINTS_ISSUED, kept.points))
    if withdrawal.share_capital_yen:
        entry.append((SHARE_CAPITAL, -withdrawal.share_capital_yen))
    return entry
