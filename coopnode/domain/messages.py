"""The wallet's messages: operations in, results out, and the records kept on disk.

Every one is a frozen `msgspec.Struct` that refuses unknown fields. Operations and results
are tagged unions, so one decoder takes any of them and `match` dispatches.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec

from coopnode.domain.bounds import Cursor, EpochMs
from coopnode.domain.money import Purse, Purses, Reason, TillKind

MemberNo = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9]{12}$", description="12-digit member number")
]
IdempotencyKey = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=80,
        pattern=r"^[A-Za-z0-9._:\-]+$",
        description="chosen by the client; a retry with the same key returns the first result",
    ),
]
AmountYen = Annotated[int, msgspec.Meta(ge=1, le=10_000_000, description="yen, an integer")]
DepositYen = Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]
OptionalLabel = Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[A-Za-z0-9._:\-]*$")]
HistoryLimit = Annotated[int, msgspec.Meta(ge=1, le=100)]
Month = Annotated[str, msgspec.Meta(pattern=r"^(|[0-9]{4}-(0[1-9]|1[0-2]))$")]


class WalletStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class ChargeSource(StrEnum):
    CARD = "card"
    KONBINI = "konbini"
    COUNTER = "counter"


class _Message(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


# Operations ---------------------------------------------------------------------------


class OpenWallet(_Message, frozen=True, tag="open"):
    """Enrolment: open a member's purses with what was paid in at the counter."""

    key: IdempotencyKey
    member_no: MemberNo
    coop: Label
    meal_plan: Label = "none"
    deposits: dict[Purse, DepositYen] = {}


class Pay(_Message, frozen=True, tag="pay"):
    key: IdempotencyKey
    member_no: MemberNo
    amount_yen: AmountYen
    till_kind: TillKind
    store: Label
    till_id: OptionalLabel = ""


class OfflinePay(_Message, frozen=True, tag="offline_pay"):
    """A tap a till approved while it could not reach the node, forwarded later.

    The sale has happened, so it is booked even when the balance no longer covers it:
    the purses pay what they hold and the rest is recorded as an overdraft to recover.
    """

    key: IdempotencyKey
    member_no: MemberNo
    amount_yen: AmountYen
    till_kind: TillKind
    store: Label
    till_id: OptionalLabel = ""
    tapped_at_ms: EpochMs = 0


class VoidPayment(_Message, frozen=True, tag="void"):
    """Cancel a payment made today, in full: every purse gets back what it paid."""

    key: IdempotencyKey
    member_no: MemberNo
    payment_key: IdempotencyKey


class Refund(_Message, frozen=True, tag="refund"):
    """Give back part or all of an earlier payment, the last-spent purse first."""

    key: IdempotencyKey
    member_no: MemberNo
    payment_key: IdempotencyKey
    amount_yen: AmountYen


class SettleOverdraft(_Message, frozen=True, tag="settle_overdraft"):
    """Recover what an offline tap's purses could not cover, from the purses now.

    Staff settle it once the member has money again (after a charge, by card, at the
    store or at the counter); the tap then counts as paid in full by its purses.
    """

    key: IdempotencyKey
    member_no: MemberNo
    payment_key: IdempotencyKey


class Charge(_Message, frozen=True, tag="charge"):
    key: IdempotencyKey
    member_no: MemberNo
    purse: Purse
    amount_yen: AmountYen
    source: ChargeSource
    reference: OptionalLabel = ""


class Move(_Message, frozen=True, tag="move"):
    key: IdempotencyKey
    member_no: MemberNo
    from_purse: Purse
    to_purse: Purse
    amount_yen: AmountYen


class Suspend(_Message, frozen=True, tag="suspend"):
    member_no: MemberNo


class Resume(_Message, frozen=True, tag="resume"):
    member_no: MemberNo


class GetWallet(_Message, frozen=True, tag="wallet"):
    member_no: MemberNo


class HistoryQuery(_Message, frozen=True):
    """Which page of a member's history: a client's query string, as the API takes it."""

    before_seq: Cursor = 0
    limit: HistoryLimit = 20
    month: Month = ""


class GetHistory(HistoryQuery, frozen=True, kw_only=True, tag="history"):
    member_no: MemberNo


