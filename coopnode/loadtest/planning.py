"""What a co-op of a given size needs, from the tap capacity one node was measured to hold.

The table is arithmetic on stated assumptions (the scenario's `[planning]` table), so a
co-op can change an assumption and see its effect; every assumption is printed with it.
"""

from __future__ import annotations

import math

import msgspec

from coopnode.loadtest.scenarios import Planning


class PlanRow(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    members: int
    peak_taps_per_min: int
    tills: int
    nodes: int
    shards: int


class Plan(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    node_capacity_taps_per_s: float
    capacity_source: str
    assumptions: list[str]
    rows: list[PlanRow]


def plan(capacity_taps_per_s: float, source: str, planning: Planning) -> Plan:
    """Nodes, shards and tills for each co-op size, with the node held to `capacity`."""
    assumptions = [
        f"one node holds {capacity_taps_per_s:,.0f} taps/s within the objective ({source})",
        f"{planning.lunch_tapping_share:.0%} of members tap once in a"
        f" {planning.lunch_window_min:g}-minute lunch window",
        f"the busiest minute carries {planning.peak_to_mean:g}× the window's mean rate",
        f"a till serves at most {planning.taps_per_till_per_min:g} taps a minute (a queue of"
        " students paying in turn)",
        f"nodes are sized for {planning.headroom:g}× the peak, to absorb bursts and a lost node",
        f"each node runs {planning.shards_per_node} wallet shard(s) (one on a two-core node,"
        " whose other core the front needs), and a shard holds at most"
        f" {planning.members_per_shard_max:,} members",
    ]
    rows = []
    for members in planning.co_op_sizes:
        mean_per_min = members * planning.lunch_tapping_share / planning.lunch_window_min
        peak_per_min = mean_per_min * planning.peak_to_mean
        tills = math.ceil(peak_per_min / planning.taps_per_till_per_min)
        if capacity_taps_per_s > 0:
            nodes = max(1, math.ceil(peak_per_min / 60 * planning.headroom / capacity_taps_per_s))
        else:
            nodes = 0
        shards = max(
            nodes * planning.shards_per_node, math.ceil(members / planning.members_per_shard_max)
        )
        rows.append(
            PlanRow(
                members=members,
                peak_taps_per_min=math.ceil(peak_per_min),
                tills=tills,
                nodes=nodes,
                shards=shards,
            )
        )
    return Plan(
        node_capacity_taps_per_s=capacity_taps_per_s,
        capacity_source=source,
        assumptions=assumptions,
        rows=rows,
    )


def to_markdown(table: Plan) -> str:
    lines = [
        "# Capacity planning",
        "",
        "| members | peak taps per minute | tills | nodes | shards |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in table.rows:
        nodes = str(row.nodes) if row.nodes else "unknown (no capacity measured)"
        lines.append(
            f"| {row.members:,} | {row.peak_taps_per_min:,} | {row.tills:,} | {nodes}"
            f" | {row.shards} |"
        )
    lines += ["", "Assumptions:", ""]
    lines += [f"- {assumption}" for assumption in table.assumptions]
    return "\n".join(lines) + "\n"
