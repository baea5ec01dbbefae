"""Purses, till kinds, reason codes and the per-purse amounts type.

Money is always an `int` of yen. Points are worth one yen each when spent.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

import msgspec


class Purse(StrEnum):
    """The five purses every member has."""

    MEAL = "meal"  # ミール: prepaid meal plan, spent in the cafeteria under a daily cap.
    CAFETERIA = "cafeteria"  # 学食マネー
    TEXTBOOK = "textbook"  # 教科書マネー
    BASE = "base"  # ベースマネー
    POINTS = "points"  # ポイント


PURSES: tuple[Purse, ...] = tuple(Purse)

# Purses a member can charge on the web (FLOWS §6) and move money into (FLOWS §5).
CHARGEABLE_PURSES: frozenset[Purse] = frozenset({Purse.BASE, Purse.TEXTBOOK, Purse.CAFETERIA})
MOVE_SOURCES: frozenset[Purse] = frozenset({Purse.BASE})
MOVE_TARGETS: frozenset[Purse] = frozenset({Purse.CAFETERIA, Purse.TEXTBOOK})


class TillKind(StrEnum):
    CAFETERIA = "cafeteria"
    SHOP = "shop"
    BOOKSTORE = "bookstore"


class Reason(StrEnum):
    """Why an operation did not succeed. Every non-success outcome carries one."""

    INSUFFICIENT_FUNDS = "insufficient_funds"
    SUSPENDED = "suspended"
    OVER_LIMIT = "over_limit"
    BELOW_MINIMUM = "below_minimum"
    ABOVE_MAXIMUM = "above_maximum"
    UNKNOWN_MEMBER = "unknown_member"
    UNKNOWN_CARD = "unknown_card"
    CARD_BLOCKED = "card_blocked"
    DUPLICATE = "duplicate"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    UNKNOWN_PAYMENT = "unknown_payment"
    ALREADY_VOIDED = "already_voided"
    VOID_WINDOW_CLOSED = "void_window_closed"
    REFUND_EXCEEDS_PAYMENT = "refund_exceeds_payment"
    NOTHING_OWED = "nothing_owed"
    PURSE_NOT_ALLOWED = "purse_not_allowed"
    UNKNOWN_MEAL_PLAN = "unknown_meal_plan"
    UNKNOWN_COOP = "unknown_coop"
    # The member withdrew (脱退): the wallet is closed for good.
    ACCOUNT_CLOSED = "account_closed"
    # A withdrawal whose refund is no longer the one the clerk was shown: look again.
    WITHDRAWAL_CHANGED = "withdrawal_changed"
    # A withdrawal while offline taps are still owed: settle or void them first.
    OVERDRAFT_OWED = "overdraft_owed"
    INVALID_INPUT = "invalid_input"
    OVERLOADED = "overloaded"
    UNAVAILABLE = "unavailable"
    # A change the node could not confirm in time: it may have been booked or not. The
    # same request under the same key answers what happened, and never books twice.
    OUTCOME_UNKNOWN = "outcome_unknown"
    STORAGE_FULL = "storage_full"
    # The wallet could not encode, decode or apply this one operation (a defect, raised
    # as an alert); nothing was changed, and the operations beside it were served.
    OPERATION_FAILED = "operation_failed"


# Declines that say "not now" rather than "no": the same request, sent again later under
# the same idempotency key, may succeed. After OUTCOME_UNKNOWN (and UNAVAILABLE, as the
# till channel has always read it) the operation may even have been booked, so it must
# be sent again under the same key, never replaced by a new one.
TRY_AGAIN_REASONS: frozenset[Reason] = frozenset(
    {Reason.OVERLOADED, Reason.UNAVAILABLE, Reason.OUTCOME_UNKNOWN, Reason.STORAGE_FULL}
)


class Purses(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An amount of yen per purse: balances, or the signed changes of one operation."""

    meal: int = 0
    cafeteria: int = 0
    textbook: int = 0
    base: int = 0
    points: int = 0

    # These run several times per payment on the hot path, hence the plain arithmetic.

    def get(self, purse: Purse) -> int:
        value: int = getattr(self, purse)  # A StrEnum member is the field's name.
        return value

    def with_(self, purse: Purse, amount_yen: int) -> Purses:
        return msgspec.structs.replace(self, **{purse: amount_yen})

    def add(self, other: Purses) -> Purses:
        return Purses(
            self.meal + other.meal,
            self.cafeteria + other.cafeteria,
            self.textbook + other.textbook,
            self.base + other.base,
            self.points + other.points,
        )

    def negate(self) -> Purses:
        return Purses(-self.meal, -self.cafeteria, -self.textbook, -self.base, -self.points)

    def values(self) -> tuple[int, ...]:
        return msgspec.structs.astuple(self)

    def total(self) -> int:
        return self.meal + self.cafeteria + self.textbook + self.base + self.points

    def items(self) -> Iterator[tuple[Purse, int]]:
        return zip(PURSES, msgspec.structs.astuple(self), strict=True)

    @classmethod
    def of(cls, amounts: dict[Purse, int]) -> Purses:
        return cls(**{str(purse): amount for purse, amount in amounts.items()})
