"""Card charges through the sandbox acquirer over a loopback socket, with the charges'
store in-process and a wallet that books each idempotency key once (as the real one does).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from coopnode.actors.payments.messages import (
    ChargeStatus,
    GetCharge,
    KonbiniPaid,
    PaymentsOp,
    PaymentsReply,
)
from coopnode.actors.payments.store import PaymentsStore
from coopnode.domain.messages import Booked, Charge, Declined, GetWallet, WalletStatus, WalletView
from coopnode.domain.money import Purse, Purses, Reason
from coopnode.payments.acquirer import AcquirerClient, Card
from coopnode.payments.charging import ChargeRefused, Charging
from coopnode.payments.sandbox_acquirer import start_sandbox_acquirer
from coopnode.settings import PaymentsSettings

MEMBER = "202600000002"


class InProcessPayments:
    def __init__(self, store: PaymentsStore) -> None:
        self.store = store

    async def call(self, op: PaymentsOp) -> PaymentsReply:
        return self.store.apply(op)


class OnceWallet:
    """Books a charge key once and answers a repeat with the first result; shows the
    wallet's status to a `GetWallet`."""

    def __init__(self, refuse: bool = False, status: WalletStatus = WalletStatus.ACTIVE) -> None:
        self.booked: dict[str, Booked] = {}
        self.calls = 0
        self.refuse = refuse
        self.status = status

    async def submit(self, op: Charge | GetWallet) -> Booked | Declined | WalletView:
        if isinstance(op, GetWallet):
            return WalletView(
                member_no=op.member_no,
                coop="demo",
                status=self.status,
                meal_plan="",
                meal_cap_yen=0,
                meal_remaining_today_yen=0,
                balances=Purses(),
                emoney_used=True,
            )
        self.calls += 1
        if self.refuse:
            return Declined(reason=Reason.OVER_LIMIT, message="full")
        if op.key not in self.booked:
            self.booked[op.key] = Booked(
                kind="charge",
                key=op.key,
                member_no=op.member_no,
                seq=len(self.booked) + 1,
                at_ms=0,
                amount_yen=op.amount_yen,
                changes=Purses().with_(op.purse, op.amount_yen),
                points_earned=0,
                balances=Purses(),
                meal_remaining_today_yen=0,
            )
        return self.booked[op.key]


def card(number: str = "4242424242424242") -> Card:
    return Card(number=number, exp_month=12, exp_year=2030, cvc="123", birthday="0517")


@pytest.fixture
async def acquirer() -> AsyncIterator[AcquirerClient]:
    runner, url = await start_sandbox_acquirer()
    client = AcquirerClient(url, 5.0, 65_536)
    try:
        yield client
    finally:
        await client.close()
        await runner.cleanup()


def charging(tmp_path: Path, acquirer: AcquirerClient, wallet: OnceWallet) -> Charging:
    store = PaymentsStore(tmp_path / "p", map_size_bytes=16 * 1024 * 1024, fsync=False)
    payments: Any = InProcessPayments(store)
    return Charging(PaymentsSettings(card_wait_s=1.0), payments, acquirer, wallet)  # type: ignore[arg-type]


async def test_a_card_charge_is_credited_once_whatever_repeats(
    tmp_path: Path, acquirer: AcquirerClient
) -> None:
    wallet = OnceWallet()
    service = charging(tmp_path, acquirer, wallet)
    record = await service.charge_card(MEMBER, "form-1", Purse.BASE, 5000, card())
    assert record.status is ChargeStatus.CREDITED and record.card_last4 == "4242"
    # The same form sent again (a double click) is the same charge, not a new payment.
    again = await service.charge_card(MEMBER, "form-1", Purse.BASE, 5000, card())
    assert again.charge_id == record.charge_id and wallet.calls == 1
    # A repeated answer leading to a second credit finds it booked under the same key.
    await service.credit(record)
    assert list(wallet.booked) == [f"charge:{record.charge_id}"]
    # The acquirer answers a retried authorization with the first one.
    first = await acquirer.authorize("same-key", 1000, card())
    second = await acquirer.authorize("same-key", 1000, card())
    assert first == second


