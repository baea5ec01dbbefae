"""Wallet shards driven through Ray with batched calls, fsync on.

Two figures:
- raw: pre-built batches of payments sent straight to the shard actors, several in flight
  per shard: what the shards and the Ray hop can do;
- client: the same payments through `WalletClient.submit`, one call per payment, as the
  HTTP front and the till channel use it (micro-batching over the shards' socket links,
  futures, metrics included).

Run: .venv/bin/python -m benchmarks.wallet_ray [--seconds 10] [--shards 2]

With `--cluster-tls DIR` (a `coopnode cluster dev-ca DIR --hosts bench`), the local Ray
speaks TLS and the links are mutual TLS, as between the hosts of a cluster; Ray reads its
variables when it is imported, so run it with the environment `coopnode cluster env`
prints (`python -m benchmarks.link_tls` does both, and the plain runs beside them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import ray

from coopnode.actors.kernel.link_tls import link_client_context
from coopnode.actors.wallet.client import WalletClient
from coopnode.actors.wallet.shard import batch_encoder, reply_decoder
from coopnode.domain.messages import Booked, OpenWallet, Operation, Pay
from coopnode.domain.money import Purse, TillKind
from coopnode.domain.sharding import shard_of
from coopnode.metrics import Metrics
from coopnode.node.cluster import create_shards, start_ray
from coopnode.node.cluster_tls import cluster_tls_files
from coopnode.settings import (
    ClusterSettings,
    ClusterTlsSettings,
    NodeSettings,
    Settings,
    WalletSettings,
)

MEMBERS = 10_000
RAW_BATCH_OPS = 512
RAW_IN_FLIGHT_PER_SHARD = 4


def members() -> list[str]:
    return [f"2027{index:08d}" for index in range(MEMBERS)]


def payment(member_no: str, key: str, rng: random.Random) -> Pay:
    return Pay(
        key=key,
        member_no=member_no,
        amount_yen=rng.randint(100, 800),
        till_kind=TillKind.SHOP,
        store="bench-shop",
    )


async def open_wallets(client: WalletClient, numbers: list[str]) -> None:
    ops = [
        OpenWallet(key="open", member_no=number, coop="demo", deposits={Purse.BASE: 100_000})
        for number in numbers
    ]
    results = await asyncio.gather(*(client.submit(op) for op in ops))
    if not all(isinstance(result, Booked) for result in results):
        raise RuntimeError("opening the benchmark wallets failed")


async def raw_run(actors: list[Any], numbers: list[str], seconds: float) -> dict[str, float]:
    """Several pre-encoded batches in flight per shard until the time is up."""
    rng = random.Random(1)
    by_shard: list[list[str]] = [[] for _ in actors]
    for number in numbers:
        by_shard[shard_of(number, len(actors))].append(number)
    done = 0
    counter = 0
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []

    async def pump(shard: int) -> None:
        nonlocal done, counter
        while time.perf_counter() < deadline:
            ops: list[Operation] = []
            for _ in range(RAW_BATCH_OPS):
                counter += 1
                ops.append(payment(rng.choice(by_shard[shard]), f"raw-{counter}", rng))
            started = time.perf_counter()
            raw = await asyncio.wrap_future(
                actors[shard].apply.remote(batch_encoder.encode(ops)).future()
            )
            latencies.append(time.perf_counter() - started)
            reply = reply_decoder.decode(raw)
            done += sum(isinstance(result, Booked) for result in reply.results)

    started = time.perf_counter()
    await asyncio.gather(
        *(pump(shard) for shard in range(len(actors)) for _ in range(RAW_IN_FLIGHT_PER_SHARD))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "payments_per_s": done / elapsed,
        "batch_ops": RAW_BATCH_OPS,
        "batch_p50_ms": latencies[len(latencies) // 2] * 1000,
        "batch_p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


async def client_run(client: WalletClient, numbers: list[str], seconds: float) -> dict[str, float]:
    """One `submit` per payment from many concurrent callers, as the front does."""
    rng = random.Random(2)
    done = 0
    counter = 0
    deadline = time.perf_counter() + seconds
    callers = 2_000

    async def caller() -> None:
        nonlocal done, counter
        while time.perf_counter() < deadline:
            counter += 1
            result = await client.submit(payment(rng.choice(numbers), f"cl-{counter}", rng))
            done += isinstance(result, Booked)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed = time.perf_counter() - started
    return {"payments_per_s": done / elapsed, "concurrent_callers": callers}


async def run(settings: Settings, seconds: float) -> dict[str, Any]:
    link_token = secrets.token_urlsafe(32)
    actors = create_shards(settings, link_token)
    files = cluster_tls_files(settings)
    link_tls = None if files is None else link_client_context(files)
    client = WalletClient(
        actors, settings.wallet, Metrics(), link_token=link_token, link_tls=link_tls
    )
    await client.wait_ready(120)
    numbers = members()
    await open_wallets(client, numbers)
    raw = await raw_run(actors, numbers, seconds)
    via_client = await client_run(client, numbers, seconds)
    reports = await client.audit()
    await client.close()
    return {
        "shards": settings.wallet.shard_count,
        "fsync": settings.wallet.fsync,
        "cluster_tls": link_tls is not None,
        "raw": raw,
        "client": via_client,
        "books_balanced": all(report.balanced for report in reports),
        "journal_entries": sum(report.entries for report in reports),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--cluster-tls", type=Path, help="a dev CA directory with host 'bench'")
    args = parser.parse_args(argv)
    cluster = ClusterSettings()
    if args.cluster_tls is not None:
        if os.environ.get("RAY_USE_TLS") != "1":
            parser.error("--cluster-tls: run with the environment `coopnode cluster env` prints")
        host = args.cluster_tls / "bench"
        tls = ClusterTlsSettings(
            ca_file=str(host / "ca.pem"),
            cert_file=str(host / "cert.pem"),
            key_file=str(host / "key.pem"),
        )
        cluster = ClusterSettings(tls=tls)
    data_dir = Path(tempfile.mkdtemp(prefix="cnbench", dir="/tmp"))
    settings = Settings(
        node=NodeSettings(data_dir=str(data_dir)),
        wallet=WalletSettings(shard_count=args.shards, lmdb_map_size_mib=2048),
        cluster=cluster,
    )
    start_ray(settings)
    try:
        figures = asyncio.run(run(settings, args.seconds))
    finally:
        ray.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)
    raw, client = figures["raw"], figures["client"]
    print(
        f"wallet shards via Ray (fsync on, {figures['shards']} shards, "
        f"cluster TLS {'on' if figures['cluster_tls'] else 'off'}): "
        f"raw batches of {raw['batch_ops']}: {raw['payments_per_s']:,.0f} payments/s "
        f"(batch p50 {raw['batch_p50_ms']:.1f} ms, p99 {raw['batch_p99_ms']:.1f} ms); "
        f"through WalletClient.submit: {client['payments_per_s']:,.0f} payments/s; "
        f"books balanced: {figures['books_balanced']}"
    )
    print(msgspec.json.encode(figures).decode())
    return figures


if __name__ == "__main__":
    main()
