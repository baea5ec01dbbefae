"""Open-loop pacing: each send leaves at its intended time, whatever the answers do.

Every generator of the harness (HTTP, the till channel, the capacity scenarios) sends
through a `Pacer`, so that a late schedule is handled one way: a send whose time has come
goes at once, and a run of sends behind schedule yields to the event loop every
`yield_every` sends, so that answers are still read (and timed) while it catches up.
"""

from __future__ import annotations

import asyncio
import time


class Pacer:
    """Waits for each send's intended time on the monotonic clock."""

    def __init__(self, yield_every: int) -> None:
        if yield_every < 1:
            raise ValueError("a pacer yields at least every send")
        self._yield_every = yield_every
        self._behind = 0

    async def until(self, intended_s: float) -> None:
        """Return at `intended_s` (time.monotonic()), or at once if it has passed."""
        delay_s = intended_s - time.monotonic()
        if delay_s > 0:
            await asyncio.sleep(delay_s)
            self._behind = 0
            return
        self._behind += 1
        if self._behind >= self._yield_every:
            await asyncio.sleep(0)
            self._behind = 0
