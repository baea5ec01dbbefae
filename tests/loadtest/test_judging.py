"""How the harness judges a run: lateness against the objective, blame, step lengths, priority."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time

import msgspec
import pytest

from coopnode.loadtest.harness import (
    LATE_SENDS_ALLOWED,
    Naming,
    RunFigures,
    Target,
    _Play,
    judge,
    late_threshold_s,
    step_workload,
)
from coopnode.loadtest.node_process import NICENESS_MAX, lower_priority
from coopnode.loadtest.openloop import Recorder
from coopnode.loadtest.scenarios import (
    SCENARIO_DIR,
    Op,
    Scenario,
    ScenarioError,
    build_workload,
    load_scenario,
    parse_scenario,
)

TERM_START = load_scenario("term-start")  # Card charges judged at p99 <= 50 ms.
LUNCH_RUSH = load_scenario("lunch-rush")  # Taps judged at p99 <= 10 ms.


def test_late_is_a_tenth_of_the_objective_and_never_under_two_milliseconds() -> None:
    assert late_threshold_s(50.0) == pytest.approx(0.005)
    assert late_threshold_s(10.0) == pytest.approx(0.002)
    assert late_threshold_s(1.0) == pytest.approx(0.002)
    assert late_threshold_s(400.0) == pytest.approx(0.040)


@pytest.mark.parametrize(("scenario", "late"), [(TERM_START, 0), (LUNCH_RUSH, 1)])
def test_a_send_three_milliseconds_late_counts_only_against_a_tight_objective(
    scenario: Scenario, late: int
) -> None:
    ops = [Op(at_s=0.0, kind=scenario.objective.kind, member=0)]
    play = _Play(Target("http://node", "token", scenario, Naming(prefix=1)), ops, 0.0)
    play.sent(scenario.objective.kind, time.monotonic() - 0.003)
    assert play.overall.late_sends == late
    assert play.by_kind[scenario.objective.kind].late_sends == late
    expected_ms = late_threshold_s(scenario.objective.p99_ms) * 1000
    assert play.overall.result("u", "fixed", 1.0, 1.0, 1, 1.0).schedule_lag_threshold_ms == (
        pytest.approx(expected_ms)
    )


def figures(scenario: Scenario, latency_ms: float, lags_ms: list[float]) -> RunFigures:
    """A run of `len(lags_ms)` objective operations, each sent that late, each answered in
    `latency_ms` from its scheduled time; recorded by the harness's own recorders."""
    kind = scenario.objective.kind
    threshold_s = late_threshold_s(scenario.objective.p99_ms)
    overall, recorder = Recorder(0.0, threshold_s), Recorder(0.0, threshold_s)
    for index, lag_ms in enumerate(lags_ms):
        intended_s = index * 0.01
        for each in (overall, recorder):
            each.record_send(lag_ms / 1000)
            each.record_outcome(
                intended_s, intended_s + latency_ms / 1000, None, True, intended_s + lag_ms / 1000
            )
    end_s = len(lags_ms) * 0.01 + 1.0
    for each in (overall, recorder):
        each.finish(end_s)
    result = overall.result("u", "poisson", 100.0, 1.0, 1, end_s)
    late = result.late_sends
    return RunFigures(
        peak_rate_per_s=100.0, offered_rate_per_s=100.0, achieved_rate_per_s=100.0,
        duration_s=1.0, operations=len(lags_ms), overall=result,
        by_kind={kind: recorder.result("u", "poisson", 100.0, 1.0, 1, end_s)},
        declines_by_reason={}, meal_cap_reached=0, offered_per_second=[len(lags_ms)],
        generator_kept_schedule=late <= max(0.01 * result.sent, LATE_SENDS_ALLOWED),
    )  # fmt: skip


def test_a_run_that_met_its_objective_held_however_late_the_generator_was() -> None:
    # Every send 20 ms late, every answer 30 ms after its scheduled time: the lag is inside
    # the 30 ms judged, so the node answered well within the 50 ms objective.
    run = figures(TERM_START, 30.0, [20.0] * 200)
    assert not run.generator_kept_schedule
    verdict, detail = judge(TERM_START, run)
    assert verdict == "held"
    assert "200 of 200 sends later than 5 ms" in detail


