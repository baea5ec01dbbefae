"""The queue-wait estimate from the tap rate (Sakasegawa's M/M/c approximation)."""

from __future__ import annotations

import pytest

from coopnode.domain.queue_wait import estimate_wait


def test_one_till_is_exactly_m_m_1() -> None:
    # 2.5 members a minute at 12 s each: the till busy half the time, Wq = s·ρ/(1−ρ) = 12 s.
    estimate = estimate_wait(2.5, tills=1, service_s=12.0)
    assert estimate.utilisation == pytest.approx(0.5)
    assert estimate.wait_s == 12 and not estimate.over_capacity


def test_more_tills_for_the_same_load_wait_less() -> None:
    waits = [estimate_wait(8.0, tills=c, service_s=12.0).wait_s for c in (2, 3, 4)]
    assert waits[0] is not None and waits[1] is not None and waits[2] is not None
    assert waits[0] > waits[1] > waits[2] >= 0


def test_no_load_no_wait_and_a_full_store_is_over_capacity() -> None:
    assert estimate_wait(0.0, tills=3, service_s=12.0).wait_s == 0
    full = estimate_wait(15.0, tills=3, service_s=12.0)  # ρ = 1.0
    assert full.over_capacity and full.wait_s is None
    # Taps from tills since gone: no till to queue at, no estimate.
    gone = estimate_wait(4.0, tills=0, service_s=12.0)
    assert gone.wait_s is None and not gone.over_capacity
