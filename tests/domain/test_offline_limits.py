"""The co-op's day, and what the node takes of a tap a till sold offline: the limits the
till sold under, if the node gave it them and they were in force when the tap is dated."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from coopnode.domain.days import coop_day
from coopnode.domain.money import Reason
from coopnode.domain.offline import (
    LIMITS_HISTORY_KEPT_MAX,
    LimitsSent,
    limits_in_force,
    node_offline_refusal,
    noted,
)
from coopnode.domain.rules import CoopRules
from coopnode.domain.till_frames import OfflineLimits

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
SKEW_MS = 300_000
OLD = OfflineLimits(tap_max_yen=800, card_day_max_yen=3_000, queue_max_taps=100)
NEW = OfflineLimits(
    tap_max_yen=500, card_day_max_yen=3_000, queue_max_taps=100, tap_age_max_ms=DAY_MS
)
T0 = 1_770_000_000_000
# The old limits went to the till at T0, the new ones when it connected again a day later.
HISTORY = [LimitsSent(sent_at_ms=T0, limits=OLD), LimitsSent(sent_at_ms=T0 + DAY_MS, limits=NEW)]


def utc_ms(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1_000)


def test_the_co_op_day_turns_at_midnight_in_tokyo_not_in_utc() -> None:
    march_31 = datetime(2026, 3, 31).toordinal()
    assert coop_day(utc_ms(2026, 3, 31, 14, 59, 59)) == march_31  # 23:59:59 in Tokyo
    assert coop_day(utc_ms(2026, 3, 31, 15, 0, 0)) == march_31 + 1  # midnight in Tokyo
    # A tap at 23:30 UTC is 08:30 the next morning in Tokyo.
    assert coop_day(utc_ms(2026, 3, 31, 23, 30)) == march_31 + 1
    # The meal cap's day is the same function's.
    at = utc_ms(2026, 3, 31, 23, 30)
    assert CoopRules().day_of(at) == coop_day(at)


def test_each_entry_is_in_force_until_the_next_give_or_take_the_clock_skew() -> None:
    assert limits_in_force(HISTORY, T0 - SKEW_MS - 1, SKEW_MS) == []
    assert limits_in_force(HISTORY, T0 - SKEW_MS, SKEW_MS) == [OLD]
    assert limits_in_force(HISTORY, T0 + DAY_MS, SKEW_MS) == [OLD, NEW]
    assert limits_in_force(HISTORY, T0 + DAY_MS + SKEW_MS, SKEW_MS) == [NEW]
    assert limits_in_force([], T0, SKEW_MS) == []


def judge(stated: OfflineLimits | None, amount_yen: int, at_ms: int, now_ms: int) -> object:
    return node_offline_refusal(
        stated=stated, current=NEW, history=HISTORY, amount_yen=amount_yen,
        at_ms=at_ms, now_ms=now_ms, skew_ms=SKEW_MS,
    )  # fmt: skip


def test_a_tap_sold_under_limits_since_lowered_stands() -> None:
    """¥800 under a limit of 800, forwarded after the limit became 500, three days
    after the sale (the new cut-off is one day; the one it was sold under, a week)."""
    sold_at = T0 + DAY_MS // 2
    assert judge(OLD, 800, sold_at, now_ms=T0 + 3 * DAY_MS) is None
    # Beyond what it was sold under, it is refused.
    assert judge(OLD, 801, sold_at, T0 + 3 * DAY_MS) == (
        Reason.ABOVE_MAXIMUM, "above the offline tap limit of 800 yen",
    )  # fmt: skip
    assert judge(OLD, 800, sold_at, sold_at + WEEK_MS + 1)[0] is Reason.INVALID_INPUT  # type: ignore[index]


def test_a_till_key_cannot_claim_limits_the_node_did_not_give_it_then() -> None:
    forged = msgspec.structs.replace(OLD, tap_max_yen=100_000)
    now = T0 + 2 * DAY_MS
    refusal = judge(forged, 5_000, now - 1_000, now)
    assert refusal is not None and refusal[0] is Reason.INVALID_INPUT  # type: ignore[index]
    # The old limits, dated after the new ones went out: the till had the new ones then.
    refusal = judge(OLD, 800, T0 + DAY_MS + SKEW_MS + 1, now)
    assert refusal is not None and refusal[0] is Reason.INVALID_INPUT  # type: ignore[index]
    # Nor dated ahead of the node's clock, whatever the limits.
    assert judge(NEW, 100, now + SKEW_MS + 1, now)[0] is Reason.INVALID_INPUT  # type: ignore[index]


def test_a_tap_that_states_no_limits_is_judged_by_the_current_ones() -> None:
    now = T0 + 2 * DAY_MS
    assert judge(None, 500, now - 1_000, now) is None
    assert judge(None, 600, now - 1_000, now)[0] is Reason.ABOVE_MAXIMUM  # type: ignore[index]


def test_the_history_grows_only_when_the_limits_change_and_forgets_only_its_oldest() -> None:
    assert noted(HISTORY, LimitsSent(sent_at_ms=T0 + 5 * DAY_MS, limits=NEW), T0, SKEW_MS) == (
        HISTORY
    )
    # Once every tap the old limits could cover is past their cut-off (a week after the
    # new ones went out), they go; until then they stay.
    back = LimitsSent(sent_at_ms=T0 + 8 * DAY_MS, limits=OLD)
    soon = T0 + DAY_MS + SKEW_MS + WEEK_MS
    assert noted(HISTORY, back, soon, SKEW_MS) == [*HISTORY, back]
    assert noted(HISTORY, back, soon + 1, SKEW_MS) == [*HISTORY[1:], back]
    # NEW (a one-day cut-off) in the middle is not dropped while OLD before it stays:
    # OLD's time in force would stretch over NEW's.
    back = LimitsSent(sent_at_ms=T0 + DAY_MS + 3_600_000, limits=OLD)
    assert noted(HISTORY, back, T0 + 3 * DAY_MS, SKEW_MS) == [*HISTORY, back]
    many: list[LimitsSent] = []
    for number in range(LIMITS_HISTORY_KEPT_MAX + 5):
        limits = msgspec.structs.replace(NEW, tap_max_yen=number)
        many = noted(many, LimitsSent(sent_at_ms=T0 + number, limits=limits), T0, SKEW_MS)
    assert len(many) == LIMITS_HISTORY_KEPT_MAX
    assert many[0].limits.tap_max_yen == 5
