"""One delivery with its retries, the rule every channel follows.

Failures are outcomes, not exceptions: a send returns a `DeliveryOutcome` whose status is
SENT, REJECTED (permanent: a refused address, a message too large, SMTP 5xx, HTTP 4xx other
than 429; not retried) or FAILED (passing: connection refused, timeout, SMTP 4xx, HTTP 5xx
or 429; retried with exponential backoff until `send_retry_max`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec

from coopnode.actors.notify.messages import Channel, DeliveryOutcome, DeliveryStatus
from coopnode.settings import NotifierSettings

Sleep = Callable[[float], Awaitable[None]]


def backoff_delay_s(settings: NotifierSettings, retry_index: int) -> float:
    """The wait before retry number `retry_index` (0 for the first retry)."""
    delay_ms = min(settings.send_backoff_ms << retry_index, settings.send_backoff_max_ms)
    return delay_ms / 1000


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """The result of one attempt; FAILED means it may be tried again."""

    status: DeliveryStatus
    provider_id: str = ""
    error: str = ""
    detail: str = ""
    retry_after_s: float = 0.0


async def with_retries(
    attempt: Callable[[], Awaitable[Attempt]],
    *,
    channel: Channel,
    settings: NotifierSettings,
    sleep: Sleep,
) -> DeliveryOutcome:
    last = Attempt(status=DeliveryStatus.FAILED)
    attempts = 0
    for retry_index in range(-1, settings.send_retry_max):
        if retry_index >= 0:
            # A provider's Retry-After is honoured, but never beyond the configured ceiling.
            hint_s = min(last.retry_after_s, settings.send_backoff_max_ms / 1000)
            await sleep(max(backoff_delay_s(settings, retry_index), hint_s))
        attempts += 1
        last = await attempt()
        if last.status is not DeliveryStatus.FAILED:
            break
    return DeliveryOutcome(
        status=last.status,
        channel=channel,
        attempts=attempts,
        provider_id=last.provider_id,
        error=last.error,
        detail=last.detail,
    )


def rejected(channel: Channel, error: str) -> DeliveryOutcome:
    return DeliveryOutcome(status=DeliveryStatus.REJECTED, channel=channel, attempts=0, error=error)


def read_secret(path: str) -> str:
    return Path(path).read_text(encoding="utf-8").strip() if path else ""
