"""How a payment is split across a member's purses."""

from __future__ import annotations

from coopnode.domain.money import Purse, Purses


def allocate(
    amount_yen: int,
    order: list[Purse],
    balances: Purses,
    meal_remaining_today_yen: int,
) -> Purses | None:
    """Split `amount_yen` over the purses in `order`; None when they cannot cover it.

    The meal plan gives at most what remains of today's cap. The result holds the
    positive amount taken from each purse and sums to `amount_yen`.
    """
    taken, shortfall = allocate_upto(amount_yen, order, balances, meal_remaining_today_yen)
    return None if shortfall else taken


def allocate_upto(
    amount_yen: int,
    order: list[Purse],
    balances: Purses,
    meal_remaining_today_yen: int,
) -> tuple[Purses, int]:
    """Take as much of `amount_yen` as the purses in `order` hold; return it and the rest.

    An offline tap is booked whatever the balance, so it takes what there is and leaves
    the shortfall to be recorded as an overdraft.
    """
    remaining = amount_yen
    taken: dict[Purse, int] = {}
    for purse in order:
        if remaining == 0:
            break
        available = balances.get(purse)
        if purse is Purse.MEAL:
            available = min(available, meal_remaining_today_yen)
        take = min(available, remaining)
        if take > 0:
            taken[purse] = take
            remaining -= take
    return Purses.of(taken), remaining


def refund_split(
    amount_yen: int, order: list[Purse], paid: Purses, already_refunded: Purses
) -> Purses:
    """Split a refund back over the purses that paid, the last-spent purse first.

    The caller has checked that `amount_yen` is at most what remains refundable.
    """
    remaining = amount_yen
    back: dict[Purse, int] = {}
    for purse in reversed(order):
        refundable = paid.get(purse) - already_refunded.get(purse)
        give = min(refundable, remaining)
        if give > 0:
            back[purse] = give
            remaining -= give
    return Purses.of(back)


def points_for(money_paid: Purses, rate_bp: int) -> int:
    """Points earned on the part paid with money purses (not the meal plan, not points)."""
    eligible = money_paid.cafeteria + money_paid.textbook + money_paid.base
    return eligible * rate_bp // 10_000
