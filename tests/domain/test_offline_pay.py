"""Offline taps: booked whatever the balance, the rest owed as an overdraft; the limits a
till applies on its own."""

from __future__ import annotations

import msgspec

from coopnode.domain import ledger
from coopnode.domain.messages import (
    Declined,
    OfflinePay,
    Pay,
    Refund,
    SettleOverdraft,
    VoidPayment,
    WalletStatus,
)
from coopnode.domain.money import Purses, Reason, TillKind
from coopnode.domain.offline import NO_LIMITS, offline_refusal
from coopnode.domain.till_frames import OfflineLimits
from coopnode.domain.wallet import Change, decide
from tests.domain.test_wallet_rules import COOPS, MEMBER, NOON, wallet

LIMITS = OfflineLimits(tap_max_yen=1_000, card_day_max_yen=3_000, queue_max_taps=10)


def offline(
    amount: int, kind: TillKind = TillKind.SHOP, key: str = "tap:till-0001:1"
) -> OfflinePay:
    return OfflinePay(
        key=key, member_no=MEMBER, amount_yen=amount, till_kind=kind, store="shop-1",
        till_id="till-0001", tapped_at_ms=NOON - 60_000,
    )  # fmt: skip


def booked(outcome: Change | Declined) -> Change:
    assert isinstance(outcome, Change), outcome
    return outcome


def test_an_offline_tap_the_balance_covers_is_an_ordinary_payment() -> None:
    change = booked(decide(offline(500), wallet(base=2_000), None, COOPS, NOON))
    assert change.kind == "offline_pay"
    assert change.overdraft_yen == 0
    assert change.wallet.balances.base == 1_500
    assert sum(amount for _, amount in change.postings) == 0


def test_an_uncovered_offline_tap_takes_what_there_is_and_owes_the_rest() -> None:
    change = booked(decide(offline(800), wallet(base=300, points=100), None, COOPS, NOON))
    assert change.overdraft_yen == 400
    assert change.wallet.balances.base == 0
    # The 100 points went into the sale; the 300 yen of base money earned 3 new ones.
    assert change.wallet.balances.points == 3
    postings = dict(change.postings)
    assert postings[ledger.OVERDRAFT_RECEIVABLE] == -400
    assert postings[ledger.sales_account("shop-1")] == 800
    assert postings[ledger.POINTS_ISSUED] == -3
    assert sum(postings.values()) == 0
    assert change.payment is not None and change.payment.overdraft_yen == 400


def test_a_suspended_account_or_a_large_amount_cannot_refuse_an_offline_tap() -> None:
    suspended = msgspec.structs.replace(wallet(base=100), status=WalletStatus.SUSPENDED)
    change = booked(decide(offline(900), suspended, None, COOPS, NOON))
    assert change.overdraft_yen == 800
    online = Pay(key="p", member_no=MEMBER, amount_yen=900, till_kind=TillKind.SHOP, store="s")
    refused = decide(online, suspended, None, COOPS, NOON)
    assert isinstance(refused, Declined) and refused.reason is Reason.SUSPENDED


def test_a_void_gives_back_what_was_paid_and_cancels_the_overdraft() -> None:
    start = wallet(base=300)
    paid = booked(decide(offline(800), start, None, COOPS, NOON))
    void = VoidPayment(key="v1", member_no=MEMBER, payment_key="tap:till-0001:1")
    back = booked(decide(void, paid.wallet, paid.payment, COOPS, NOON))
    assert back.wallet.balances == start.balances
    postings = dict(back.postings)
    assert postings[ledger.OVERDRAFT_RECEIVABLE] == 500
    assert postings[ledger.sales_account("shop-1")] == -800
    # Sale and void together leave every account where it was.
    totals: dict[str, int] = {}
    for account, amount in [*paid.postings, *back.postings]:
        totals[account] = totals.get(account, 0) + amount
    assert all(amount == 0 for amount in totals.values())


def test_only_the_covered_part_of_an_overdrawn_tap_can_be_refunded() -> None:
    paid = booked(decide(offline(800), wallet(base=300), None, COOPS, NOON))
    refund = Refund(key="r1", member_no=MEMBER, payment_key="tap:till-0001:1", amount_yen=301)
    refused = decide(refund, paid.wallet, paid.payment, COOPS, NOON)
    assert isinstance(refused, Declined) and refused.reason is Reason.REFUND_EXCEEDS_PAYMENT
    ok = msgspec.structs.replace(refund, amount_yen=300)
    assert booked(decide(ok, paid.wallet, paid.payment, COOPS, NOON)).changes == Purses(base=300)


def test_settling_takes_the_overdraft_from_the_purses_once_and_a_void_gives_it_back() -> None:
    start = wallet(base=300)
    paid = booked(decide(offline(800), start, None, COOPS, NOON))
    settle = SettleOverdraft(key="s1", member_no=MEMBER, payment_key="tap:till-0001:1")
    short = decide(settle, paid.wallet, paid.payment, COOPS, NOON)
    assert isinstance(short, Declined) and short.reason is Reason.INSUFFICIENT_FUNDS
    charged = msgspec.structs.replace(
        paid.wallet, balances=paid.wallet.balances.add(Purses(base=1_000))
    )
    settled = booked(decide(settle, charged, paid.payment, COOPS, NOON))
    # 500 owed: the shop spends the 3 points the tap earned, then base money.
    assert settled.changes == Purses(points=-3, base=-497)
    postings = dict(settled.postings)
    assert postings[ledger.OVERDRAFT_RECEIVABLE] == 500
    assert sum(postings.values()) == 0
    assert settled.payment is not None and settled.payment.overdraft_yen == 0
    assert settled.payment.paid.total() == 800
    again = decide(settle, settled.wallet, settled.payment, COOPS, NOON)
    assert isinstance(again, Declined) and again.reason is Reason.NOTHING_OWED
    # A void now gives back all 800 yen the purses paid, and cancels no receivable.
    void = VoidPayment(key="v1", member_no=MEMBER, payment_key="tap:till-0001:1")
    back = booked(decide(void, settled.wallet, settled.payment, COOPS, NOON))
    assert back.changes.total() == 800
    assert ledger.OVERDRAFT_RECEIVABLE not in dict(back.postings)
    totals: dict[str, int] = {}
    for account, amount in [*paid.postings, *settled.postings, *back.postings]:
        totals[account] = totals.get(account, 0) + amount
    assert totals[ledger.OVERDRAFT_RECEIVABLE] == 0


def test_offline_limits() -> None:
    assert offline_refusal(LIMITS, False, 0, 0, 1_000) is None
    cases = [
        ((True, 0, 0, 100), Reason.CARD_BLOCKED),
        ((False, 0, 0, 1_001), Reason.ABOVE_MAXIMUM),
        ((False, 2_500, 0, 600), Reason.OVER_LIMIT),
        ((False, 0, 10, 100), Reason.OVERLOADED),
    ]
    for (denied, spent, queued, amount), reason in cases:
        refusal = offline_refusal(LIMITS, denied, spent, queued, amount)
        assert refusal is not None and refusal[0] is reason
    # A till that never reached the node approves nothing on its own.
    assert offline_refusal(NO_LIMITS, False, 0, 0, 1) is not None
