"""The charges' store: retries by key, the state arrows, konbini payment and expiry."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from coopnode.actors.payments.messages import (
    Advance,
    BeginCard,
    ByNumber,
    ChargeMethod,
    ChargeRecord,
    ChargeStatus,
    ClaimCredit,
    IssueKonbini,
    KonbiniPaid,
    MemberCharges,
    ReleaseCredit,
    Sweep,
    Uncredited,
)
from coopnode.actors.payments.store import PaymentsStore, check_record
from coopnode.domain.errors import InvariantViolation
from coopnode.domain.money import Purse

MEMBER = "202600000001"
DAY_MS = 86_400_000


@pytest.fixture
def store(tmp_path: Path) -> PaymentsStore:
    return PaymentsStore(tmp_path / "payments", map_size_bytes=16 * 1024 * 1024, fsync=False)


def begin(store: PaymentsStore, key: str = "k1") -> tuple[ChargeRecord, bool]:
    op = BeginCard(
        form_key=key,
        member_no=MEMBER,
        purse=Purse.BASE,
        amount_yen=5000,
        card_brand="visa",
        card_last4="4242",
        now_ms=1,
    )
    reply = store.apply(op)
    return reply.charges[0], reply.created


def issue(store: PaymentsStore, key: str, pending_max: int = 3) -> IssueKonbini:
    return IssueKonbini(
        form_key=key,
        member_no=MEMBER,
        purse=Purse.CAFETERIA,
        amount_yen=3000,
        store="lawson",
        kana_name="ヤマダ タロウ",
        mail="a@example.jp",
        pay_by_ms=7 * DAY_MS,
        now_ms=0,
        pending_max=pending_max,
    )


def test_the_same_form_key_is_the_same_card_charge(store: PaymentsStore) -> None:
    first, created = begin(store)
    again, created_again = begin(store)
    assert created and not created_again and again == first
    other, _ = begin(store, "k2")
    assert other.charge_id != first.charge_id
    listed = store.apply(MemberCharges(member_no=MEMBER, limit=10)).charges
    assert {record.charge_id for record in listed} == {first.charge_id, other.charge_id}


def test_card_states_follow_the_arrows_only(store: PaymentsStore) -> None:
    record, _ = begin(store)
    step = Advance(charge_id=record.charge_id, status=ChargeStatus.CAPTURED, now_ms=2)
    skipped = store.apply(step)
    assert not skipped.created and skipped.charges[0].status is ChargeStatus.AUTHORIZING
    for status in (ChargeStatus.AUTHORIZED, ChargeStatus.CAPTURED, ChargeStatus.CREDITED):
        reply = store.apply(Advance(charge_id=record.charge_id, status=status, now_ms=3))
        assert reply.created and reply.charges[0].status is status
    # A second answer of the acquirer cannot move a credited charge anywhere.
    twice = store.apply(Advance(charge_id=record.charge_id, status=ChargeStatus.CAPTURED, now_ms=4))
    assert not twice.created and twice.charges[0].status is ChargeStatus.CREDITED


def test_konbini_paid_once_and_expired_refused(store: PaymentsStore) -> None:
    issued = store.apply(issue(store, "a")).charges[0]
    assert issued.method is ChargeMethod.KONBINI and len(issued.payment_number) == 11
    assert store.apply(ByNumber(payment_number=issued.payment_number)).charges == [issued]
    wrong = store.apply(KonbiniPaid(payment_number=issued.payment_number, amount_yen=1, now_ms=5))
    assert wrong.refused == "amount"
    paid = store.apply(KonbiniPaid(payment_number=issued.payment_number, amount_yen=3000, now_ms=5))
    assert paid.created and paid.charges[0].status is ChargeStatus.PAID
    again = store.apply(
        KonbiniPaid(payment_number=issued.payment_number, amount_yen=3000, now_ms=6)
    )
    assert not again.created and not again.refused
    late = store.apply(issue(store, "b")).charges[0]
    swept = store.apply(Sweep(now_ms=8 * DAY_MS, limit=100))
    assert [record.charge_id for record in swept.charges] == [late.charge_id]
    refused = store.apply(
        KonbiniPaid(payment_number=late.payment_number, amount_yen=3000, now_ms=9)
    )
    assert refused.refused == "expired" and refused.charges[0].status is ChargeStatus.EXPIRED
    unknown = store.apply(KonbiniPaid(payment_number="10000000000", amount_yen=3000, now_ms=9))
    assert unknown.refused == "unknown"


def test_pending_konbini_charges_are_bounded(store: PaymentsStore) -> None:
    for key in ("a", "b"):
        assert store.apply(issue(store, key, pending_max=2)).created
    assert store.apply(issue(store, "c", pending_max=2)).refused == "pending_max"


def test_a_record_holds_no_more_of_a_card_than_its_last_four(store: PaymentsStore) -> None:
    record, _ = begin(store)
    with pytest.raises(InvariantViolation):
        check_record(msgspec.structs.replace(record, card_last4="4242424242424242"))


def test_uncredited_charges_are_found_again(store: PaymentsStore) -> None:
    record, _ = begin(store)
    for status in (ChargeStatus.AUTHORIZED, ChargeStatus.CAPTURED):
        store.apply(Advance(charge_id=record.charge_id, status=status, now_ms=10))
    assert [
        found.charge_id for found in store.apply(Uncredited(before_ms=11, limit=5)).charges
    ] == [record.charge_id]
    assert store.apply(Uncredited(before_ms=10, limit=5)).charges == []


def test_one_caller_at_a_time_holds_a_charge_for_crediting(store: PaymentsStore) -> None:
    issued = store.apply(issue(store, "a")).charges[0]
    pending = store.apply(ClaimCredit(charge_id=issued.charge_id, now_ms=1, lease_ms=100))
    assert not pending.created  # Nothing to credit before the store reports the payment.
    store.apply(KonbiniPaid(payment_number=issued.payment_number, amount_yen=3000, now_ms=2))
    first = store.apply(ClaimCredit(charge_id=issued.charge_id, now_ms=3, lease_ms=100))
    assert first.created and first.charges[0].credit_claimed_until_ms == 103
    second = store.apply(ClaimCredit(charge_id=issued.charge_id, now_ms=4, lease_ms=100))
    assert not second.created and second.charges[0].status is ChargeStatus.PAID
    # Released (the wallet said "not now"), it may be claimed at once.
    assert store.apply(ReleaseCredit(charge_id=issued.charge_id)).created
    again = store.apply(ClaimCredit(charge_id=issued.charge_id, now_ms=5, lease_ms=100))
    assert again.created
    # A holder that died: its lease runs out and the next caller takes the charge over.
    taken = store.apply(ClaimCredit(charge_id=issued.charge_id, now_ms=106, lease_ms=100))
    assert taken.created and taken.charges[0].updated_at_ms == 2
    # Credited, the claim is gone and nobody can claim the charge again.
    done = store.apply(Advance(charge_id=issued.charge_id, status=ChargeStatus.CREDITED, now_ms=7))
    assert done.charges[0].credit_claimed_until_ms == 0
    late = store.apply(ClaimCredit(charge_id=issued.charge_id, now_ms=8, lease_ms=100))
    assert not late.created and late.charges[0].status is ChargeStatus.CREDITED
    with pytest.raises(InvariantViolation):
        check_record(msgspec.structs.replace(late.charges[0], credit_claimed_until_ms=9))