def test_a_broken_objective_is_blamed_on_a_generator_behind_its_schedule() -> None:
    run = figures(TERM_START, 80.0, [20.0] * 200)
    verdict, detail = judge(TERM_START, run)
    assert verdict == "generator"
    assert "p99 80" in detail


def test_a_node_too_slow_even_from_the_actual_sends_is_blamed_though_the_generator_lagged() -> None:
    # Sends 20 ms late, answers 200 ms after the schedule: 180 ms from the actual sends, far
    # beyond 50 ms even with the 20 ms lag allowed once more for reading the answers late.
    run = figures(TERM_START, 200.0, [20.0] * 200)
    assert not run.generator_kept_schedule
    verdict, detail = judge(TERM_START, run)
    assert verdict == "p99"
    assert "the node's own" in detail
    # 80 ms after the schedule is 60 ms after the sends, within 50 + 20: not the node's.
    assert judge(TERM_START, figures(TERM_START, 80.0, [20.0] * 200))[0] == "generator"


def test_lags_under_a_tenth_of_the_objective_leave_the_blame_with_the_node() -> None:
    # 4 ms late under a 50 ms objective is not late: the 80 ms p99 is the node's.
    assert judge(TERM_START, figures(TERM_START, 80.0, [4.0] * 200))[0] == "p99"
    # The same lag under a 10 ms objective is late, and the generator is blamed.
    assert judge(LUNCH_RUSH, figures(LUNCH_RUSH, 12.0, [4.0] * 200))[0] == "generator"


def test_a_few_late_sends_do_not_excuse_a_broken_objective() -> None:
    lags_ms = [0.5] * 995 + [30.0] * LATE_SENDS_ALLOWED
    run = figures(TERM_START, 80.0, lags_ms)
    assert run.generator_kept_schedule
    assert judge(TERM_START, run)[0] == "p99"


def objective_samples(scenario: Scenario, ops: list[Op]) -> int:
    return sum(op.kind == scenario.objective.kind for op in ops)


def test_a_slow_step_runs_long_enough_for_its_p99_to_be_more_than_a_maximum() -> None:
    plan = TERM_START.search
    short = build_workload(TERM_START, plan.start_rate_per_s, plan.step_duration_s, 1)
    assert objective_samples(TERM_START, short) < plan.objective_samples_min
    ops, duration_s = step_workload(TERM_START, plan.start_rate_per_s, 1)
    assert plan.step_duration_s < duration_s <= plan.step_duration_max_s
    # The stretch aims at the minimum; Poisson arrivals land near it, not on it.
    assert objective_samples(TERM_START, ops) >= 0.8 * plan.objective_samples_min
    assert not any(op.kind == "report_lost" for op in ops)


def test_a_fast_step_keeps_its_length_and_a_long_one_stops_at_the_maximum() -> None:
    _, duration_s = step_workload(LUNCH_RUSH, LUNCH_RUSH.search.start_rate_per_s, 1)
    assert duration_s == LUNCH_RUSH.search.step_duration_s
    capped = msgspec.structs.replace(
        TERM_START,
        search=msgspec.structs.replace(TERM_START.search, step_duration_max_s=8.0),
    )
    _, duration_s = step_workload(capped, 1.0, 1)
    assert duration_s == 8.0


def test_a_maximum_step_shorter_than_the_step_is_refused() -> None:
    text = (SCENARIO_DIR / "term-start.toml").read_bytes()
    bad = text.replace(b"step_duration_s = 6.0", b"step_duration_s = 6.0\nstep_duration_max_s = 2")
    with pytest.raises(ScenarioError, match="step_duration_max_s"):
        parse_scenario(bad)


PRIORITY = """
import os
from pathlib import Path
group = Path("/proc/self/autogroup")
print(os.nice(0), group.read_text().split()[-1] if group.exists() else "none")
"""


def test_the_node_session_runs_at_the_lower_priority_it_was_given() -> None:
    """The child's own nice value and its new session's group both drop, as Ray inherits."""
    parent = os.nice(0)
    child = subprocess.run(
        [sys.executable, "-c", PRIORITY], capture_output=True, text=True, check=True,
        start_new_session=True, preexec_fn=functools.partial(lower_priority, 7),
    )  # fmt: skip
    nice, group = child.stdout.split()
    assert int(nice) == min(parent + 7, NICENESS_MAX)
    if group != "none":
        assert group == "7"
    with pytest.raises(ValueError, match="niceness"):
        lower_priority(NICENESS_MAX + 1)
