"""The payments room's messages: charges as the store keeps them, the operations the
actor applies, and its replies. The front and the charging flow import these, never the
store."""

from __future__ import annotations

from enum import StrEnum

import msgspec

from coopnode.domain.money import Purse


class ChargeMethod(StrEnum):
    CARD = "card"
    KONBINI = "konbini"


class ChargeStatus(StrEnum):
    AUTHORIZING = "authorizing"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    DECLINED = "declined"
    FAILED = "failed"
    PENDING = "pending"
    PAID = "paid"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    CREDITED = "credited"
    REFUNDED = "refunded"


# The states a charge may move to from each state; anything else is a programming error.
NEXT_STATUSES: dict[ChargeStatus, frozenset[ChargeStatus]] = {
    ChargeStatus.AUTHORIZING: frozenset({ChargeStatus.AUTHORIZED, ChargeStatus.DECLINED}),
    ChargeStatus.AUTHORIZED: frozenset({ChargeStatus.CAPTURED, ChargeStatus.FAILED}),
    ChargeStatus.CAPTURED: frozenset({ChargeStatus.CREDITED, ChargeStatus.FAILED}),
    ChargeStatus.PENDING: frozenset(
        {ChargeStatus.PAID, ChargeStatus.EXPIRED, ChargeStatus.CANCELLED}
    ),
    ChargeStatus.PAID: frozenset({ChargeStatus.CREDITED, ChargeStatus.REFUNDED}),
}
FINAL = frozenset(
    {
        ChargeStatus.DECLINED,
        ChargeStatus.FAILED,
        ChargeStatus.EXPIRED,
        ChargeStatus.CANCELLED,
        ChargeStatus.CREDITED,
        ChargeStatus.REFUNDED,
    }
)
# The states in which the wallet is still to be credited with a charge.
CREDITABLE = frozenset({ChargeStatus.CAPTURED, ChargeStatus.PAID})
# What a staff refund's note may hold: a sentence for the audit log, not a letter.
REFUND_NOTE_MAX_CHARS = 200


class Record(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The base of every record and message of the room: frozen, no unknown field."""


class ChargeRecord(Record, frozen=True):
    charge_id: str
    member_no: str
    method: ChargeMethod
    purse: Purse
    amount_yen: int
    status: ChargeStatus
    created_at_ms: int
    updated_at_ms: int
    # Card charges: what may be shown again, and the acquirer's authorization id.
    card_brand: str = ""
    card_last4: str = ""
    acquirer_id: str = ""
    # Why a charge was declined or failed (an error key of the portal's catalogue).
    reason: str = ""
    # Convenience-store charges.
    store: str = ""
    payment_number: str = ""
    confirmation_number: str = ""
    pay_by_ms: int = 0
    kana_name: str = ""
    mail: str = ""
    # A refunded charge: who recorded the refund, and why.
    refunded_by: str = ""
    refund_note: str = ""
    # While a front credits the charge: until when its claim holds (0: not claimed).
    credit_claimed_until_ms: int = 0


# Operations -----------------------------------------------------------------------------


class BeginCard(Record, frozen=True, tag="begin_card"):
    form_key: str
    member_no: str
    purse: Purse
    amount_yen: int
    card_brand: str
    card_last4: str
    now_ms: int


class IssueKonbini(Record, frozen=True, tag="issue_konbini"):
    form_key: str
    member_no: str
    purse: Purse
    amount_yen: int
    store: str
    kana_name: str
    mail: str
    pay_by_ms: int
    now_ms: int
    pending_max: int


class Advance(Record, frozen=True, tag="advance"):
    """Move a charge to `status` if the arrows allow it; otherwise return it unchanged."""

    charge_id: str
    status: ChargeStatus
    now_ms: int
    acquirer_id: str = ""
    reason: str = ""


class ClaimCredit(Record, frozen=True, tag="claim_credit"):
    """Claim a captured or paid charge for crediting, for `lease_ms`. `created` says that
    this caller holds it now; otherwise the charge comes back as it is (credited, not
    creditable, or claimed by another caller whose lease still runs).
    """

    charge_id: str
    now_ms: int
    lease_ms: int


class ReleaseCredit(Record, frozen=True, tag="release_credit"):
    """Give up a claim without moving the charge (the wallet could not take the credit
    now): the next notice or the sweep may claim it at once.
    """

    charge_id: str


class KonbiniPaid(Record, frozen=True, tag="konbini_paid"):
    payment_number: str
    amount_yen: int
    now_ms: int


class RefundKonbini(Record, frozen=True, tag="refund_konbini"):
    """Record that a paid convenience-store charge the wallet would not credit was paid
    back to the member. Only from `paid`; a second refund finds it refunded (idempotent).
    """

    charge_id: str
    now_ms: int
    actor: str
    note: str = ""


class Sweep(Record, frozen=True, tag="sweep"):
    """Expire every pending convenience-store charge whose deadline is before `now_ms`."""

    now_ms: int
    limit: int


class Uncredited(Record, frozen=True, tag="uncredited"):
    """Charges paid or captured before `before_ms` but not credited (the wallet was
    unavailable when they were): the sweep credits them again, with the same key.
    """

    before_ms: int
    limit: int


class GetCharge(Record, frozen=True, tag="get"):
    charge_id: str


class ByNumber(Record, frozen=True, tag="by_number"):
    payment_number: str


class MemberCharges(Record, frozen=True, tag="member"):
    member_no: str
    limit: int


class ChargesMoved(Record, frozen=True, tag="moved"):
    """Charges last moved (`updated_at_ms`) from `from_ms` up to `to_ms`, at most `limit`:
    the payments side of a day's reconciliation (`domain.reconciliation`)."""

    from_ms: int
    to_ms: int
    limit: int


PaymentsOp = (
    BeginCard
    | IssueKonbini
    | Advance
    | ClaimCredit
    | ReleaseCredit
    | KonbiniPaid
    | RefundKonbini
    | Sweep
    | Uncredited
    | GetCharge
    | ByNumber
    | MemberCharges
    | ChargesMoved
)


class PaymentsReply(Record, frozen=True):
    """`created`: the operation made or changed the charge (False: it found it as it was).
    `refused`: an error key when the operation was refused (unknown, expired, too many).
    """

    charges: list[ChargeRecord] = []
    created: bool = False
    refused: str = ""
