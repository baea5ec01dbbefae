"""Card and convenience-store charges in one LMDB environment (FLOWS §6).

A charge is recorded before any money moves and changes state only along these arrows:

    card:     authorizing → authorized → captured → credited
                          ↘ declined   ↘ failed (voided at the acquirer)
    konbini:  pending → paid → credited
                      ↘ expired ↘ refunded (staff: the wallet refused the credit, e.g. the
                        or cancelled         purse cap was reached; the money goes back)

Retries are safe by key: a charge is found again by the form's idempotency key (a double
click is one charge), a payment notification by its payment number (a second one finds
the charge already paid), and the wallet is credited with a key derived from the charge
id, so a second credit of the same charge returns the first result.

Crediting is serialized here: whoever credits a captured or paid charge first claims it
(`ClaimCredit`), and the claim holds until the charge moves on or is released, or its
lease runs out (the front that held it died). So two notices of one payment that arrive
together, or a notice and the sweep, ask the wallet once: the second finds the charge
claimed and waits for its end instead of crediting beside it.

The card number and the security code never reach this module: a card charge keeps its
brand and last four digits only, and a record is checked for that before it is written
and when it is read.

Databases in the environment:
    charges   charge id → ChargeRecord
    keys      member number + ":" + form key → charge id
    numbers   payment number → charge id
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import msgspec

from coopnode.actors.kernel.copies import StoreCopy, copy_store
from coopnode.actors.kernel.files import Layout, open_lmdb
from coopnode.actors.payments.messages import (
    CREDITABLE,
    NEXT_STATUSES,
    REFUND_NOTE_MAX_CHARS,
    Advance,
    BeginCard,
    ByNumber,
    ChargeMethod,
    ChargeRecord,
    ChargesMoved,
    ChargeStatus,
    ClaimCredit,
    GetCharge,
    IssueKonbini,
    KonbiniPaid,
    MemberCharges,
    PaymentsOp,
    PaymentsReply,
    RefundKonbini,
    ReleaseCredit,
    Sweep,
    Uncredited,
)
from coopnode.domain.errors import InvariantViolation

# The layout of the payments store's records; a change that old files cannot be read in
# raises it.
LAYOUT_VERSION = 1
_encoder = msgspec.msgpack.Encoder()
_record_decoder = msgspec.msgpack.Decoder(ChargeRecord)


def check_record(record: ChargeRecord) -> None:
    """A record must never hold more of a card than its brand and last four digits."""
    if record.card_last4 and (len(record.card_last4) != 4 or not record.card_last4.isdigit()):
        raise InvariantViolation(f"charge {record.charge_id} holds more than a card's last four")
    if record.amount_yen <= 0:
        raise InvariantViolation(f"charge {record.charge_id} has no positive amount")
    if (record.method is ChargeMethod.KONBINI) != bool(record.payment_number):
        raise InvariantViolation(f"charge {record.charge_id} has the wrong kind of reference")
    if (record.status is ChargeStatus.REFUNDED) != bool(record.refunded_by):
        raise InvariantViolation(f"charge {record.charge_id} is refunded without a refunder")
    if len(record.refund_note) > REFUND_NOTE_MAX_CHARS:
        raise InvariantViolation(f"charge {record.charge_id} holds an oversized refund note")
    if record.credit_claimed_until_ms and record.status not in CREDITABLE:
        raise InvariantViolation(f"charge {record.charge_id} is claimed but not creditable")


def _found(record: ChargeRecord | None) -> PaymentsReply:
    return PaymentsReply(charges=[record]) if record else PaymentsReply(refused="unknown")


class PaymentsStore:
    """The charges' files. Not thread-safe: one thread applies operations."""

    def __init__(
        self, path: Path, *, map_size_bytes: int, fsync: bool = True, lock_wait_s: float = 30.0
    ) -> None:
        self._files = open_lmdb(
            path,
            layout=Layout(store="payments", version=LAYOUT_VERSION),
            databases=("charges", "keys", "numbers"),
            map_size_bytes=map_size_bytes,
            fsync=fsync,
            lock_wait_s=lock_wait_s,
        )
        self.env = self._files.env
        self._charges = self._files.dbs["charges"]
        self._keys = self._files.dbs["keys"]
        self._numbers = self._files.dbs["numbers"]

    def close(self) -> None:
        self._files.close()

    def backup_to(self, backup_dir: Path, data_dir: Path) -> StoreCopy:
        """Copy the payments store into its directory under `backup_dir` (as under the live
        `data_dir`) from one read transaction, while it serves; runs on any thread."""
        layout = Layout(store="payments", version=LAYOUT_VERSION)
        return copy_store(self._files, layout, backup_dir, data_dir)

    def apply(self, op: PaymentsOp) -> PaymentsReply:
        """Apply one operation in one durable transaction."""
        with self.env.begin(write=True) as txn:
            match op:
                case BeginCard():
                    return self._begin_card(txn, op)
                case IssueKonbini():
                    return self._issue_konbini(txn, op)
                case Advance():
                    return self._advance(txn, op)
                case ClaimCredit():
                    return self._claim_credit(txn, op)
                case ReleaseCredit():
                    return self._release_credit(txn, op)
                case KonbiniPaid():
                    return self._konbini_paid(txn, op)
                case RefundKonbini():
                    return self._refund_konbini(txn, op)
                case Sweep():
                    return self._sweep(txn, op)
                case Uncredited():
                    return self._uncredited(txn, op)
                case GetCharge():
                    return _found(self._get(txn, op.charge_id))
                case ByNumber():
                    charge_id = txn.get(op.payment_number.encode(), db=self._numbers)
                    return _found(None if charge_id is None else self._get(txn, charge_id.decode()))
                case MemberCharges():
                    return self._member(txn, op)
                case ChargesMoved():
                    return self._moved(txn, op)

    # Reading and writing one record ---------------------------------------------------

    def _get(self, txn: Any, charge_id: str) -> ChargeRecord | None:
        raw = txn.get(charge_id.encode(), db=self._charges)
        if raw is None:
            return None
        record = _record_decoder.decode(raw)
        check_record(record)
        return record

    def _put(self, txn: Any, record: ChargeRecord) -> None:
        check_record(record)
        txn.put(record.charge_id.encode(), _encoder.encode(record), db=self._charges)

    def _by_key(self, txn: Any, member_no: str, form_key: str) -> ChargeRecord | None:
        charge_id = txn.get(f"{member_no}:{form_key}".encode(), db=self._keys)
        return None if charge_id is None else self._get(txn, charge_id.decode())

    def _new_id(self, txn: Any) -> str:
        while True:
            charge_id = secrets.token_hex(12)
            if txn.get(charge_id.encode(), db=self._charges) is None:
                return charge_id

    # Operations -----------------------------------------------------------------------

    def _begin_card(self, txn: Any, op: BeginCard) -> PaymentsReply:
        found = self._by_key(txn, op.member_no, op.form_key)
        if found is not None:
            return PaymentsReply(charges=[found])
        record = ChargeRecord(
            charge_id=self._new_id(txn),
            member_no=op.member_no,
            method=ChargeMethod.CARD,
            purse=op.purse,
            amount_yen=op.amount_yen,
            status=ChargeStatus.AUTHORIZING,
            created_at_ms=op.now_ms,
            updated_at_ms=op.now_ms,
            card_brand=op.card_brand,
            card_last4=op.card_last4,
        )
        self._put(txn, record)
        txn.put(f"{op.member_no}:{op.form_key}".encode(), record.charge_id.encode(), db=self._keys)
        return PaymentsReply(charges=[record], created=True)

    def _issue_konbini(self, txn: Any, op: IssueKonbini) -> PaymentsReply:
        found = self._by_key(txn, op.member_no, op.form_key)
        if found is not None:
            return PaymentsReply(charges=[found])
        pending = [
            record
            for record in self._member(
                txn, MemberCharges(member_no=op.member_no, limit=1000)
            ).charges
            if record.status is ChargeStatus.PENDING
        ]
        if len(pending) >= op.pending_max:
            return PaymentsReply(refused="pending_max")
        number = self._new_number(txn)
        record = ChargeRecord(
            charge_id=self._new_id(txn),
            member_no=op.member_no,
            method=ChargeMethod.KONBINI,
            purse=op.purse,
            amount_yen=op.amount_yen,
            status=ChargeStatus.PENDING,
            created_at_ms=op.now_ms,
            updated_at_ms=op.now_ms,
            store=op.store,
            payment_number=number,
            confirmation_number=f"{secrets.randbelow(10_000):04d}",
            pay_by_ms=op.pay_by_ms,
            kana_name=op.kana_name,
            mail=op.mail,
        )
        self._put(txn, record)
        txn.put(f"{op.member_no}:{op.form_key}".encode(), record.charge_id.encode(), db=self._keys)
        txn.put(number.encode(), record.charge_id.encode(), db=self._numbers)
        return PaymentsReply(charges=[record], created=True)

    def _new_number(self, txn: Any) -> str:
        while True:
            # Eleven digits, not starting with 0, as store terminals expect a number to look.
            number = str(10_000_000_000 + secrets.randbelow(90_000_000_000))
            if txn.get(number.encode(), db=self._numbers) is None:
                return number

    def _advance(self, txn: Any, op: Advance) -> PaymentsReply:
        record = self._get(txn, op.charge_id)
        if record is None:
            return PaymentsReply(refused="unknown")
        if op.status not in NEXT_STATUSES.get(record.status, frozenset()):
            return PaymentsReply(charges=[record])
        changed = msgspec.structs.replace(
            record,
            status=op.status,
            updated_at_ms=op.now_ms,
            acquirer_id=op.acquirer_id or record.acquirer_id,
            reason=op.reason or record.reason,
            # A charge that moves on is no longer being credited by anyone.
            credit_claimed_until_ms=0,
        )
        self._put(txn, changed)
        return PaymentsReply(charges=[changed], created=True)

    def _claim_credit(self, txn: Any, op: ClaimCredit) -> PaymentsReply:
        record = self._get(txn, op.charge_id)
        if record is None:
            return PaymentsReply(refused="unknown")
        if record.status not in CREDITABLE or record.credit_claimed_until_ms > op.now_ms:
            return PaymentsReply(charges=[record])
        # Not `updated_at_ms`: the sweep finds stuck charges by when they last moved.
        claimed = msgspec.structs.replace(record, credit_claimed_until_ms=op.now_ms + op.lease_ms)
        self._put(txn, claimed)
        return PaymentsReply(charges=[claimed], created=True)

    def _release_credit(self, txn: Any, op: ReleaseCredit) -> PaymentsReply:
        record = self._get(txn, op.charge_id)
        if record is None:
            return PaymentsReply(refused="unknown")
        if not record.credit_claimed_until_ms:
            return PaymentsReply(charges=[record])
        released = msgspec.structs.replace(record, credit_claimed_until_ms=0)
        self._put(txn, released)
        return PaymentsReply(charges=[released], created=True)

    def _konbini_paid(self, txn: Any, op: KonbiniPaid) -> PaymentsReply:
        charge_id = txn.get(op.payment_number.encode(), db=self._numbers)
        record = None if charge_id is None else self._get(txn, charge_id.decode())
        if record is None:
            return PaymentsReply(refused="unknown")
        if record.amount_yen != op.amount_yen:
            return PaymentsReply(charges=[record], refused="amount")
        if record.status is ChargeStatus.PENDING and op.now_ms > record.pay_by_ms:
            # The deadline passed before the sweep ran: the charge is expired now.
            record = msgspec.structs.replace(
                record, status=ChargeStatus.EXPIRED, updated_at_ms=op.now_ms
            )
            self._put(txn, record)
        if record.status in (ChargeStatus.EXPIRED, ChargeStatus.CANCELLED):
            return PaymentsReply(charges=[record], refused="expired")
        if record.status is not ChargeStatus.PENDING:
            return PaymentsReply(charges=[record])
        paid = msgspec.structs.replace(record, status=ChargeStatus.PAID, updated_at_ms=op.now_ms)
        self._put(txn, paid)
        return PaymentsReply(charges=[paid], created=True)

    def _refund_konbini(self, txn: Any, op: RefundKonbini) -> PaymentsReply:
        record = self._get(txn, op.charge_id)
        if record is None:
            return PaymentsReply(refused="unknown")
        if record.status is ChargeStatus.REFUNDED:
            return PaymentsReply(charges=[record])
        if record.method is not ChargeMethod.KONBINI or record.status is not ChargeStatus.PAID:
            return PaymentsReply(charges=[record], refused="not_refundable")
        refunded = msgspec.structs.replace(
            record,
            status=ChargeStatus.REFUNDED,
            updated_at_ms=op.now_ms,
            refunded_by=op.actor,
            refund_note=op.note,
            credit_claimed_until_ms=0,
        )
        self._put(txn, refunded)
        return PaymentsReply(charges=[refunded], created=True)

    def _sweep(self, txn: Any, op: Sweep) -> PaymentsReply:
        expired: list[ChargeRecord] = []
        for _, raw in txn.cursor(db=self._charges):
            record = _record_decoder.decode(raw)
            if record.status is ChargeStatus.PENDING and record.pay_by_ms < op.now_ms:
                expired.append(
                    msgspec.structs.replace(
                        record, status=ChargeStatus.EXPIRED, updated_at_ms=op.now_ms
                    )
                )
                if len(expired) >= op.limit:
                    break
        for record in expired:
            self._put(txn, record)
        return PaymentsReply(charges=expired, created=bool(expired))

    def _uncredited(self, txn: Any, op: Uncredited) -> PaymentsReply:
        found: list[ChargeRecord] = []
        for _, raw in txn.cursor(db=self._charges):
            record = _record_decoder.decode(raw)
            if record.status in CREDITABLE and record.updated_at_ms < op.before_ms:
                found.append(record)
                if len(found) >= op.limit:
                    break
        return PaymentsReply(charges=found)

    def _moved(self, txn: Any, op: ChargesMoved) -> PaymentsReply:
        # A day's charges are a few thousand at most among all ever kept; the scan reads
        # every record, as the sweep does, and keeps those moved within the window.
        found: list[ChargeRecord] = []
        for _, raw in txn.cursor(db=self._charges):
            record = _record_decoder.decode(raw)
            if op.from_ms <= record.updated_at_ms < op.to_ms:
                check_record(record)
                found.append(record)
                if len(found) >= op.limit:
                    break
        found.sort(key=lambda record: (record.updated_at_ms, record.charge_id))
        return PaymentsReply(charges=found)

    def _member(self, txn: Any, op: MemberCharges) -> PaymentsReply:
        # A member's charges are few (a handful a month); a scan of the keys index that
        # starts at the member's prefix reads only theirs.
        prefix = f"{op.member_no}:".encode()
        found: list[ChargeRecord] = []
        cursor = txn.cursor(db=self._keys)
        if cursor.set_range(prefix):
            for key, charge_id in cursor:
                if not key.startswith(prefix):
                    break
                record = self._get(txn, charge_id.decode())
                if record is not None:
                    found.append(record)
        found.sort(key=lambda record: record.created_at_ms, reverse=True)
        return PaymentsReply(charges=found[: op.limit])
