"""One replica against three, with and without a stalling disk, side by side in one run.

Issue 16's question: a tap waits for its group commit's flush, and this host's disk
stalls now and then; does acknowledging once a majority of three replicas hold a commit
take the disk's stalls off the tap's tail? Four nodes are run in turn, each with the
embedded defaults (one wallet shard, fsync on) and one change:

  one replica                      the shard as it was
  one replica, stalling disk       its flushes stall 250 ms, at random about every 2 s
  three replicas                   each with its own LMDB log and books (on this one disk)
  three replicas, one stalling     replica 0's flushes stall as above (the first
                                   primary's: its own flush is one vote of three)

The stalls come from the storage fault hook (`replication.storage_fault`, refused in
production), seeded, so both stalling runs stall alike. For each node: taps over the
real till channel from a second process, a fixed 2,000 taps/s for `--seconds`, then the
highest rate whose p99 (tap to decision) stays under 10 ms. All four replicas share
this machine's one disk and two cores, so three replicas also pay for three logs and
three sets of books on one device; on a cluster each has its own host.

Run: .venv/bin/python -m benchmarks.replicas [--seconds 10] [--tills 64]
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import msgspec

from benchmarks.tills import (
    FIXED_RATE_PER_S,
    OBJECTIVE_MS,
    REPO,
    SEARCH_START_PER_S,
    commit_durations,
    finish,
    load_process,
    setup_node,
)
from coopnode.loadtest.node_process import NodeProcess, remove_tree, short_tmpdir

STALL_MS = 250
STALL_EVERY_MS = 2_000
_STALLS = {
    "COOPNODE_REPLICATION__STORAGE_FAULT__REPLICA": "0",
    "COOPNODE_REPLICATION__STORAGE_FAULT__STALL_MS": str(STALL_MS),
    "COOPNODE_REPLICATION__STORAGE_FAULT__EVERY_MS": str(STALL_EVERY_MS),
}
CONFIGURATIONS: tuple[tuple[str, dict[str, str]], ...] = (
    ("one replica", {}),
    ("one replica, stalling disk", _STALLS),
    ("three replicas", {"COOPNODE_REPLICATION__REPLICA_COUNT": "3"}),
    ("three replicas, one stalling", {"COOPNODE_REPLICATION__REPLICA_COUNT": "3", **_STALLS}),
)


def run_one(label: str, node_env: dict[str, str], seconds: float, tills: int) -> dict[str, Any]:
    data_dir = short_tmpdir("cnbrep")
    env = {"COOPNODE_LOG__LEVEL": "warning", "COOPNODE_TILL__DEMO_TILL": "false", **node_env}
    node = NodeProcess(data_dir, cwd=REPO, env=env)
    try:
        settings = node.effective_settings()
        node.start()
        setup = asyncio.run(setup_node(node, tills))
        setup_path = data_dir / "tills-setup.json"
        setup_path.write_bytes(msgspec.json.encode(setup))
        figures = finish(
            load_process(
                setup_path, "--rate-fixed", str(FIXED_RATE_PER_S), "--duration", str(seconds),
                "--search", "--rate", str(SEARCH_START_PER_S), "--step-factor", "1.4",
                "--objective-ms", str(OBJECTIVE_MS),
                "--search-duration", str(max(4.0, seconds / 2)),
            )
        )  # fmt: skip
        status, audit = node.request("GET", "/api/v1/audit")
        figures["books_balanced"] = status == 200 and audit["balanced"]
        figures["replicas"] = settings.replication.replica_count
        figures["label"] = label
        if settings.replication.replica_count == 1:
            figures["commits"] = commit_durations(node)
        return figures
    finally:
        node.stop()
        remove_tree(data_dir)


def summary(runs: list[dict[str, Any]]) -> str:
    reference = runs[0]["fixed"]["latency_p99_ms"]
    lines = [
        f"Till taps, {FIXED_RATE_PER_S:,.0f}/s fixed then the highest rate with p99 < "
        f"{OBJECTIVE_MS:g} ms (stalls: {STALL_MS} ms, about every {STALL_EVERY_MS / 1000:g} s):"
    ]
    for figures in runs:
        fixed, search = figures["fixed"], figures["search"]
        lines.append(
            f"  {figures['label']:<30} p50 {fixed['latency_p50_ms']:6.1f} ms  "
            f"p99 {fixed['latency_p99_ms']:6.1f} ms ({fixed['latency_p99_ms'] / reference:4.1f}× "
            f"one replica)  p99.9 {fixed['latency_p999_ms']:6.1f} ms  errors {fixed['errors']}  "
            f"held {search['max_rate_held_per_s']:,.0f}/s  books balanced "
            f"{figures['books_balanced']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tills", type=int, default=64)
    args = parser.parse_args(argv)
    runs = [run_one(label, env, args.seconds, args.tills) for label, env in CONFIGURATIONS]
    print(summary(runs))
    print(msgspec.json.encode(runs).decode())


if __name__ == "__main__":
    main()
