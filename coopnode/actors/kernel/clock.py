"""The wall clock as the node's parts take it: a function that answers milliseconds.

Every part that dates something takes a `ClockMs` (the system's by default), so that a
test moves time by hand instead of waiting for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

ClockMs = Callable[[], int]


def system_ms() -> int:
    """Milliseconds since the Unix epoch, from the system's wall clock."""
    return time.time_ns() // 1_000_000
