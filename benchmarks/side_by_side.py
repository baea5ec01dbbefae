"""The node's taps beside PostgreSQL's, in one run: open-loop p99 and closed-loop capacity.

The peer is `benchmarks/pg_debit_peer.sh` (vendored from the shared reference): one tap is
one durable debit of a member's purse and an idempotency-keyed journal row in one
transaction, driven by pgbench against a private PostgreSQL cluster on this machine,
fsync and synchronous_commit on. The node's tap is a sealed frame over the till channel
from a separate load process, answered once its group commit is flushed (unless the
node's settings turn fsync off: the summary says which). Both sides run the same
schedule, each run `--seconds` long (the peer's own default, 20 s), with the same number of
members (`--members`, 10,000; see MEMBERS), each tap debiting 500 yen:

  warm-up, closed loop, 16 clients (tills), 5 s, not counted
  closed_c16, closed_c64  closed loop with 16 and 64 clients: each keeps one tap in
                          flight and sends the next on its answer (the capacity)
  open_R1000, open_R2000  open loop at 1,000 and 2,000 taps/s over 64 clients; latency
                          counts from each tap's scheduled send

A round is the node's runs, then the peer's whole script; `--rounds 2` (the default) runs
node, peer, node, peer, so that a host that drifts over the quarter hour drifts under
both. A host's disk and CPU move both sides' figures, the ratio less, so the summary gives
the raw figures and node/peer: for a p99 below 1 means the node answered sooner, for a
capacity above 1 the node sustained more.

Run: .venv/bin/python -m benchmarks.side_by_side [--rounds 2] [--seconds 20] [--members N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.http_payments import free_port
from benchmarks.tills import setup_node
from coopnode.loadtest.node_process import NodeProcess, durability, remove_tree, short_tmpdir

REPO = Path(__file__).resolve().parent.parent
PEER_SCRIPT = Path(__file__).resolve().parent / "pg_debit_peer.sh"
# The peer's table, and the node's runs, by the peer's names.
WARMUP = "warmup"
CLOSED_16, CLOSED_64 = "closed_c16", "closed_c64"
OPEN_1000, OPEN_2000 = "open_R1000", "open_R2000"
WARMUP_S = 5.0  # As the peer's warm-up.
# The node's tills, as pgbench's clients: 64 in the open-loop runs and the larger closed one.
TILLS = 64
# Members on both sides (the peer's PGPEER_MEMBERS). The peer's own default is 100,000,
# but the node's members are opened and their cards bound through the staff API, and each
# card binding is a registry change fsynced on its own (staff make a few a minute): 100,000
# took more than ten minutes per round on the shared two-core host. `--members 100000`
# runs both sides at the peer's default.
MEMBERS = 10_000
# Each tap debits the peer's 500 yen.
TAP_YEN = 500
# Each load process numbers its taps from a new block: the node refuses a reused number.
SEQ_BLOCK = 10_000_000
# The peer installs, loads 100,000 members, runs pg_test_fsync and 11 runs: minutes.
PEER_TIMEOUT_S = 3_600


class Figures(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One side's figures from one round."""

    p99_at_1000_ms: float
    p99_at_2000_ms: float
    closed_16_per_s: float
    closed_64_per_s: float
    # Taps (transactions) that failed or were declined, over the four runs.
    errors: int

    @property
    def capacity_per_s(self) -> float:
        """The closed-loop capacity: the better of the two client counts."""
        return max(self.closed_16_per_s, self.closed_64_per_s)


