"""Withdrawal (脱退) in the shard's store: booked once, the books balanced, the wallet
closed for good on disk, and refused while offline taps are owed."""

from __future__ import annotations

from pathlib import Path

from coopnode.domain.messages import (
    Booked,
    Declined,
    GetWallet,
    OfflinePay,
    OpenWallet,
    Resume,
    SettleOverdraft,
    Suspend,
    WalletStatus,
    WalletView,
    Withdraw,
)
from coopnode.domain.money import Purse, Reason, TillKind
from tests.actors.test_wallet_store import MEMBER, open_store

SHARES_YEN = 20_000


def enrol() -> OpenWallet:
    return OpenWallet(
        key="enrol", member_no=MEMBER, coop="demo", meal_plan="meal-1000",
        deposits={Purse.MEAL: 96_000, Purse.BASE: 4_000},
    )  # fmt: skip


def withdraw(refund_yen: int, key: str = "withdraw-1") -> Withdraw:
    return Withdraw(
        key=key, member_no=MEMBER, share_capital_yen=SHARES_YEN, refund_yen=refund_yen
    )  # fmt: skip


def test_a_withdrawal_is_booked_once_closes_the_wallet_and_keeps_the_books(tmp_path: Path) -> None:
    store = open_store(tmp_path / "shard")
    try:
        store.apply_batch([enrol()])
        refund = 96_000 + 4_000 + SHARES_YEN
        [first] = store.apply_batch([withdraw(refund)])
        assert isinstance(first, Booked) and first.amount_yen == refund
        # The same key answers the first result; another key finds the wallet closed.
        [again, other] = store.apply_batch([withdraw(refund), withdraw(SHARES_YEN, "w-2")])
        assert again == first
        assert isinstance(other, Declined) and other.reason is Reason.ACCOUNT_CLOSED
        [resumed] = store.apply_batch([Resume(member_no=MEMBER)])
        assert isinstance(resumed, Declined) and resumed.reason is Reason.ACCOUNT_CLOSED
        assert store.audit().balanced
    finally:
        store.close()
    reopened = open_store(tmp_path / "shard")
    try:
        [view] = reopened.apply_batch([GetWallet(member_no=MEMBER)])
        assert isinstance(view, WalletView)
        assert view.status is WalletStatus.CLOSED
        assert view.balances.total() == 0
    finally:
        reopened.close()


def test_an_owed_offline_tap_refuses_the_withdrawal_until_it_is_settled(tmp_path: Path) -> None:
    store = open_store(tmp_path / "shard")
    try:
        store.apply_batch([enrol(), Suspend(member_no=MEMBER)])
        tap = OfflinePay(
            key="till-1:7", member_no=MEMBER, amount_yen=4_500, till_kind=TillKind.SHOP,
            store="s1", tapped_at_ms=1,
        )  # fmt: skip
        [booked] = store.apply_batch([tap])
        assert isinstance(booked, Booked) and booked.overdraft_yen == 500
        [refused] = store.apply_batch([withdraw(96_000 + SHARES_YEN)])
        assert isinstance(refused, Declined) and refused.reason is Reason.OVERDRAFT_OWED
        [view] = store.apply_batch([GetWallet(member_no=MEMBER)])
        assert isinstance(view, WalletView) and view.status is WalletStatus.SUSPENDED
        store.apply_batch([Resume(member_no=MEMBER)])
        # The meal plan pays nothing at a shop, so the base money would; it is empty.
        [unpaid] = store.apply_batch(
            [SettleOverdraft(key="settle-1", member_no=MEMBER, payment_key="till-1:7")]
        )
        assert isinstance(unpaid, Declined) and unpaid.reason is Reason.INSUFFICIENT_FUNDS
        assert store.audit().balanced
    finally:
        store.close()
