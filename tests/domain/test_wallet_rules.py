"""The money rules, one at a time, on the pure `decide` function."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest

from coopnode.domain import ledger
from coopnode.domain.messages import (
    Charge,
    ChargeSource,
    Declined,
    JournalEntry,
    MemberWallet,
    Move,
    OpenWallet,
    Pay,
    PaymentRecord,
    Refund,
    VoidPayment,
    WalletStatus,
)
from coopnode.domain.money import Purse, Purses, Reason, TillKind
from coopnode.domain.rules import CoopRules
from coopnode.domain.wallet import Change, decide, meal_remaining_today_yen

TOKYO = ZoneInfo("Asia/Tokyo")
RULES = CoopRules()
COOPS = {"demo": RULES}
MEMBER = "202600000017"


def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=TOKYO).timestamp() * 1000)


NOON = at(2026, 11, 25, 12)


def wallet(**balances: int) -> MemberWallet:
    return MemberWallet(
        member_no=MEMBER,
        coop="demo",
        meal_plan="meal-1000",
        balances=Purses(**balances),
        status=WalletStatus.ACTIVE,
        meal_day=RULES.day_of(NOON),
        meal_used_yen=0,
        emoney_used=False,
        opened_at_ms=NOON,
    )


def pay(amount: int, kind: TillKind = TillKind.CAFETERIA, key: str = "p1") -> Pay:
    return Pay(key=key, member_no=MEMBER, amount_yen=amount, till_kind=kind, store="cafe-1")


def changed(result: Change | Declined) -> Change:
    if isinstance(result, Declined):
        pytest.fail(f"declined: {result.reason} {result.message}")
    ledger.check_entry(
        JournalEntry(
            seq=1,
            at_ms=0,
            kind="t",
            member_no=MEMBER,
            key="k",
            amount_yen=0,
            postings=result.postings,
        )
    )
    ledger.check_wallet(result.wallet)
    return result


def declined(result: Change | Declined) -> Reason:
    if not isinstance(result, Declined):
        pytest.fail(f"expected a decline, got {result}")
    return result.reason


def test_cafeteria_spends_meal_up_to_the_daily_cap_then_cafeteria_then_points_then_base() -> None:
    start = wallet(meal=5_000, cafeteria=200, points=50, base=10_000)
    result = changed(decide(pay(1_500), start, None, COOPS, NOON))
    assert result.changes == Purses(meal=-1_000, cafeteria=-200, points=-50, base=-250)
    assert result.wallet.meal_used_yen == 1_000
    assert meal_remaining_today_yen(result.wallet, RULES, result.wallet.meal_day) == 0


def test_shop_spends_points_then_base_and_earns_points_on_money_only() -> None:
    start = wallet(meal=5_000, points=30, base=10_000)
    result = changed(decide(pay(1_030, TillKind.SHOP), start, None, COOPS, NOON))
    assert result.changes == Purses(points=-30, base=-1_000)
    assert result.points_earned == 10  # 1 % of the 1,000 yen paid with base money.
    assert result.wallet.balances == Purses(meal=5_000, points=10, base=9_000)


def test_bookstore_spends_textbook_money_first() -> None:
    start = wallet(textbook=3_000, base=10_000)
    result = changed(decide(pay(4_000, TillKind.BOOKSTORE), start, None, COOPS, NOON))
    assert result.changes == Purses(textbook=-3_000, base=-1_000)


def test_meal_cap_resets_at_midnight_in_tokyo_not_utc() -> None:
    start = wallet(meal=5_000)
    first = changed(decide(pay(1_000), start, None, COOPS, at(2026, 11, 25, 23, 30)))
    # 00:10 in Tokyo is still the 25th in UTC (15:10): the cap must reset anyway.
    after_midnight = at(2026, 11, 26, 0, 10)
    second = changed(decide(pay(1_000, key="p2"), first.wallet, None, COOPS, after_midnight))
    assert second.changes.meal == -1_000
    refused = decide(pay(1, key="p3"), second.wallet, None, COOPS, after_midnight)
    assert declined(refused) is Reason.INSUFFICIENT_FUNDS


def test_insufficient_funds_is_declined_and_nothing_moves() -> None:
    start = wallet(meal=5_000, base=100)
    assert declined(decide(pay(1_200, TillKind.SHOP), start, None, COOPS, NOON)) is (
        Reason.INSUFFICIENT_FUNDS
    )


def test_suspended_account_cannot_pay_charge_or_move() -> None:
    start = msgspec.structs.replace(wallet(base=10_000), status=WalletStatus.SUSPENDED)
    charge = Charge(
        key="c", member_no=MEMBER, purse=Purse.BASE, amount_yen=1_000, source=ChargeSource.CARD
    )
    move = Move(
        key="m", member_no=MEMBER, from_purse=Purse.BASE, to_purse=Purse.CAFETERIA, amount_yen=1
    )
    counter = msgspec.structs.replace(charge, key="d", source=ChargeSource.COUNTER)
    for op in (pay(100, TillKind.SHOP), charge, counter, move):
        assert declined(decide(op, start, None, COOPS, NOON)) is Reason.SUSPENDED


def test_a_convenience_store_payment_is_credited_to_a_suspended_account() -> None:
    """The store has the member's cash: the purse takes it, frozen until resumed."""
    start = msgspec.structs.replace(wallet(base=10_000), status=WalletStatus.SUSPENDED)
    paid = Charge(
        key="k", member_no=MEMBER, purse=Purse.BASE, amount_yen=3_000, source=ChargeSource.KONBINI
    )
    change = decide(paid, start, None, COOPS, NOON)
    assert isinstance(change, Change) and change.wallet.balances.base == 13_000
    assert change.wallet.status is WalletStatus.SUSPENDED
    assert declined(decide(pay(100, TillKind.SHOP), change.wallet, None, COOPS, NOON)) is (
        Reason.SUSPENDED
    )


