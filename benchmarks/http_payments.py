"""Payments through the HTTP API from a separate load process, open loop.

Starts a node with the embedded defaults (fsync on, unless a `COOPNODE_...` variable in
the environment changes it: the summary says what the node itself resolved), opens
wallets, then from a second process: a fixed 1,000 payments/s for 10 s (p99 objective
15 ms), a capacity search for the highest rate whose p99 stays under 15 ms, and — in the
same run, for scale — the same search against a trivial aiohttp handler. Latency counts
from each request's intended send time (no coordinated omission).

Run: .venv/bin/python -m benchmarks.http_payments [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from coopnode.loadtest.node_process import NodeProcess, durability, remove_tree, short_tmpdir
from coopnode.loadtest.openloop import (
    RequestSpec,
    event_loop_factory,
    find_max_rate,
    run_open_loop,
)

REPO = Path(__file__).resolve().parent.parent
MEMBERS = 2_000
OBJECTIVE_MS = 15.0
# A send later than this counts against the generator. One millisecond is asyncio's timer
# granularity on a busy two-core machine; two keeps the generator honest without blaming
# it for every wake-up, as the till benchmark does.
LAG_THRESHOLD_MS = 2.0


def member_no(index: int) -> str:
    return f"2028{index:08d}"


def enrol(node: NodeProcess) -> None:
    for index in range(MEMBERS):
        body = {
            "key": "enrol",
            "member_no": member_no(index),
            "coop": "demo",
            "deposits": {"base": 100_000},
        }
        status, answer = node.request("POST", "/api/v1/wallets", body)
        if status not in (201,):
            raise RuntimeError(f"enrolment failed: {status} {answer}")


def payment_factory(token: str, run: str) -> Any:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    rng = random.Random(run)

    def make(index: int) -> RequestSpec:
        body = {
            "key": f"bench-{run}-{index}",
            "amount_yen": rng.randint(100, 500),
            "till_kind": "shop",
            "store": "bench-shop",
        }
        return RequestSpec(
            method="POST",
            path=f"/api/v1/wallets/{member_no(rng.randrange(MEMBERS))}/payments",
            body=json.dumps(body).encode(),
            headers=headers,
        )

    return make


async def load(url: str, token: str, seconds: float) -> dict[str, Any]:
    """The load process: one fixed-rate run and one capacity search."""
    fixed = await run_open_loop(
        url,
        payment_factory(token, "fixed"),
        1_000,
        seconds,
        schedule_lag_threshold_ms=LAG_THRESHOLD_MS,
    )
    search = await find_max_rate(
        url,
        payment_factory(token, "search"),
        start_rate=500,
        step_factor=1.4,
        p99_objective_ms=OBJECTIVE_MS,
        duration_s=max(3.0, seconds / 2),
        max_rate=20_000,
        schedule_lag_threshold_ms=LAG_THRESHOLD_MS,
        on_step=lambda step: print(step.format_line(), file=sys.stderr, flush=True),
    )
    return {"fixed": fixed.to_dict(), "search": search.to_dict()}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def trivial_search(seconds: float) -> dict[str, Any]:
    """The same capacity search against a trivial aiohttp handler, in separate processes."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "coopnode.loadtest.trivial", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        if server.stdout is None or "listening" not in server.stdout.readline():
            raise RuntimeError("the trivial server did not start")
        command = [
            sys.executable, "-m", "coopnode.loadtest.openloop",
            "--url", f"http://127.0.0.1:{port}/", "--method", "POST", "--body", '{"a":1}',
            "--search", "--rate", "500", "--step-factor", "1.4",
            "--objective-ms", str(OBJECTIVE_MS), "--duration", str(max(3.0, seconds / 2)),
            "--lag-threshold-ms", str(LAG_THRESHOLD_MS),
        ]  # fmt: skip
        finished = subprocess.run(command, capture_output=True, text=True, check=True)
        sys.stderr.write(finished.stderr)
        output = finished.stdout
        document = json.loads(output.strip().splitlines()[-1])
        result: dict[str, Any] = document["result"]
        return result
    finally:
        server.terminate()
        server.wait(timeout=10)


def run_node_benchmark(seconds: float) -> dict[str, Any]:
    data_dir = short_tmpdir("cnbhttp")
    node = NodeProcess(data_dir, cwd=REPO, env={"COOPNODE_LOG__LEVEL": "warning"})
    try:
        settings = node.effective_settings()
        node.start()
        enrol(node)
        command = [sys.executable, "-m", "benchmarks.http_payments", "--load-only"]
        command += ["--url", node.url, f"--token={node.token}", "--seconds", str(seconds)]
        started = time.monotonic()
        output = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        if output.returncode != 0:
            raise RuntimeError(f"the load process failed:\n{output.stderr[-3000:]}")
        sys.stderr.write(output.stderr)  # One line per search step, for the record.
        figures: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
        figures["load_wall_s"] = time.monotonic() - started
        status, audit = node.request("GET", "/api/v1/audit")
        figures["books_balanced"] = status == 200 and audit["balanced"]
        _, health = node.request("GET", "/healthz")
        figures["shards"] = len(health["shards"])
        figures["fsync"] = settings.wallet.fsync
        figures["durability"] = durability(settings)
        return figures
    finally:
        node.stop()
        remove_tree(data_dir)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--load-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load_only:
        # A loop that times sleeps in microseconds keeps the open-loop schedule.
        _, loop_factory = event_loop_factory()
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            figures = runner.run(load(args.url, args.token, args.seconds))
        print(msgspec.json.encode(figures).decode())
        return figures
    node_figures = run_node_benchmark(args.seconds)
    trivial = trivial_search(args.seconds)
    fixed, search = node_figures["fixed"], node_figures["search"]
    print(
        f"HTTP payments ({node_figures['durability']}, {node_figures['shards']} shard(s)): "
        f"at 1,000/s "
        f"p50 {fixed['latency_p50_ms']:.1f} ms, "
        f"p99 {fixed['latency_p99_ms']:.1f} ms, p99.9 {fixed['latency_p999_ms']:.1f} ms, "
        f"errors {fixed['errors']}; highest rate with p99 < {OBJECTIVE_MS:g} ms: "
        f"{search['max_rate_held_per_s']:,.0f}/s (limited by {search['limited_by']}); "
        f"trivial aiohttp handler, same search: {trivial['max_rate_held_per_s']:,.0f}/s "
        f"(limited by {trivial['limited_by']}); books balanced: {node_figures['books_balanced']}"
    )
    summary = {"node": node_figures, "trivial": trivial}
    print(msgspec.json.encode(summary).decode())
    return summary


if __name__ == "__main__":
    main()
