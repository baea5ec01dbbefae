"""The co-op's day: the calendar day an instant falls on where the co-op is.

A day ends at midnight in Japan for everything counted by the day: a meal plan's daily
cap, the window for voiding today's payments, and the yen a card may spend in a day at a
till that cannot reach the node. The till and the node ask the same function, so a tap
at 23:30 UTC (08:30 the next morning in Tokyo) falls on the same day for both, whatever
time zone the till's host is set to.
"""

from __future__ import annotations

import functools
from datetime import datetime
from zoneinfo import ZoneInfo

# Every co-op this node serves is in Japan; a co-op's rules may name another zone.
COOP_TIMEZONE = "Asia/Tokyo"


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def coop_day(at_ms: int, timezone: str = COOP_TIMEZONE) -> int:
    """The day (a proleptic Gregorian ordinal) of an instant given in ms since the epoch."""
    return datetime.fromtimestamp(at_ms // 1_000, _zone(timezone)).date().toordinal()
