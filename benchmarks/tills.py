"""Taps over the real till channel from a separate load process, open loop.

Starts a node with the embedded defaults (one wallet shard on two cores, fsync on; a
`COOPNODE_...` variable in the environment or `--node-env` changes them, and the summary
says what the node itself resolved), opens wallets, binds a card to each and registers
simulated tills, then:
  1. from a second process (`coopnode.loadtest.tills`): a fixed 2,000 taps/s for 10 s,
     then a capacity search for the highest rate whose p99 tap-to-decision stays under
     10 ms. Each tap is its own signed frame; latency counts from its intended send time;
  2. from this process: how long a card block takes to reach the last connected till,
     with the node idle and again while the load process sends 2,000 taps/s.

Before the node starts, the disk of its data directory is probed for 10 s
(`benchmarks/disk_flush.py`), and after the runs the node's own group-commit times are
read from /metrics: a tap waits for its commit's flush, so the p99 of an hour whose disk
stalls is the disk's, and these two lines say whether it was.

Run: .venv/bin/python -m benchmarks.tills [--seconds 10] [--tills 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from nacl.signing import SigningKey

from benchmarks.disk_flush import probe as disk_flush_probe
from benchmarks.disk_flush import summary as disk_flush_summary
from coopnode.loadtest.node_process import NodeProcess, durability, remove_tree, short_tmpdir
from coopnode.loadtest.tills import SimTill, TillLoadSetup, TillSpec

REPO = Path(__file__).resolve().parent.parent
MEMBERS = 1_000
OBJECTIVE_MS = 10.0
FIXED_RATE_PER_S = 2_000.0
# The search starts well below the fixed rate, so that it finds where p99 holds.
SEARCH_START_PER_S = 200.0
BLOCK_PROBES = 5
# The disk is probed this long before the node starts (see benchmarks/disk_flush.py).
DISK_PROBE_S = 10.0
# Group commits slower than these are counted from the node's /metrics after the run.
SLOW_COMMIT_BUCKETS_S = ("0.02", "0.05", "0.1")
# Staff calls during setup run this many at once.
SETUP_CONCURRENCY = 32


def member_no(index: int) -> str:
    return f"2029{index:08d}"


def idm(index: int) -> str:
    return f"29{index:014x}"


async def _post(session: aiohttp.ClientSession, url: str, body: Any, expect: int) -> Any:
    async with session.post(url, json=body) as response:
        answer = await response.json()
        if response.status != expect:
            raise RuntimeError(f"{url}: {response.status} {answer}")
        return answer


async def setup_node(
    node: NodeProcess, till_count: int, members: int = MEMBERS, deposit_yen: int = 100_000
) -> TillLoadSetup:
    """Open the wallets, bind the cards and register the tills through the staff API."""
    headers = {"Authorization": f"Bearer {node.token}"}
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)
    async with aiohttp.ClientSession(headers=headers) as session:

        async def member(index: int) -> None:
            async with gate:
                body = {"key": "enrol", "member_no": member_no(index), "coop": "demo",
                        "deposits": {"base": deposit_yen}}  # fmt: skip
                await _post(session, node.url + "/api/v1/wallets", body, 201)
                card = {"idm": idm(index), "member_no": member_no(index)}
                await _post(session, node.url + "/api/v1/cards", card, 201)

        await asyncio.gather(*(member(index) for index in range(members)))
        tills = []
        for number in range(till_count):
            key = SigningKey.generate()
            body = {"store": f"bench-shop-{number % 8}", "kind": "shop",
                    "public_key_hex": bytes(key.verify_key).hex()}  # fmt: skip
            till = await _post(session, node.url + "/api/v1/tills", body, 201)
            tills.append(TillSpec(till_id=till["till_id"], signing_key_hex=bytes(key).hex()))
    return TillLoadSetup(url=node.url, tills=tills, idms=[idm(i) for i in range(members)])


def load_process(setup_path: Path, *arguments: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "coopnode.loadtest.tills", "--setup", str(setup_path)]
    return subprocess.Popen(
        [*command, *arguments], cwd=REPO, stdout=subprocess.PIPE, stderr=None, text=True
    )


def finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    output, _ = process.communicate(timeout=900)
    if process.returncode != 0:
        raise RuntimeError(f"the load process failed ({process.returncode})")
    document: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return document


async def block_latencies(node: NodeProcess, specs: list[TillSpec], first: int) -> list[float]:
    """Report cards lost, one at a time; seconds until the last till has each block."""
    headers = {"Authorization": f"Bearer {node.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        tills = [SimTill(node.url, spec) for spec in specs]
        await asyncio.gather(*(till.connect(session) for till in tills))
        latencies = []
        try:
            for index in range(first, first + BLOCK_PROBES):
                card = idm(index)
                started = time.monotonic()
                await _post(session, f"{node.url}/api/v1/cards/{card}/lost", None, 200)
                deadline = started + 5.0
                while not all(card in till.deny_seen for till in tills):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"a till did not learn of card {card} in 5 s")
                    await asyncio.sleep(0.001)
                latencies.append(max(till.deny_seen[card] for till in tills) - started)
                await asyncio.sleep(0.2)
        finally:
            await asyncio.gather(*(till.close() for till in tills))
    return latencies


def commit_durations(node: NodeProcess) -> dict[str, int]:
    """How many group commits the node made, and how many took longer than each bucket."""
    if not node.url.startswith("http://127.0.0.1:"):
        raise RuntimeError(f"the node's URL is {node.url!r}, not its loopback address")
    request = urllib.request.Request(node.url + "/metrics")  # noqa: S310 (checked above)
    request.add_header("Authorization", f"Bearer {node.token}")
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        text = response.read().decode()
    buckets: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("coopnode_wallet_commit_seconds_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[bound] = int(float(line.rsplit(" ", 1)[1]))
    total = buckets["+Inf"]
    slow = {f"over_{float(b) * 1000:g}_ms": total - buckets[b] for b in SLOW_COMMIT_BUCKETS_S}
    return {"commits": total, **slow}


def run(seconds: float, till_count: int, node_env: dict[str, str]) -> dict[str, Any]:
    data_dir = short_tmpdir("cnbtill")
    env = {"COOPNODE_LOG__LEVEL": "warning", "COOPNODE_TILL__DEMO_TILL": "false", **node_env}
    node = NodeProcess(data_dir, cwd=REPO, env=env)
    try:
        settings = node.effective_settings()
        disk = disk_flush_probe(data_dir / "disk-probe", DISK_PROBE_S)
        node.start()
        setup = asyncio.run(setup_node(node, till_count))
        setup_path = data_dir / "tills-setup.json"
        setup_path.write_bytes(msgspec.json.encode(setup))
        search_s = str(max(4.0, seconds / 2))
        figures = finish(
            load_process(
                setup_path, "--rate-fixed", str(FIXED_RATE_PER_S), "--duration", str(seconds),
                "--search", "--rate", str(SEARCH_START_PER_S), "--step-factor", "1.4",
                "--objective-ms", str(OBJECTIVE_MS), "--search-duration", search_s,
            )
        )  # fmt: skip
        _, health = node.request("GET", "/healthz")
        figures["shards"] = len(health["shards"])
        figures["block_idle_s"] = asyncio.run(block_latencies(node, setup.tills, 0))
        # The same while half the tills send 2,000 taps/s from the load process.
        half = len(setup.tills) // 2
        # A new process numbers its taps from 1 unless told otherwise; the node would
        # rightly refuse the first process's numbers as replays with other content.
        loaded_setup = msgspec.structs.replace(
            setup, tills=setup.tills[:half], idms=setup.idms[100:], first_seq=10_000_000
        )
        loaded_path = data_dir / "tills-loaded.json"
        loaded_path.write_bytes(msgspec.json.encode(loaded_setup))
        background = load_process(
            loaded_path, "--rate-fixed", str(FIXED_RATE_PER_S), "--duration", str(seconds)
        )
        time.sleep(2.0)
        figures["block_loaded_s"] = asyncio.run(
            block_latencies(node, setup.tills[half:], BLOCK_PROBES)
        )
        figures["loaded_run"] = finish(background)["fixed"]
        status, audit = node.request("GET", "/api/v1/audit")
        figures["books_balanced"] = status == 200 and audit["balanced"]
        figures["disk_before"] = disk
        figures["commits"] = commit_durations(node)
        figures["fsync"] = settings.wallet.fsync
        figures["durability"] = durability(settings)
        return figures
    finally:
        node.stop()
        remove_tree(data_dir)


def summary(figures: dict[str, Any], till_count: int) -> str:
    fixed, search = figures["fixed"], figures["search"]
    idle, loaded = figures["block_idle_s"], figures["block_loaded_s"]
    disk, commits = figures["disk_before"], figures["commits"]
    return (
        f"Till taps over the till channel ({till_count} tills, {figures['durability']}, "
        f"{figures['shards']} shard(s)): at "
        f"{FIXED_RATE_PER_S:,.0f}/s p50 {fixed['latency_p50_ms']:.1f} ms, "
        f"p99 {fixed['latency_p99_ms']:.1f} ms, p99.9 {fixed['latency_p999_ms']:.1f} ms, "
        f"errors {fixed['errors']}; highest rate with p99 < {OBJECTIVE_MS:g} ms: "
        f"{search['max_rate_held_per_s']:,.0f}/s (limited by {search['limited_by']}); "
        f"card block to the last connected till: idle median "
        f"{statistics.median(idle) * 1000:.1f} ms max {max(idle) * 1000:.1f} ms, "
        f"under {FIXED_RATE_PER_S:,.0f} taps/s median {statistics.median(loaded) * 1000:.1f} ms "
        f"max {max(loaded) * 1000:.1f} ms; books balanced: {figures['books_balanced']}\n"
        f"  the same hour's disk, before the node started: {disk_flush_summary(disk)}\n"
        f"  the node's group commits: {commits['commits']:,}, of which over 20 ms: "
        f"{commits['over_20_ms']}, over 50 ms: {commits['over_50_ms']}, over 100 ms: "
        f"{commits['over_100_ms']}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tills", type=int, default=64)
    parser.add_argument(
        "--node-env",
        action="append",
        default=[],
        metavar="COOPNODE_SECTION__KEY=VALUE",
        help="a setting for the node, e.g. COOPNODE_WALLET__FRONT_BATCH_WINDOW_US=1000",
    )
    args = parser.parse_args(argv)
    node_env = dict(item.split("=", 1) for item in args.node_env)
    figures = run(args.seconds, args.tills, node_env)
    print(summary(figures, args.tills))
    print(msgspec.json.encode(figures).decode())


if __name__ == "__main__":
    main()
