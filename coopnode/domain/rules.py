"""The money rules a co-op configures: spend orders, meal plans, points and limits.

These are plain values loaded from the node's TOML settings (one table per co-op); the
functions that use them live in `spend.py` and `wallet.py`.
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

import msgspec

from coopnode.domain.days import COOP_TIMEZONE, coop_day
from coopnode.domain.money import PURSES, Purse, TillKind
from coopnode.domain.withdrawal import WithdrawalRule

Yen = Annotated[int, msgspec.Meta(ge=0, le=100_000_000)]
BasisPoints = Annotated[int, msgspec.Meta(ge=0, le=10_000)]


def _default_spend_orders() -> dict[TillKind, list[Purse]]:
    return {
        TillKind.CAFETERIA: [Purse.MEAL, Purse.CAFETERIA, Purse.POINTS, Purse.BASE],
        TillKind.SHOP: [Purse.POINTS, Purse.BASE],
        TillKind.BOOKSTORE: [Purse.TEXTBOOK, Purse.POINTS, Purse.BASE],
    }


def _default_points_rate_bp() -> dict[TillKind, int]:
    # One point per 100 yen paid with money at the shop and the bookstore; none in the
    # cafeteria, whose prices are already subsidised.
    return {TillKind.CAFETERIA: 0, TillKind.SHOP: 100, TillKind.BOOKSTORE: 100}


def _default_meal_plans() -> dict[str, int]:
    # Daily caps in yen per plan, as sold by most co-ops (the plan is named by its cap).
    return {"meal-1000": 1_000, "meal-1200": 1_200, "meal-1500": 1_500, "none": 0}


def _default_purse_max() -> dict[Purse, int]:
    return {
        Purse.MEAL: 300_000,
        Purse.CAFETERIA: 100_000,
        Purse.TEXTBOOK: 200_000,
        Purse.BASE: 100_000,
        Purse.POINTS: 100_000,
    }


class CoopRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The rules of one co-op. Every amount is in yen."""

    name: str = "大学生活協同組合"
    timezone: str = COOP_TIMEZONE
    # The purses a till of each kind spends, in order.
    spend_orders: dict[TillKind, list[Purse]] = msgspec.field(default_factory=_default_spend_orders)
    # Points earned per 10,000 yen paid from money purses (not the meal plan nor points).
    points_rate_bp: dict[TillKind, BasisPoints] = msgspec.field(
        default_factory=_default_points_rate_bp
    )
    # Meal plans by id, each with its daily cap in yen.
    meal_plans: dict[str, Yen] = msgspec.field(default_factory=_default_meal_plans)
    # The most a purse may hold; charges, moves and enrolment deposits above it are refused.
    purse_balance_max_yen: dict[Purse, Yen] = msgspec.field(default_factory=_default_purse_max)
    # Bounds on one charge (FLOWS §6: the amount is built from +1,000 … +100,000 buttons).
    charge_min_yen: Yen = 1_000
    charge_max_yen: Yen = 100_000
    # Bounds on one payment at a till.
    payment_max_yen: Yen = 100_000
    # What each purse becomes when a member withdraws at graduation (脱退); the default
    # pays back every purse of money whole and lets points lapse (`domain.withdrawal`).
    withdrawal: WithdrawalRule = msgspec.field(default_factory=WithdrawalRule)

    def __post_init__(self) -> None:
        for kind in TillKind:
            order = self.spend_orders.get(kind)
            if not order:
                raise ValueError(f"spend_orders has no order for till kind {kind.value!r}")
            if len(set(order)) != len(order):
                raise ValueError(f"spend_orders.{kind.value} names a purse twice")
            if kind not in self.points_rate_bp:
                raise ValueError(f"points_rate_bp has no rate for till kind {kind.value!r}")
        for purse in PURSES:
            if purse not in self.purse_balance_max_yen:
                raise ValueError(f"purse_balance_max_yen has no maximum for {purse.value!r}")
        if self.charge_min_yen > self.charge_max_yen:
            raise ValueError("charge_min_yen is above charge_max_yen")
        try:
            ZoneInfo(self.timezone)
        except Exception as error:
            raise ValueError(f"timezone {self.timezone!r} is unknown") from error

    def day_of(self, at_ms: int) -> int:
        """The co-op's day of an instant: the meal cap's day (see `days.coop_day`)."""
        return coop_day(at_ms, self.timezone)
