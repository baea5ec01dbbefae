"""The books' tests: a clock the test moves, and instants named in Tokyo's time."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

TOKYO = ZoneInfo("Asia/Tokyo")


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def tokyo_ms(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=TOKYO).timestamp() * 1000)


@pytest.fixture
def clock() -> Clock:
    return Clock(tokyo_ms(2026, 4, 1))
