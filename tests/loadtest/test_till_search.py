"""The till search judges its steps as the capacity harness does: late sends are inside
the latency, so a step within its objective held however late they were."""

from __future__ import annotations

from coopnode.loadtest.openloop import RunResult
from coopnode.loadtest.tills import judge_till_step


def step(p99_ms: float, late_sends: int, errors: int = 0) -> RunResult:
    """A step of 1,000 taps with the given p99, late sends and errors."""
    return RunResult(
        base_url="http://127.0.0.1:1/till/ws", arrival="fixed", offered_rate_per_s=100.0,
        duration_s=10.0, connections=64, scheduled=1_000, sent=1_000,
        completed=1_000 - errors, errors=errors, errors_by_reason={"timeout": errors},
        achieved_rate_per_s=100.0, latency_p50_ms=1.0, latency_p90_ms=2.0,
        latency_p99_ms=p99_ms, latency_p999_ms=p99_ms, latency_max_ms=p99_ms,
        latency_mean_ms=1.0, schedule_lag_threshold_ms=2.0, late_sends=late_sends,
        schedule_lag_p99_ms=3.0, schedule_lag_max_ms=9.0, dropped_by_generator=0,
        elapsed_s=10.0, time_series=[],
    )  # fmt: skip


def test_a_step_within_its_objective_held_however_late_its_sends() -> None:
    verdict, detail = judge_till_step(step(p99_ms=7.7, late_sends=150), 10.0)
    assert verdict == "held"
    assert "inside the latency" in detail and "15.0%" in detail


def test_a_broken_step_with_late_sends_is_put_down_to_the_generator() -> None:
    assert judge_till_step(step(p99_ms=25.0, late_sends=150), 10.0)[0] == "generator"


def test_a_step_on_schedule_is_judged_on_its_p99_and_its_errors() -> None:
    assert judge_till_step(step(p99_ms=4.0, late_sends=0), 10.0)[0] == "held"
    assert judge_till_step(step(p99_ms=11.0, late_sends=0), 10.0)[0] == "p99"
    assert judge_till_step(step(p99_ms=4.0, late_sends=0, errors=50), 10.0)[0] == "errors"
    # A late step with errors did not hold: late sends excuse no refused or lost tap.
    assert judge_till_step(step(p99_ms=4.0, late_sends=150, errors=50), 10.0)[0] == "generator"
