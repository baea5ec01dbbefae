"""Taps through one front and through two, on a Ray cluster on this machine, fsync on and off.

What a second front costs (or gives) when both run on the same machine. For each of fsync
on and off, one cluster (`coopnode/loadtest/cluster.py`: Ray's head with its state in
Redis, hosts a and b each with its disk and its front, one wallet shard on a's disk) is
started with Ray's own commands; 1,000 members with cards and 64 tills are opened through
front a. Then, from a separate load process (`coopnode.loadtest.tills`), taps over the
till channel, each its own sealed frame, latency counted from its scheduled send:

  - one front: every till connected to front a;
  - two fronts: the tills dealt out over a and b in turn (`loadtest/fronts.py`);

and for each: a fixed 2,000 taps/s for `--seconds`; closed loop for as long, each till
keeping one tap in flight (the taps a second the layout sustains whatever their latency,
a figure a busy machine moves less than a p99); then a capacity search for the highest
rate whose p99 stays within 10 ms (steps of `--search-seconds`, a broken step run twice).
Within a cluster the two layouts alternate (`--rounds`), so that a host that drifts
drifts under both; front b and host b run idle during the one-front runs. After the runs
the books are audited once through front a.

Run: .venv/bin/python -m benchmarks.fronts [--seconds 5 --search-seconds 3 --rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import time
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.tills import REPO, finish, load_process, setup_node
from coopnode.loadtest.cluster import running_cluster, wait_healthy
from coopnode.loadtest.node_process import NodeProcess, durability
from coopnode.loadtest.tills import TillLoadSetup

OBJECTIVE_MS = 10.0
FIXED_RATE_PER_S = 2_000.0
# The search starts below what a two-core machine shared with other work holds (on one
# such hour 500 taps/s already broke the objective), and climbs by half.
SEARCH_START_PER_S = 100.0
SEARCH_STEP_FACTOR = 1.5
SEARCH_MAX_PER_S = 20_000.0
TILLS = 64
MEMBERS = 1_000
FRONT_COUNTS = (1, 2)
DURABILITY = {"fsync on": "true", "fsync off": "false"}
# Each load process numbers its taps from its own block, so that no two reuse a number
# (a front refuses a number it has seen with other content as a replay).
SEQ_BLOCK = 10_000_000
# The fronts' own chatter stays out of the way, and the demo till spends nobody's money.
FRONT_ENV = {"COOPNODE_LOG__LEVEL": "warning", "COOPNODE_TILL__DEMO_TILL": "false"}


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def measure(setup: TillLoadSetup, urls: list[str], run_index: int, work: Path,
            seconds: float, search_s: float) -> dict[str, Any]:  # fmt: skip
    """One layout: the tills dealt out over `urls`, a fixed run then a search."""
    spread = msgspec.structs.replace(setup, fronts=urls, first_seq=1 + run_index * SEQ_BLOCK)
    path = work / f"tills-{run_index}.json"
    path.write_bytes(msgspec.json.encode(spread))
    started = time.monotonic()
    figures = finish(
        load_process(
            path, "--rate-fixed", str(FIXED_RATE_PER_S), "--duration", str(seconds),
            "--closed-tills", str(len(setup.tills)), "--search", "--rate", str(SEARCH_START_PER_S),
            "--step-factor", str(SEARCH_STEP_FACTOR), "--objective-ms", str(OBJECTIVE_MS),
            "--search-duration", str(search_s), "--max-rate", str(SEARCH_MAX_PER_S),
        )
    )  # fmt: skip
    figures["fronts"] = len(urls)
    figures["took_s"] = round(time.monotonic() - started, 1)
    return figures


def run_durability(fsync: str, seconds: float, search_s: float, rounds: int) -> dict[str, Any]:
    """One cluster with `fsync`, both layouts measured `rounds` times, alternating."""
    env = {**FRONT_ENV, "COOPNODE_WALLET__FSYNC": fsync}
    front = functools.partial(NodeProcess, cwd=REPO)
    started = time.monotonic()
    with running_cluster(front, "cnbfr", hosts=("a", "b"), shard_count=1, env=env) as cluster:
        for each in cluster.fronts.values():
            wait_healthy(each)
        first = cluster.fronts["a"]
        settings = first.effective_settings()
        cluster_start_s = time.monotonic() - started
        setup = asyncio.run(setup_node(first, TILLS, MEMBERS))
        runs: list[dict[str, Any]] = []
        for round_index in range(rounds):
            order = FRONT_COUNTS if round_index % 2 == 0 else FRONT_COUNTS[::-1]
            for fronts in order:
                urls = cluster.urls[:fronts]
                runs.append(measure(setup, urls, len(runs), cluster.root, seconds, search_s))
        status, audit = first.request("GET", "/api/v1/audit")
        _, health = first.request("GET", "/healthz")
    return {
        "durability": durability(settings),
        "fsync": settings.wallet.fsync,
        "shards": len(health["shards"]),
        "cluster_start_s": round(cluster_start_s, 1),
        "runs": runs,
        "books_balanced": status == 200 and bool(audit.get("balanced")),
    }


def _best(runs: list[dict[str, Any]], fronts: int) -> tuple[float, float, float]:
    """The layout's best search, best p99 at the fixed rate and best closed loop."""
    mine = [run for run in runs if run["fronts"] == fronts]
    held = max(run["search"]["max_rate_held_per_s"] for run in mine)
    p99 = min(run["fixed"]["latency_p99_ms"] for run in mine)
    closed = max(run["closed"]["approved_per_s"] for run in mine)
    return held, p99, closed


