"""What a co-op of a given size needs: hosts, fronts, shards and tills for its lunch peak.

The table is arithmetic on stated assumptions (the scenario's `[planning]` table) and on
two measured figures, the taps a second one front and one wallet shard hold within the
objective, so a co-op can change an assumption and see its effect. Every column is
printed with what it rests on beside it.

The capacities come from one run of the harness: a run that held C taps/s through F
fronts and S shards says a front holds C/F and a shard C/S. Both are lower bounds when
the fronts and shards shared one machine (each took CPU from the others), and the plan
says so; `[planning]` may give either figure measured apart instead.
"""

from __future__ import annotations

import math

import msgspec

from coopnode.loadtest.scenarios import Planning


class Capacity(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The taps a second one front and one shard hold within the objective, and whence."""

    front_taps_per_s: float
    front_source: str
    shard_taps_per_s: float
    shard_source: str


class PlanRow(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    members: int
    peak_taps_per_min: int
    peak_taps_per_s: float
    # The peak times the headroom: what the fronts and the shards are sized for.
    planned_taps_per_s: float
    tills: int
    # 0 where the capacity is unknown (no run held the objective).
    fronts: int
    shards: int
    # Every shard's replicas together (shards × replicas per shard).
    replicas: int
    hosts: int


class Assumption(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A column of the table and the assumption its figures rest on."""

    column: str
    rests_on: str


class Plan(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    capacity: Capacity
    assumptions: list[Assumption]
    rows: list[PlanRow]


def measured_capacity(held_taps_per_s: float, fronts: int, shards: int, source: str,
                      planning: Planning) -> Capacity:  # fmt: skip
    """A front's and a shard's capacity from a run that held `held` through both counts.

    A figure the planning table gives (measured apart) wins over the run's share.
    """
    if fronts < 1 or shards < 1:
        raise ValueError(f"a run has at least one front and one shard, not {fronts}, {shards}")
    shared = "a lower bound: the fronts and shards shared the run's machine"
    if planning.front_capacity_taps_per_s > 0:
        front, front_source = planning.front_capacity_taps_per_s, "given in [planning]"
    else:
        front = held_taps_per_s / fronts
        front_source = f"{source}: {held_taps_per_s:,.0f} taps/s over {fronts} front(s); {shared}"
    if planning.shard_capacity_taps_per_s > 0:
        shard, shard_source = planning.shard_capacity_taps_per_s, "given in [planning]"
    else:
        shard = held_taps_per_s / shards
        shard_source = f"{source}: {held_taps_per_s:,.0f} taps/s over {shards} shard(s); {shared}"
    return Capacity(front_taps_per_s=front, front_source=front_source,
                    shard_taps_per_s=shard, shard_source=shard_source)  # fmt: skip


def plan_row(members: int, capacity: Capacity, planning: Planning) -> PlanRow:
    """One co-op size: its lunch peak, and what holds that peak with the headroom."""
    mean_per_min = members * planning.lunch_tapping_share / planning.lunch_window_min
    peak_per_min = mean_per_min * planning.peak_to_mean
    planned_per_s = peak_per_min / 60 * planning.headroom
    tills = math.ceil(peak_per_min / planning.taps_per_till_per_min)
    by_members = math.ceil(members / planning.members_per_shard_max)
    fronts = shards = replicas = hosts = 0
    if capacity.front_taps_per_s > 0 and capacity.shard_taps_per_s > 0:
        fronts = max(planning.fronts_min, math.ceil(planned_per_s / capacity.front_taps_per_s))
        shards = max(by_members, math.ceil(planned_per_s / capacity.shard_taps_per_s))
        replicas = shards * planning.replicas_per_shard
        hosts = planning.head_hosts + max(
            math.ceil(fronts / planning.fronts_per_host),
            math.ceil(replicas / planning.shards_per_host),
            # A shard's replicas are each on a host of their own.
            planning.replicas_per_shard,
        )
    return PlanRow(
        members=members,
        peak_taps_per_min=math.ceil(peak_per_min),
        peak_taps_per_s=round(peak_per_min / 60, 1),
        planned_taps_per_s=round(planned_per_s, 1),
        tills=tills,
        fronts=fronts,
        shards=shards,
        replicas=replicas,
        hosts=hosts,
    )


def _rate(taps_per_s: float) -> str:
    return f"{taps_per_s:,.0f} taps/s" if taps_per_s > 0 else "the taps/s (unknown)"


def assumptions(capacity: Capacity, planning: Planning) -> list[Assumption]:
    """What each column rests on, in the table's order."""
    return [
        Assumption(column="peak taps/s", rests_on=(
            f"{planning.lunch_tapping_share:.0%} of members tap once in a"
            f" {planning.lunch_window_min:g}-minute lunch window, and the busiest minute"
            f" carries {planning.peak_to_mean:g}× the window's mean rate")),
        Assumption(column="planned taps/s", rests_on=(
            f"the peak × {planning.headroom:g} headroom, for bursts within the minute and"
            " for a lost host's tills and members moving to the others")),
        Assumption(column="tills", rests_on=(
            f"a till serves at most {planning.taps_per_till_per_min:g} taps a minute (a"
            " queue of students paying in turn)")),
        Assumption(column="fronts", rests_on=(
            f"planned ÷ {_rate(capacity.front_taps_per_s)} a front holds"
            f" ({capacity.front_source}), and at least {planning.fronts_min}, so that a"
            " till whose front is lost has another")),
        Assumption(column="shards", rests_on=(
            f"planned ÷ {_rate(capacity.shard_taps_per_s)} a wallet shard holds"
            f" ({capacity.shard_source}), and at least members ÷"
            f" {planning.members_per_shard_max:,}, the most members a shard holds")),
        Assumption(column="replicas", rests_on=(
            f"each shard is {planning.replicas_per_shard} replica(s), each on a disk and a"
            " host of its own, acknowledging once a majority hold a commit (the primary"
            " does a shard's work; a backup writes the same log and books)")),
        Assumption(column="hosts", rests_on=(
            f"a host runs {planning.fronts_per_host} front(s) and {planning.shards_per_host}"
            " replica(s) (one of each on two cores), so the largest of fronts ÷"
            f" {planning.fronts_per_host}, replicas ÷ {planning.shards_per_host} and the"
            f" {planning.replicas_per_shard} hosts one shard's replicas need, plus"
            f" {planning.head_hosts} host(s) for Ray's head (its GCS and Redis)")),
    ]  # fmt: skip


def plan(capacity: Capacity, planning: Planning) -> Plan:
    """Hosts, fronts, shards and tills for each co-op size of the planning table."""
    rows = [plan_row(members, capacity, planning) for members in planning.co_op_sizes]
    return Plan(capacity=capacity, assumptions=assumptions(capacity, planning), rows=rows)


def unmeasured(reason: str) -> Capacity:
    """The capacity of a run that measured none: the plan then counts tills only."""
    return Capacity(front_taps_per_s=0.0, front_source=reason,
                    shard_taps_per_s=0.0, shard_source=reason)  # fmt: skip


def _count(value: int) -> str:
    return f"{value:,}" if value else "unknown"


def to_markdown(table: Plan) -> str:
    lines = [
        "# Capacity planning",
        "",
        "| members | peak taps/min | peak taps/s | planned taps/s | tills | fronts | shards"
        " | replicas | hosts |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in table.rows:
        lines.append(
            f"| {row.members:,} | {row.peak_taps_per_min:,} | {row.peak_taps_per_s:,.1f}"
            f" | {row.planned_taps_per_s:,.1f} | {row.tills:,} | {_count(row.fronts)}"
            f" | {_count(row.shards)} | {_count(row.replicas)} | {_count(row.hosts)} |"
        )
    lines += ["", "What each column rests on:", ""]
    lines += [f"- {item.column}: {item.rests_on}" for item in table.assumptions]
    return "\n".join(lines) + "\n"