def test_charge_bounds_and_purse_maximum() -> None:
    start = wallet(base=95_000)

    def charge(amount: int, purse: Purse = Purse.BASE) -> Charge:
        return Charge(
            key="c", member_no=MEMBER, purse=purse, amount_yen=amount, source=ChargeSource.CARD
        )

    assert declined(decide(charge(999), start, None, COOPS, NOON)) is Reason.BELOW_MINIMUM
    assert declined(decide(charge(100_001), start, None, COOPS, NOON)) is Reason.ABOVE_MAXIMUM
    assert declined(decide(charge(6_000), start, None, COOPS, NOON)) is Reason.OVER_LIMIT
    assert declined(decide(charge(1_000, Purse.MEAL), start, None, COOPS, NOON)) is (
        Reason.PURSE_NOT_ALLOWED
    )
    result = changed(decide(charge(5_000), start, None, COOPS, NOON))
    assert result.wallet.balances.base == 100_000
    assert ("clearing:card", -5_000) in result.postings


def test_move_only_from_base_to_cafeteria_or_textbook() -> None:
    start = wallet(base=10_000, cafeteria=100)

    def move(source: Purse, target: Purse, amount: int = 1_000) -> Move:
        return Move(
            key="m", member_no=MEMBER, from_purse=source, to_purse=target, amount_yen=amount
        )

    result = changed(decide(move(Purse.BASE, Purse.CAFETERIA), start, None, COOPS, NOON))
    assert result.wallet.balances == Purses(base=9_000, cafeteria=1_100)
    assert sorted(result.postings) == [
        ("member:202600000017:base", -1_000),
        ("member:202600000017:cafeteria", 1_000),
    ]
    for source, target in [(Purse.CAFETERIA, Purse.BASE), (Purse.BASE, Purse.MEAL)]:
        assert declined(decide(move(source, target), start, None, COOPS, NOON)) is (
            Reason.PURSE_NOT_ALLOWED
        )
    assert declined(decide(move(Purse.BASE, Purse.TEXTBOOK, 20_000), start, None, COOPS, NOON)) is (
        Reason.INSUFFICIENT_FUNDS
    )


def _paid(start: MemberWallet, amount: int, kind: TillKind) -> tuple[Change, PaymentRecord]:
    result = changed(decide(pay(amount, kind), start, None, COOPS, NOON))
    if result.payment is None:
        pytest.fail("a payment keeps a record")
    return result, result.payment