class Recall(_Message, frozen=True, tag="recall"):
    """What was decided under a payment's key, deciding nothing: the stored result when
    this same payment was decided before, `idempotency_conflict` when another operation
    was, `unknown_payment` when none was. A front asks it before it refuses a tap on what
    it knows now (a card blocked, an account suspended since), so that a tap another
    front booked and never answered is answered as it was booked, not refused and sold
    again as a new sale."""

    member_no: MemberNo
    payment: Pay | OfflinePay


MoneyOperation = (
    OpenWallet | Pay | OfflinePay | VoidPayment | Refund | SettleOverdraft | Charge | Move
)
Operation = MoneyOperation | Suspend | Resume | GetWallet | GetHistory | Recall

# Results ------------------------------------------------------------------------------


class Booked(_Message, frozen=True, tag="booked"):
    """A money operation that was written to the journal."""

    kind: str
    key: str
    member_no: str
    seq: int
    at_ms: int
    amount_yen: int
    # Signed change of each purse, points earned excluded (negative means spent).
    changes: Purses
    points_earned: int
    balances: Purses
    meal_remaining_today_yen: int
    # What an offline tap took beyond the balance, owed by the member (0 otherwise).
    overdraft_yen: int = 0


class Declined(_Message, frozen=True, tag="declined"):
    reason: Reason
    message: str


class WalletView(_Message, frozen=True, tag="wallet"):
    member_no: str
    coop: str
    status: WalletStatus
    meal_plan: str
    meal_cap_yen: int
    meal_remaining_today_yen: int
    balances: Purses
    emoney_used: bool


class HistoryLine(_Message, frozen=True):
    seq: int
    at_ms: int
    kind: str
    key: str
    amount_yen: int
    changes: Purses
    store: str
    till_id: str


class HistoryPage(_Message, frozen=True, tag="history"):
    member_no: str
    lines: list[HistoryLine]
    # Pass as `before_seq` for the next (older) page; 0 when there is none.
    next_before_seq: int


class StatusChanged(_Message, frozen=True, tag="status"):
    member_no: str
    status: WalletStatus
    seq: int


Result = Booked | Declined | WalletView | HistoryPage | StatusChanged

# Records on disk -----------------------------------------------------------------------


class MemberWallet(_Message, frozen=True):
    member_no: str
    coop: str
    meal_plan: str
    balances: Purses
    status: WalletStatus
    # The local day (ordinal) of `meal_used_yen`; a new day starts at zero.
    meal_day: int
    meal_used_yen: int
    emoney_used: bool
    opened_at_ms: int


class PaymentRecord(_Message, frozen=True):
    """What a payment took, kept so that voids and refunds give back exactly that."""

    payment_key: str
    member_no: str
    amount_yen: int
    paid: Purses
    points_earned: int
    day: int
    till_kind: TillKind
    store: str
    till_id: str
    refunded: Purses
    points_clawed_back: int
    voided: bool
    # The part of an offline tap the purses could not cover; `paid` sums to the rest.
    overdraft_yen: int = 0


class JournalEntry(_Message, frozen=True):
    """One balanced movement of money: its postings sum to zero."""

    seq: int
    at_ms: int
    kind: str
    member_no: str
    key: str
    amount_yen: int
    postings: list[tuple[str, int]]
    store: str = ""
    till_id: str = ""
    # A void, refund or settling names the payment it changes (its key), so that a
    # correction of a closed day's payment is shown linked to it ("" otherwise, and in
    # entries written before the field existed).
    refers_to: str = ""


class OverdraftRecord(_Message, frozen=True):
    """An offline tap's uncovered remainder, owed by the member until staff recover it."""

    member_no: str
    payment_key: str
    amount_yen: int
    overdraft_yen: int
    store: str
    till_id: str
    tapped_at_ms: int
    booked_at_ms: int


def decline(reason: Reason, message: str) -> Declined:
    return Declined(reason=reason, message=message)


# The answer to an operation the wallet could not encode, decode or apply: a defect, for
# which the node raised an alert; nothing was changed.
OPERATION_FAILED = decline(
    Reason.OPERATION_FAILED,
    "the wallet could not apply this operation and staff were alerted; nothing was changed",
)