async def test_declines_and_a_refused_credit(tmp_path: Path, acquirer: AcquirerClient) -> None:
    service = charging(tmp_path, acquirer, OnceWallet())
    declined = await service.charge_card(MEMBER, "a", Purse.BASE, 5000, card("4000000000000002"))
    assert declined.status is ChargeStatus.DECLINED and declined.reason == "card_declined"
    short = await service.charge_card(MEMBER, "b", Purse.BASE, 5000, card("4000000000009995"))
    assert short.reason == "insufficient_funds"
    refusing = charging(tmp_path / "x", acquirer, OnceWallet(refuse=True))
    failed = await refusing.charge_card(MEMBER, "c", Purse.BASE, 5000, card())
    assert failed.status is ChargeStatus.FAILED and failed.reason == "over_limit"


class RecordingPayments(InProcessPayments):
    """The in-process store, telling the test when a notice's own operation was answered."""

    def __init__(self, store: PaymentsStore) -> None:
        super().__init__(store)
        self.paid_answers = 0
        self.second_notice_answered = asyncio.Event()

    async def call(self, op: PaymentsOp) -> PaymentsReply:
        reply = self.store.apply(op)
        if isinstance(op, KonbiniPaid):
            self.paid_answers += 1
            if self.paid_answers == 2:
                self.second_notice_answered.set()
        return reply


class HoldingWallet(OnceWallet):
    """Holds its first answer until the test releases it; answers the others at once."""

    def __init__(self) -> None:
        super().__init__()
        self.first_asked = asyncio.Event()
        self.release = asyncio.Event()

    async def submit(self, op: Charge | GetWallet) -> Booked | Declined | WalletView:
        if isinstance(op, Charge) and not self.first_asked.is_set():
            self.first_asked.set()
            await self.release.wait()
        return await super().submit(op)


async def test_the_same_notice_twice_at_once_credits_once(tmp_path: Path) -> None:
    """The second notice arrives while the first is inside its credit (the wallet holds
    the first's answer): one answers `credited`, the other `already_credited`, and the
    wallet is asked once, so the log and the operations metric count one credit.
    """
    store = PaymentsStore(tmp_path / "p", map_size_bytes=16 * 1024 * 1024, fsync=False)
    payments = RecordingPayments(store)
    wallet = HoldingWallet()
    service = Charging(PaymentsSettings(), payments, None, wallet)  # type: ignore[arg-type]
    record, _ = await service.issue_konbini(
        MEMBER, "form-k", Purse.CAFETERIA, 3000, "lawson", "ヤマダ タロウ", "a@example.jp"
    )
    with capture_logs() as logs:
        first = asyncio.create_task(service.konbini_paid(record.payment_number, 3000))
        await wallet.first_asked.wait()
        second = asyncio.create_task(service.konbini_paid(record.payment_number, 3000))
        await payments.second_notice_answered.wait()
        wallet.release.set()
        answers = await asyncio.gather(first, second)
    assert sorted(outcome for _, outcome in answers) == ["already_credited", "credited"]
    assert wallet.calls == 1 and list(wallet.booked) == [f"charge:{record.charge_id}"]
    assert [line["event"] for line in logs].count("charge credited") == 1
    assert store.apply(GetCharge(charge_id=record.charge_id)).charges[0].status is (
        ChargeStatus.CREDITED
    )


async def test_a_suspended_account_starts_no_charge(
    tmp_path: Path, acquirer: AcquirerClient
) -> None:
    """Refused before the charge is recorded, so before the acquirer is called and before
    a payment number exists."""
    wallet = OnceWallet(status=WalletStatus.SUSPENDED)
    service = charging(tmp_path, acquirer, wallet)
    with pytest.raises(ChargeRefused) as card_refused:
        await service.charge_card(MEMBER, "form-1", Purse.BASE, 5000, card())
    with pytest.raises(ChargeRefused) as konbini_refused:
        await service.issue_konbini(
            MEMBER, "form-2", Purse.BASE, 3000, "lawson", "ヤマダ タロウ", "a@example.jp"
        )
    assert card_refused.value.key == konbini_refused.value.key == "error.charge_suspended"
    assert await service.member_charges(MEMBER) == [] and wallet.calls == 0