def test_void_gives_every_purse_back_and_frees_todays_meal_cap() -> None:
    start = wallet(meal=5_000, base=10_000)
    paid, record = _paid(start, 1_300, TillKind.CAFETERIA)
    void = VoidPayment(key="v", member_no=MEMBER, payment_key="p1")
    result = changed(decide(void, paid.wallet, record, COOPS, NOON))
    assert result.wallet.balances == start.balances
    assert result.wallet.meal_used_yen == 0
    assert result.payment is not None and result.payment.voided
    assert declined(decide(void, result.wallet, result.payment, COOPS, NOON)) is (
        Reason.ALREADY_VOIDED
    )


def test_void_is_refused_on_a_later_day() -> None:
    paid, record = _paid(wallet(base=10_000), 500, TillKind.SHOP)
    void = VoidPayment(key="v", member_no=MEMBER, payment_key="p1")
    tomorrow = at(2026, 11, 26, 9)
    assert declined(decide(void, paid.wallet, record, COOPS, tomorrow)) is (
        Reason.VOID_WINDOW_CLOSED
    )


def test_refunds_return_last_spent_purse_first_and_never_exceed_the_payment() -> None:
    start = wallet(points=100, base=10_000)
    paid, record = _paid(start, 2_100, TillKind.SHOP)  # 100 points, then 2,000 base.
    assert paid.points_earned == 20

    def refund(amount: int, key: str) -> Refund:
        return Refund(key=key, member_no=MEMBER, payment_key="p1", amount_yen=amount)

    first = changed(decide(refund(1_500, "r1"), paid.wallet, record, COOPS, NOON))
    assert first.changes == Purses(base=1_500)
    assert first.points_earned == -15  # The points earned on what came back go back.
    assert first.payment is not None
    too_much = decide(refund(601, "r2"), first.wallet, first.payment, COOPS, NOON)
    assert declined(too_much) is Reason.REFUND_EXCEEDS_PAYMENT
    rest = changed(decide(refund(600, "r2"), first.wallet, first.payment, COOPS, NOON))
    assert rest.changes == Purses(base=500, points=100)
    assert rest.wallet.balances == start.balances


def test_refund_of_another_members_payment_is_unknown() -> None:
    paid, record = _paid(wallet(base=10_000), 500, TillKind.SHOP)
    other = msgspec.structs.replace(record, member_no="202600000025")
    refund = Refund(key="r", member_no=MEMBER, payment_key="p1", amount_yen=100)
    assert declined(decide(refund, paid.wallet, other, COOPS, NOON)) is Reason.UNKNOWN_PAYMENT


def test_open_wallet_rules() -> None:
    def open_(**fields: object) -> OpenWallet:
        base: dict[str, object] = {"key": "o", "member_no": MEMBER, "coop": "demo"}
        return msgspec.convert({**base, **fields}, OpenWallet)

    assert declined(decide(open_(coop="nowhere"), None, None, COOPS, NOON)) is Reason.UNKNOWN_COOP
    assert declined(decide(open_(meal_plan="gold"), None, None, COOPS, NOON)) is (
        Reason.UNKNOWN_MEAL_PLAN
    )
    assert declined(decide(open_(deposits={"points": 5}), None, None, COOPS, NOON)) is (
        Reason.PURSE_NOT_ALLOWED
    )
    assert declined(decide(open_(deposits={"base": 100_001}), None, None, COOPS, NOON)) is (
        Reason.OVER_LIMIT
    )
    opened = changed(
        decide(
            open_(meal_plan="meal-1000", deposits={"meal": 96_000, "base": 40_000}),
            None,
            None,
            COOPS,
            NOON,
        )
    )
    assert opened.wallet.balances == Purses(meal=96_000, base=40_000)
    assert (ledger.ENROLMENT_DEPOSITS, -136_000) in opened.postings
    assert declined(decide(open_(), opened.wallet, None, COOPS, NOON)) is Reason.DUPLICATE


def test_unknown_member_is_declined() -> None:
    assert declined(decide(pay(100), None, None, COOPS, NOON)) is Reason.UNKNOWN_MEMBER


def test_points_never_exceed_the_points_purse_maximum() -> None:
    rules = CoopRules(purse_balance_max_yen={**RULES.purse_balance_max_yen, Purse.POINTS: 5})
    start = wallet(base=50_000, points=0)
    shop = Pay(key="p", member_no=MEMBER, amount_yen=2_000, till_kind=TillKind.SHOP, store="s")
    # Points are spent first at the shop, so start with none to see only the earning.
    result = changed(decide(shop, start, None, {"demo": rules}, NOON))
    assert result.points_earned == 5