class Ratios(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """node / peer for each figure; None where the peer's figure is 0."""

    p99_at_1000: float | None
    p99_at_2000: float | None
    closed_16: float | None
    closed_64: float | None
    capacity: float | None


def _ratio(node: float, peer: float) -> float | None:
    return node / peer if peer > 0 else None


def ratios(node: Figures, peer: Figures) -> Ratios:
    return Ratios(
        p99_at_1000=_ratio(node.p99_at_1000_ms, peer.p99_at_1000_ms),
        p99_at_2000=_ratio(node.p99_at_2000_ms, peer.p99_at_2000_ms),
        closed_16=_ratio(node.closed_16_per_s, peer.closed_16_per_s),
        closed_64=_ratio(node.closed_64_per_s, peer.closed_64_per_s),
        capacity=_ratio(node.capacity_per_s, peer.capacity_per_s),
    )


def median_figures(rounds: Sequence[Figures]) -> Figures:
    """Each figure's median over the rounds (errors summed)."""
    if not rounds:
        raise ValueError("no rounds to take a median of")
    return Figures(
        p99_at_1000_ms=statistics.median(f.p99_at_1000_ms for f in rounds),
        p99_at_2000_ms=statistics.median(f.p99_at_2000_ms for f in rounds),
        closed_16_per_s=statistics.median(f.closed_16_per_s for f in rounds),
        closed_64_per_s=statistics.median(f.closed_64_per_s for f in rounds),
        errors=sum(f.errors for f in rounds),
    )


# ---------------------------------------------------------------- the peer's output


class PeerSummaryError(ValueError):
    """The peer's summary lacks its table or a run the comparison needs."""


def parse_peer_table(summary: str) -> dict[str, dict[str, str]]:
    """The peer summary's results table: one row per run, by the column names it prints."""
    lines = summary.splitlines()
    header_at = next(
        (i for i, line in enumerate(lines) if line.split()[:2] == ["name", "sync_commit"]), None
    )
    if header_at is None:
        raise PeerSummaryError("the peer's summary has no results table")
    columns = lines[header_at].split()
    rows: dict[str, dict[str, str]] = {}
    for line in lines[header_at + 1 :]:
        if not line.strip():
            break
        cells = line.split()
        if len(cells) != len(columns):
            raise PeerSummaryError(
                f"a row of {len(cells)} cells under {len(columns)} columns: {line!r}"
            )
        rows[cells[0]] = dict(zip(columns, cells, strict=True))
    return rows


def summary_line(summary: str, label: str) -> str:
    """The text after `label:` on the summary's first line that starts with it, or ''."""
    for line in summary.splitlines():
        if line.startswith(label + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def _number(rows: dict[str, dict[str, str]], run: str, column: str) -> float:
    try:
        return float(rows[run][column])
    except KeyError as error:
        raise PeerSummaryError(f"the peer's table has no {column} for {run}") from error
    except ValueError as error:
        raise PeerSummaryError(
            f"{run}'s {column} is {rows[run][column]!r}, not a number"
        ) from error


def peer_figures(rows: dict[str, dict[str, str]]) -> Figures:
    """The peer's figures: p99 over each whole run (as the node's), tps of the closed runs."""
    runs = (OPEN_1000, OPEN_2000, CLOSED_16, CLOSED_64)
    return Figures(
        p99_at_1000_ms=_number(rows, OPEN_1000, "p99_ms"),
        p99_at_2000_ms=_number(rows, OPEN_2000, "p99_ms"),
        closed_16_per_s=_number(rows, CLOSED_16, "tps"),
        closed_64_per_s=_number(rows, CLOSED_64, "tps"),
        errors=round(sum(_number(rows, run, "failed") for run in runs)),
    )


def node_figures(runs: dict[str, dict[str, Any]]) -> Figures:
    """The node's figures from its load processes' documents, by run name."""
    return Figures(
        p99_at_1000_ms=float(runs[OPEN_1000]["latency_p99_ms"]),
        p99_at_2000_ms=float(runs[OPEN_2000]["latency_p99_ms"]),
        closed_16_per_s=float(runs[CLOSED_16]["approved_per_s"]),
        closed_64_per_s=float(runs[CLOSED_64]["approved_per_s"]),
        errors=sum(
            int(runs[name]["errors"]) for name in (OPEN_1000, OPEN_2000, CLOSED_16, CLOSED_64)
        ),
    )


# ---------------------------------------------------------------- the table printed


def _format_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(node: Figures, peer: Figures) -> str:
    """Node, peer and node/peer, a line per figure."""
    ratio = ratios(node, peer)

    def ms(value: float) -> str:
        return f"{value:.1f} ms"

    def rate(value: float) -> str:
        return f"{value:,.0f}/s"

    rows = [
        ("open loop p99 at 1,000/s", ms(node.p99_at_1000_ms), ms(peer.p99_at_1000_ms),
         ratio.p99_at_1000),
        ("open loop p99 at 2,000/s", ms(node.p99_at_2000_ms), ms(peer.p99_at_2000_ms),
         ratio.p99_at_2000),
        ("closed loop, 16 clients", rate(node.closed_16_per_s), rate(peer.closed_16_per_s),
         ratio.closed_16),
        ("closed loop, 64 clients", rate(node.closed_64_per_s), rate(peer.closed_64_per_s),
         ratio.closed_64),
        ("capacity (the better closed run)", rate(node.capacity_per_s),
         rate(peer.capacity_per_s), ratio.capacity),
        ("errors (failed or declined taps)", str(node.errors), str(peer.errors), None),
    ]  # fmt: skip
    out = [f"  {'':34}{'node':>12}{'peer':>12}{'node/peer':>11}"]
    out += [f"  {name:34}{a:>12}{b:>12}{_format_ratio(r):>11}" for name, a, b, r in rows]
    return "\n".join(out)


# ---------------------------------------------------------------- running both sides


def _load_process(setup_path: Path, arguments: Sequence[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "coopnode.loadtest.tills", "--setup", str(setup_path)]
    output = subprocess.run(
        [*command, *arguments], cwd=REPO, stdout=subprocess.PIPE, text=True, check=False
    )
    if output.returncode != 0:
        raise RuntimeError(f"the load process failed ({output.returncode})")
    document: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return document


def node_plan(seconds: int) -> list[tuple[str, list[str]]]:
    """The node's runs, in the peer's order, as arguments of the till load process."""
    duration = str(seconds)
    return [
        (WARMUP, ["--closed-tills", "16", "--duration", str(WARMUP_S)]),
        (CLOSED_16, ["--closed-tills", "16", "--duration", duration]),
        (CLOSED_64, ["--closed-tills", str(TILLS), "--duration", duration]),
        (OPEN_1000, ["--rate-fixed", "1000", "--duration", duration]),
        (OPEN_2000, ["--rate-fixed", "2000", "--duration", duration]),
    ]


def run_node(seconds: int, members: int) -> dict[str, Any]:
    """One round of the node's runs on a new node; each run's figures by the peer's names."""
    data_dir = short_tmpdir("cnbside")
    env = {"COOPNODE_LOG__LEVEL": "warning", "COOPNODE_TILL__DEMO_TILL": "false"}
    node = NodeProcess(data_dir, cwd=REPO, env=env)
    try:
        settings = node.effective_settings()
        node.start()
        setup = asyncio.run(setup_node(node, TILLS, members=members))
        setup = msgspec.structs.replace(setup, amount_yen=TAP_YEN)
        runs: dict[str, dict[str, Any]] = {}
        for number, (name, arguments) in enumerate(node_plan(seconds)):
            path = data_dir / f"setup-{name}.json"
            numbered = msgspec.structs.replace(setup, first_seq=1 + number * SEQ_BLOCK)
            path.write_bytes(msgspec.json.encode(numbered))
            document = _load_process(path, arguments)
            runs[name] = document["closed"] if "closed" in document else document["fixed"]
        status, audit = node.request("GET", "/api/v1/audit")
        _, health = node.request("GET", "/healthz")
        return {
            "runs": runs,
            "durability": durability(settings),
            "shards": len(health["shards"]),
            "members": members,
            "books_balanced": status == 200 and audit["balanced"],
        }
    finally:
        node.stop()
        remove_tree(data_dir)


def peer_environment(seconds: int, members: int, port: int) -> dict[str, str]:
    """The peer's tunables: the node's run length and members, and a port free now (another
    PostgreSQL on the peer's default port must not stop it)."""
    tunables = {"PGPEER_DURATION": str(seconds), "PGPEER_MEMBERS": str(members)}
    return {**os.environ, **tunables, "PGPEER_PORT": str(port)}


def run_peer(seconds: int, members: int) -> dict[str, Any]:
    """The peer's whole script; its log lines go to stderr, its summary is parsed."""
    env = peer_environment(seconds, members, free_port())
    output = subprocess.run(
        ["bash", str(PEER_SCRIPT)], env=env, stdout=subprocess.PIPE, text=True,
        timeout=PEER_TIMEOUT_S, check=False,
    )  # fmt: skip
    sys.stderr.write(output.stdout)  # The peer's own summary, pg_test_fsync's included.
    if output.returncode != 0:
        raise RuntimeError(f"the peer failed ({output.returncode})")
    return {
        "rows": parse_peer_table(output.stdout),
        "server": summary_line(output.stdout, "server"),
        "storage": summary_line(output.stdout, "storage"),
        "consistency": summary_line(output.stdout, "consistency"),
    }


def run(rounds: int, seconds: int, members: int) -> dict[str, Any]:
    """Node, peer, node, peer...: each round's raw figures and ratios, and the medians'."""
    done: list[dict[str, Any]] = []
    for number in range(1, rounds + 1):
        print(f"-- round {number} of {rounds}: the node", file=sys.stderr, flush=True)
        node = run_node(seconds, members)
        print(f"-- round {number} of {rounds}: the peer", file=sys.stderr, flush=True)
        peer = run_peer(seconds, members)
        mine, theirs = node_figures(node["runs"]), peer_figures(peer["rows"])
        done.append({
            "node": node, "peer": peer, "node_figures": mine, "peer_figures": theirs,
            "ratios": ratios(mine, theirs),
        })  # fmt: skip
    node_median = median_figures([r["node_figures"] for r in done])
    peer_median = median_figures([r["peer_figures"] for r in done])
    return {
        "seconds": seconds,
        "rounds": done,
        "node_median": node_median,
        "peer_median": peer_median,
        "ratios_of_medians": ratios(node_median, peer_median),
    }


def summary(figures: dict[str, Any]) -> str:
    rounds = figures["rounds"]
    first = rounds[0]
    lines = [
        f"Side by side, {len(rounds)} round(s) of node then peer, {figures['seconds']} s per run; "
        f"node: taps over the till channel, {first['node']['durability']}, "
        f"{first['node']['shards']} shard(s); {first['node']['members']:,} members each; peer: "
        f"{first['peer']['server'].split(' on ', 1)[0]}, pgbench, fsync and synchronous_commit "
        f"on, on {first['peer']['storage']}"
    ]
    for number, done in enumerate(rounds, 1):
        lines.append(
            f" round {number}: node books balanced: {done['node']['books_balanced']}; "
            f"peer consistency: {done['peer']['consistency']}"
        )
        lines.append(table(done["node_figures"], done["peer_figures"]))
    if len(rounds) > 1:
        lines.append(" the medians over the rounds:")
        lines.append(table(figures["node_median"], figures["peer_median"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2, help="node then peer, this many times")
    # The peer's own default; pgbench takes whole seconds.
    parser.add_argument("--seconds", type=int, default=20, help="each run's length")
    parser.add_argument("--members", type=int, default=MEMBERS, help="the node's members")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds < 1 or args.members < 1:
        parser.error("--rounds, --seconds and --members must be at least 1")
    figures = run(args.rounds, args.seconds, args.members)
    print(summary(figures))
    print(msgspec.json.encode(figures).decode())
    return figures


if __name__ == "__main__":
    main()
