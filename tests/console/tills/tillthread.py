"""A till for the browser tests: `RawTill` on an event loop of its own thread, since
Playwright's sync API holds the test's. Each call waits for its answer, bounded."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from nacl.signing import SigningKey

from coopnode.domain.till_frames import Decision
from tests.tillclient import TIMEOUT_S, RawTill

T = TypeVar("T")


class TillThread:
    def __init__(self, url: str, till_id: str, key: SigningKey) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.till = RawTill(url, till_id, key)

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(TIMEOUT_S)

    def open(self) -> TillThread:
        self._run(self.till.open())
        return self

    def tap(self, card: str, amount_yen: int) -> Decision:
        async def tap() -> Decision:
            return await self.till.decide(self.till.tap(card, amount_yen))

        return self._run(tap())

    def forward(self, card: str, amount_yen: int) -> Decision:
        """An offline sale forwarded when the till came back: signed with its key."""

        async def forward() -> Decision:
            body = self.till.tap(card, amount_yen, offline=True)
            return await self.till.decide(body, self.till.signed(body))

        return self._run(forward())

    def close(self) -> None:
        try:
            self._run(self.till.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(TIMEOUT_S)
            self._loop.close()
