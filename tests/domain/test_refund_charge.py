"""A charge paid in cash at the counter, handed back at the counter: within what it
credited and what its purse still holds; other charges go back the way they came."""

from __future__ import annotations

from coopnode.domain import ledger
from coopnode.domain.messages import (
    Charge,
    ChargeSource,
    Declined,
    MemberWallet,
    RefundCharge,
    WalletStatus,
)
from coopnode.domain.money import Purse, Purses, Reason
from coopnode.domain.rules import CoopRules
from coopnode.domain.wallet import Change, decide

MEMBER = "202600000017"
COOPS = {"demo": CoopRules()}


def wallet(base: int = 0) -> MemberWallet:
    return MemberWallet(
        member_no=MEMBER, coop="demo", meal_plan="none", balances=Purses(base=base),
        status=WalletStatus.ACTIVE, meal_day=0, meal_used_yen=0, emoney_used=True,
        opened_at_ms=0,
    )  # fmt: skip


def charged(source: ChargeSource) -> Change:
    op = Charge(key="c-1", member_no=MEMBER, purse=Purse.BASE, amount_yen=5_000, source=source)
    change = decide(op, wallet(), None, COOPS, 0)
    assert isinstance(change, Change) and change.charge is not None
    return change


def refund(amount_yen: int) -> RefundCharge:
    return RefundCharge(key="r-1", member_no=MEMBER, charge_key="c-1", amount_yen=amount_yen)


def test_a_counter_charge_is_handed_back_from_its_purse_and_the_books_balance() -> None:
    first = charged(ChargeSource.COUNTER)
    change = decide(refund(2_000), first.wallet, None, COOPS, 0, charge=first.charge)
    assert isinstance(change, Change)
    assert change.wallet.balances.base == 3_000
    assert change.charge is not None and change.charge.refunded_yen == 2_000
    assert dict(change.postings) == {
        ledger.member_account(MEMBER, Purse.BASE): -2_000,
        ledger.CLEARING[ChargeSource.COUNTER]: 2_000,
    }
    # What is left of the charge, and no more, may be handed back later.
    again = decide(refund(3_001), change.wallet, None, COOPS, 0, charge=change.charge)
    assert isinstance(again, Declined) and again.reason is Reason.REFUND_EXCEEDS_PAYMENT


def test_what_was_spent_stays_spent() -> None:
    first = charged(ChargeSource.COUNTER)
    spent = wallet(base=1_500)
    declined = decide(refund(2_000), spent, None, COOPS, 0, charge=first.charge)
    assert isinstance(declined, Declined) and declined.reason is Reason.REFUND_EXCEEDS_PAYMENT
    assert "1,500" in declined.message


def test_a_card_or_store_charge_is_not_handed_back_at_the_counter() -> None:
    for source in (ChargeSource.CARD, ChargeSource.KONBINI):
        first = charged(source)
        declined = decide(refund(1_000), first.wallet, None, COOPS, 0, charge=first.charge)
        assert isinstance(declined, Declined) and declined.reason is Reason.PURSE_NOT_ALLOWED


def test_an_unknown_charge_is_refused() -> None:
    declined = decide(refund(1_000), wallet(5_000), None, COOPS, 0, charge=None)
    assert isinstance(declined, Declined) and declined.reason is Reason.UNKNOWN_PAYMENT