def _ratio(two: float, one: float) -> str:
    return f"{two / one:.2f}" if one > 0 else "n/a"


def summary(figures: dict[str, Any]) -> str:
    lines = [
        f"Taps through one front and through two (a cluster on this machine: hosts a and b,"
        f" a front each, one wallet shard on a's disk; {TILLS} tills, {MEMBERS:,} members;"
        f" load average {figures['load_average_at_start']} at the start,"
        f" {figures['load_average_at_end']} at the end):"
    ]
    for measured in figures["durabilities"].values():
        one_held, one_p99, one_closed = _best(measured["runs"], 1)
        two_held, two_p99, two_closed = _best(measured["runs"], 2)
        errors = sum(run["fixed"]["errors"] for run in measured["runs"])
        lines.append(
            f"  {measured['durability']}, {measured['shards']} shard(s):"
            f" highest rate with p99 <= {OBJECTIVE_MS:g} ms: one front {one_held:,.0f}/s,"
            f" two fronts {two_held:,.0f}/s (two/one {_ratio(two_held, one_held)});"
            f" p99 at {FIXED_RATE_PER_S:,.0f}/s: one front {one_p99:.1f} ms, two fronts"
            f" {two_p99:.1f} ms (two/one {_ratio(two_p99, one_p99)}); closed loop, {TILLS}"
            f" tills: one front {one_closed:,.0f}/s, two fronts {two_closed:,.0f}/s (two/one"
            f" {_ratio(two_closed, one_closed)}); errors at the fixed rate {errors}; books"
            f" balanced: {measured['books_balanced']}"
        )
        for run in measured["runs"]:
            fixed, search, closed = run["fixed"], run["search"], run["closed"]
            lines.append(
                f"    {run['fronts']} front(s): at {FIXED_RATE_PER_S:,.0f}/s p50"
                f" {fixed['latency_p50_ms']:.1f} p99 {fixed['latency_p99_ms']:.1f} p99.9"
                f" {fixed['latency_p999_ms']:.1f} ms, errors {fixed['errors']}; closed loop"
                f" {closed['approved_per_s']:,.0f}/s (p99 {closed['latency_p99_ms']:.1f} ms);"
                " held"
                f" {search['max_rate_held_per_s']:,.0f}/s (limited by {search['limited_by']},"
                f" {len(search['steps'])} steps); {run['took_s']:g} s"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="the fixed-rate run's length")
    parser.add_argument("--search-seconds", type=float, default=3.0, help="each search step's")
    parser.add_argument("--rounds", type=int, default=1, help="both layouts, this many times")
    parser.add_argument(
        "--durability", choices=[*DURABILITY, "both"], default="both", help="fsync on, off or both"
    )
    args = parser.parse_args(argv)
    labels = list(DURABILITY) if args.durability == "both" else [args.durability]
    figures: dict[str, Any] = {"load_average_at_start": _load_average(), "durabilities": {}}
    for label in labels:
        figures["durabilities"][label] = run_durability(
            DURABILITY[label], args.seconds, args.search_seconds, args.rounds
        )
    figures["load_average_at_end"] = _load_average()
    print(summary(figures))
    print(msgspec.json.encode(figures).decode())


if __name__ == "__main__":
    main()
