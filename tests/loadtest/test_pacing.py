"""The one pacing rule of the generators, on a loop whose clock the test moves."""

from __future__ import annotations

import asyncio
import time

import pytest

from coopnode.loadtest.pacing import Pacer


async def test_a_send_behind_schedule_goes_at_once_and_yields_every_few() -> None:
    pacer = Pacer(yield_every=3)
    yields = 0
    original_sleep = asyncio.sleep

    async def counting_sleep(delay_s: float) -> None:
        nonlocal yields
        assert delay_s == 0, "a send behind schedule never waits"
        yields += 1
        await original_sleep(0)

    past_s = time.monotonic() - 10.0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asyncio, "sleep", counting_sleep)
        for _ in range(7):
            await pacer.until(past_s)
    assert yields == 2  # After the third and the sixth send.


async def test_a_send_ahead_of_schedule_waits_for_its_time() -> None:
    pacer = Pacer(yield_every=3)
    waited: list[float] = []

    async def recording_sleep(delay_s: float) -> None:
        waited.append(delay_s)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asyncio, "sleep", recording_sleep)
        await pacer.until(time.monotonic() + 60.0)
    assert len(waited) == 1 and 59.0 < waited[0] <= 60.0


def test_a_pacer_yields_at_least_every_send() -> None:
    with pytest.raises(ValueError, match="at least"):
        Pacer(yield_every=0)
