"""Withdrawal at graduation (脱退): the pure rule and its booking by `decide`."""

from __future__ import annotations

import datetime

import msgspec
import pytest

from coopnode.domain import ledger, withdrawal
from coopnode.domain.messages import (
    Charge,
    ChargeSource,
    Declined,
    JournalEntry,
    MemberWallet,
    MoneyOperation,
    Pay,
    WalletStatus,
    Withdraw,
)
from coopnode.domain.money import Purse, Purses, Reason, TillKind
from coopnode.domain.rules import CoopRules
from coopnode.domain.wallet import Change, decide
from coopnode.domain.withdrawal import OnWithdrawal, WithdrawalRule

MEMBER = "202600000017"
BALANCES = Purses(meal=36_500, cafeteria=1_200, textbook=3_000, base=9_570, points=140)
# The co-op's choice in the issue: the meal plan refunded pro rata of the term left, base
# money and the other money purses refunded, points forfeited.
PRO_RATA = WithdrawalRule(
    purses={
        Purse.MEAL: OnWithdrawal.PRO_RATA,
        Purse.CAFETERIA: OnWithdrawal.REFUND,
        Purse.TEXTBOOK: OnWithdrawal.REFUND,
        Purse.BASE: OnWithdrawal.REFUND,
        Purse.POINTS: OnWithdrawal.FORFEIT,
    }
)


def day(year: int, month: int, day_of_month: int) -> int:
    return datetime.date(year, month, day_of_month).toordinal()


def noon_ms(year: int, month: int, day_of_month: int) -> int:
    tokyo = datetime.timezone(datetime.timedelta(hours=9))
    return int(datetime.datetime(year, month, day_of_month, 12, tzinfo=tokyo).timestamp() * 1000)


def test_the_default_refunds_every_money_purse_and_lets_points_lapse() -> None:
    planned = withdrawal.plan(BALANCES, WithdrawalRule(), day(2027, 3, 20), 20_000)
    assert planned.refunded == Purses(meal=36_500, cafeteria=1_200, textbook=3_000, base=9_570)
    assert planned.forfeited == Purses(points=140)
    assert planned.share_capital_yen == 20_000
    assert planned.refund_yen == 36_500 + 1_200 + 3_000 + 9_570 + 20_000


def test_pro_rata_pays_back_the_meal_plan_for_the_days_of_the_term_to_come() -> None:
    # The term runs 2026-04-01 .. 2027-03-31 (365 days); on 2027-01-30 there are 60
    # days after today: 36,500 × 60 / 365 = 6,000 yen back, 30,500 kept.
    planned = withdrawal.plan(BALANCES, PRO_RATA, day(2027, 1, 30), 0)
    assert (planned.term_days, planned.term_days_left) == (365, 60)
    assert planned.refunded.meal == 6_000
    assert planned.forfeited.meal == 30_500
    assert planned.refund_yen == 6_000 + 1_200 + 3_000 + 9_570


def test_pro_rata_rounds_down_to_the_yen_and_counts_a_leap_year_term() -> None:
    # 2027-04-01 .. 2028-03-31 holds February 29: 366 days. On 2027-04-01, 365 are left.
    planned = withdrawal.plan(Purses(meal=1_000), PRO_RATA, day(2027, 4, 1), 0)
    assert (planned.term_days, planned.term_days_left) == (366, 365)
    assert planned.refunded.meal == 1_000 * 365 // 366 == 997
    assert planned.forfeited.meal == 3


def test_the_last_day_of_the_term_pays_nothing_back_pro_rata() -> None:
    planned = withdrawal.plan(Purses(meal=5_000), PRO_RATA, day(2027, 3, 31), 0)
    assert planned.term_days_left == 0
    assert planned.refunded.meal == 0 and planned.forfeited.meal == 5_000


def test_a_term_may_start_on_another_day() -> None:
    rule = WithdrawalRule(purses=PRO_RATA.purses, term_start="09-15")
    assert withdrawal.term_of(rule, day(2027, 1, 10)) == (day(2026, 9, 15), day(2027, 9, 14))
    assert withdrawal.term_of(rule, day(2027, 9, 15)) == (day(2027, 9, 15), day(2028, 9, 14))


def test_every_purse_is_refunded_plus_forfeited_and_the_entry_balances() -> None:
    for rule in (WithdrawalRule(), PRO_RATA):
        planned = withdrawal.plan(BALANCES, rule, day(2026, 10, 1), 20_000)
        assert planned.refunded.add(planned.forfeited) == BALANCES
        postings = withdrawal.postings(MEMBER, planned)
        entry = JournalEntry(
            seq=1, at_ms=0, kind="withdraw", member_no=MEMBER, key="k", amount_yen=0,
            postings=postings,
        )  # fmt: skip
        ledger.check_entry(entry)
        assert ledger.changes_of(entry) == BALANCES.negate()
        accounts = dict(postings)
        assert accounts[withdrawal.WITHDRAWAL_PAYOUT] == planned.refund_yen
        assert accounts[withdrawal.SHARE_CAPITAL] == -20_000
        assert accounts[ledger.POINTS_ISSUED] == 140


def test_a_rule_must_name_every_purse_and_a_real_day() -> None:
    with pytest.raises(ValueError, match="points"):
        WithdrawalRule(purses={purse: OnWithdrawal.REFUND for purse in Purse if purse != "points"})
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"term_start": "02-30"}, WithdrawalRule)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"purses": {"meal": "keep"}}, WithdrawalRule)


