"""The development outbox: every mail, SMS and call the node sent, newest last, bounded
and in memory only (mails carry passcodes, so it never touches a disk)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque

import msgspec

from coopnode.actors.notify.messages import Channel, mask_recipient


class OutboxMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    # Increases by one with every message the outbox takes; `wait_for(after=...)` uses it.
    sequence: int
    channel: Channel
    to: str
    sender: str
    subject: str
    body: str
    received_at_s: float

    def __repr__(self) -> str:
        return (
            f"OutboxMessage(sequence={self.sequence}, channel={self.channel.value!r}, "
            f"to={mask_recipient(self.to)!r})"
        )


class Outbox:
    """The newest `max_messages` mails, SMS and calls, in memory only.

    The development mail server adds mail from its own thread, so every access takes a
    lock, and waiters on other event loops are woken with `call_soon_threadsafe`.
    """

    def __init__(self, max_messages: int) -> None:
        self._lock = threading.Lock()
        self._messages: deque[OutboxMessage] = deque(maxlen=max_messages)
        self._sequence = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    @property
    def last_sequence(self) -> int:
        """The sequence of the newest message; pass it as `after` to wait for the next."""
        with self._lock:
            return self._sequence

    def add(self, *, channel: Channel, to: str, sender: str, subject: str, body: str) -> int:
        with self._lock:
            self._sequence += 1
            self._messages.append(
                OutboxMessage(
                    sequence=self._sequence,
                    channel=channel,
                    to=to,
                    sender=sender,
                    subject=subject,
                    body=body,
                    received_at_s=time.time(),
                )
            )
            waiters = list(self._waiters)
            sequence = self._sequence
        for loop, event in waiters:
            # A waiter whose loop has closed has given up waiting.
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)
        return sequence

    def list(
        self, to: str | None = None, channel: Channel | None = None
    ) -> tuple[OutboxMessage, ...]:
        """Messages oldest first, to one recipient and on one channel when given."""
        wanted = to.lower() if to is not None else None
        with self._lock:
            return tuple(
                message
                for message in self._messages
                if (wanted is None or message.to.lower() == wanted)
                and (channel is None or message.channel is channel)
            )

    def latest(self, to: str, channel: Channel | None = None) -> OutboxMessage | None:
        messages = self.list(to, channel)
        return messages[-1] if messages else None

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def _first_after(self, to: str, after: int, channel: Channel | None) -> OutboxMessage | None:
        for message in self.list(to, channel):
            if message.sequence > after:
                return message
        return None

    async def wait_for(
        self, to: str, *, after: int = 0, timeout_s: float, channel: Channel | None = None
    ) -> OutboxMessage:
        """The first message to `to` newer than sequence `after`; TimeoutError if none comes."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    # Clear before looking, so a message added after the look still wakes us.
                    waiter[1].clear()
                    found = self._first_after(to, after, channel)
                    if found is not None:
                        return found
                    await waiter[1].wait()
        except TimeoutError:
            raise TimeoutError(f"no message to {mask_recipient(to)} within {timeout_s} s") from None
        finally:
            with self._lock:
                self._waiters.discard(waiter)
