"""The planning table's arithmetic: hosts, fronts, shards and tills from a peak and capacities."""

from __future__ import annotations

import msgspec
import pytest

from coopnode.loadtest.planning import (
    measured_capacity,
    plan,
    plan_row,
    to_markdown,
    unmeasured,
)
from coopnode.loadtest.scenarios import Planning, load_scenario

# 30,000 members, 60% of them in a 90-minute window: 200 taps a minute on average, 500 in
# the busiest minute (2.5×), 8.33 taps/s, planned for 16.67 taps/s (2× headroom).
PLANNING = Planning(
    co_op_sizes=[30_000],
    lunch_tapping_share=0.6,
    lunch_window_min=90.0,
    peak_to_mean=2.5,
    taps_per_till_per_min=4.0,
    headroom=2.0,
    members_per_shard_max=50_000,
)


def test_a_run_s_capacity_is_shared_out_over_its_fronts_and_shards() -> None:
    capacity = measured_capacity(3_000.0, 2, 1, "a search", PLANNING)
    assert capacity.front_taps_per_s == 1_500.0
    assert capacity.shard_taps_per_s == 3_000.0
    assert "2 front(s)" in capacity.front_source and "lower bound" in capacity.front_source
    given = msgspec.structs.replace(PLANNING, shard_capacity_taps_per_s=900.0)
    apart = measured_capacity(3_000.0, 2, 1, "a search", given)
    assert apart.shard_taps_per_s == 900.0 and apart.shard_source == "given in [planning]"
    assert apart.front_taps_per_s == 1_500.0
    with pytest.raises(ValueError, match="at least one front"):
        measured_capacity(3_000.0, 0, 1, "a search", PLANNING)


def test_a_small_peak_needs_the_fewest_fronts_that_survive_a_lost_one() -> None:
    row = plan_row(30_000, measured_capacity(3_000.0, 1, 1, "run", PLANNING), PLANNING)
    assert row.peak_taps_per_min == 500
    assert row.peak_taps_per_s == pytest.approx(8.3)
    assert row.planned_taps_per_s == pytest.approx(16.7)
    assert row.tills == 125  # 500 taps a minute at 4 a till.
    assert row.fronts == 2  # fronts_min: a lost front's tills need another.
    assert row.shards == 1
    assert row.replicas == 3
    # The shard's three replicas each on a host of its own (the two fronts among them),
    # and the head's.
    assert row.hosts == 4
    alone = msgspec.structs.replace(PLANNING, replicas_per_shard=1)
    single = plan_row(30_000, measured_capacity(3_000.0, 1, 1, "run", alone), alone)
    assert (single.replicas, single.hosts) == (1, 3)  # Two fronts' hosts, and the head's.


def test_fronts_shards_and_hosts_follow_the_planned_rate_and_the_members() -> None:
    # 1,200,000 members: 20,000 taps a minute at the peak, 333.3 taps/s, 666.7 planned.
    big = msgspec.structs.replace(
        PLANNING, co_op_sizes=[1_200_000], shards_per_host=2, replicas_per_shard=1
    )
    capacity = measured_capacity(200.0, 2, 4, "run", big)  # 100/s a front, 50/s a shard.
    row = plan_row(1_200_000, capacity, big)
    assert row.planned_taps_per_s == pytest.approx(666.7)
    assert row.fronts == 7  # ceil(666.7 / 100)
    assert row.shards == 24  # max(ceil(666.7 / 50) = 14, 1,200,000 / 50,000 = 24)
    assert row.hosts == 1 + 12  # max(7 fronts one a host, 24 shards two a host) + head
    fewer_heads = msgspec.structs.replace(big, head_hosts=0)
    assert plan_row(1_200_000, capacity, fewer_heads).hosts == 12
    replicated = msgspec.structs.replace(big, replicas_per_shard=3)
    row = plan_row(1_200_000, capacity, replicated)
    assert (row.shards, row.replicas) == (24, 72)
    assert row.hosts == 1 + 36  # 72 replicas two a host, and the head's.


def test_without_a_measured_capacity_only_the_tills_are_counted() -> None:
    row = plan_row(30_000, unmeasured("no run held the objective"), PLANNING)
    assert (row.fronts, row.shards, row.replicas, row.hosts) == (0, 0, 0, 0)
    assert row.tills == 125
    text = to_markdown(plan(unmeasured("no run held the objective"), PLANNING))
    assert "| unknown | unknown | unknown | unknown |" in text


def test_every_column_is_printed_with_what_it_rests_on() -> None:
    scenario = load_scenario("lunch-rush")
    table = plan(measured_capacity(500.0, 1, 1, "a test", scenario.planning), scenario.planning)
    assert [row.members for row in table.rows] == scenario.planning.co_op_sizes
    assert all(row.fronts >= 2 and row.shards >= 1 and row.hosts >= 3 for row in table.rows)
    limit = scenario.planning.members_per_shard_max
    assert all(row.shards * limit >= row.members for row in table.rows)
    columns = [item.column for item in table.assumptions]
    assert columns == [
        "peak taps/s", "planned taps/s", "tills", "fronts", "shards", "replicas", "hosts"
    ]  # fmt: skip
    text = to_markdown(table)
    assert "What each column rests on" in text and "500 taps/s a front holds" in text
    assert "| hosts |" in text