def test_a_share_capital_out_of_bounds_is_refused() -> None:
    with pytest.raises(ValueError, match="share capital"):
        withdrawal.plan(BALANCES, WithdrawalRule(), day(2026, 10, 1), -1)


# Through the wallet's `decide` ---------------------------------------------------------


def wallet(balances: Purses = BALANCES, status: WalletStatus = WalletStatus.ACTIVE) -> MemberWallet:
    return MemberWallet(
        member_no=MEMBER, coop="demo", meal_plan="meal-1000", balances=balances, status=status,
        meal_day=0, meal_used_yen=0, emoney_used=True, opened_at_ms=0,
    )  # fmt: skip


COOPS = {"demo": CoopRules(withdrawal=PRO_RATA)}
WHEN = noon_ms(2027, 1, 30)
REFUND = 6_000 + 1_200 + 3_000 + 9_570 + 20_000


def withdraw(refund_yen: int = REFUND, key: str = "withdraw-1") -> Withdraw:
    return Withdraw(key=key, member_no=MEMBER, share_capital_yen=20_000, refund_yen=refund_yen)


def test_decide_empties_the_purses_closes_the_wallet_and_books_a_balanced_entry() -> None:
    change = decide(withdraw(), wallet(), None, COOPS, WHEN)
    assert isinstance(change, Change)
    assert change.kind == "withdraw"
    assert change.wallet.status is WalletStatus.CLOSED
    assert change.wallet.balances == Purses()
    assert change.amount_yen == REFUND
    assert change.changes == BALANCES.negate()
    assert sum(amount for _, amount in change.postings) == 0
    ledger.check_wallet(change.wallet)


def test_a_refund_other_than_the_one_shown_is_refused() -> None:
    declined = decide(withdraw(REFUND - 1), wallet(), None, COOPS, WHEN)
    assert isinstance(declined, Declined)
    assert declined.reason is Reason.WITHDRAWAL_CHANGED
    assert f"{REFUND:,}" in declined.message


def test_an_overdraft_still_owed_is_refused() -> None:
    declined = decide(withdraw(), wallet(), None, COOPS, WHEN, owed_yen=430)
    assert isinstance(declined, Declined)
    assert declined.reason is Reason.OVERDRAFT_OWED


def test_a_suspended_member_may_withdraw() -> None:
    change = decide(withdraw(), wallet(status=WalletStatus.SUSPENDED), None, COOPS, WHEN)
    assert isinstance(change, Change)


def test_a_closed_wallet_refuses_every_money_operation() -> None:
    closed = wallet(Purses(), WalletStatus.CLOSED)
    operations: list[MoneyOperation] = [
        withdraw(20_000, key="again"),
        Pay(key="p", member_no=MEMBER, amount_yen=100, till_kind=TillKind.SHOP, store="shop"),
        Charge(
            key="c",
            member_no=MEMBER,
            purse=Purse.BASE,
            amount_yen=1_000,
            source=ChargeSource.KONBINI,
        ),
    ]
    for op in operations:
        declined = decide(op, closed, None, COOPS, WHEN)
        assert isinstance(declined, Declined)
        assert declined.reason is Reason.ACCOUNT_CLOSED


def test_a_closed_wallet_that_holds_money_is_an_invariant_violation() -> None:
    from coopnode.domain.errors import InvariantViolation

    with pytest.raises(InvariantViolation):
        ledger.check_wallet(wallet(Purses(base=1), WalletStatus.CLOSED))


def test_a_day_with_a_withdrawal_and_a_counter_charge_refund_closes_to_the_yen() -> None:
    from datetime import date

    from coopnode.domain.books import DayFold, figure_problems
    from coopnode.domain.messages import RefundCharge

    day = date(2027, 1, 30)
    fold = DayFold(day)
    current = wallet(BALANCES)
    charged = decide(
        Charge(key="c", member_no=MEMBER, purse=Purse.BASE, amount_yen=2_000,
               source=ChargeSource.COUNTER),
        current, None, COOPS, WHEN,
    )  # fmt: skip
    assert isinstance(charged, Change)
    handed_back = decide(
        RefundCharge(key="r", member_no=MEMBER, charge_key="c", amount_yen=500),
        charged.wallet, None, COOPS, WHEN, charge=charged.charge,
    )  # fmt: skip
    assert isinstance(handed_back, Change)
    refund = withdrawal.plan(handed_back.wallet.balances, PRO_RATA, day.toordinal(), 20_000)
    closed = decide(withdraw(refund.refund_yen), handed_back.wallet, None, COOPS, WHEN)
    assert isinstance(closed, Change)
    for seq, change in enumerate((charged, handed_back, closed), start=1):
        fold.add(
            JournalEntry(
                seq=seq,
                at_ms=WHEN,
                kind=change.kind,
                member_no=MEMBER,
                key=f"k{seq}",
                amount_yen=change.amount_yen,
                postings=change.postings,
            )
        )
    sums = fold.result()
    assert figure_problems(sums) == []
    assert sums.accounts[withdrawal.WITHDRAWAL_PAYOUT] == refund.refund_yen
    assert sums.accounts[withdrawal.SHARE_CAPITAL] == -20_000
