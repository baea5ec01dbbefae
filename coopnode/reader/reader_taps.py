"""The card reader as a till agent's source of taps, and the set-menu till's loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import cast

from coopnode.reader.felica import CardReader, Tap
from coopnode.reader.till_agent import TillAgent

# A set-menu till waits for the next card this long before it looks again.
FIXED_PRICE_WAIT_S = 3600.0


class ReaderTaps:
    """The card reader as the agent's tap source."""

    def __init__(self, reader: CardReader) -> None:
        self._reader = reader

    def drain(self) -> None:
        while self._reader.next_tap(0) is not None:
            continue

    async def next_tap(self, timeout_s: float) -> str | None:
        # A fresh iterator per sale, closed after it: cancelling a wait ends the iterator.
        generator = cast(AsyncGenerator[Tap, None], self._reader.taps())
        async with aclosing(generator) as taps:
            try:
                tap = await asyncio.wait_for(anext(taps), timeout_s)
            except (TimeoutError, StopAsyncIteration):
                return None
        return tap.idm


async def fixed_price_loop(agent: TillAgent, taps: ReaderTaps, amount_yen: int) -> None:
    """Every card tapped is a sale of `amount_yen` (a set-menu till, a kiosk, the demo)."""
    while True:
        idm = await taps.next_tap(FIXED_PRICE_WAIT_S)
        if idm is not None:
            await agent.charge(idm, amount_yen)
