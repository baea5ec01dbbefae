"""What cluster TLS costs the wallet: `benchmarks.wallet_ray` with and without it.

Each run is a process of its own (Ray reads its TLS variables when it is imported), on a
local Ray, one shard by default, fsync on; the runs alternate, plain then TLS, so that a
host whose speed drifts shows it in both. With TLS, Ray's own calls (the "raw" figure:
pre-built batches of 512 as Ray actor calls) go over Ray's TLS gRPC, and the front's
batches (the "client" figure: one `submit` per payment, micro-batched over the shard's
link) over a mutual-TLS link, with the development CA's certificates.

First, the link alone, where TLS is all that differs: a front's `ShardLink` and a
shard's `serve_link` in this process on loopback, the shard answering each batch of 512
payments at once (no Ray, no LMDB), plain and then TLS; the figure is the process's CPU
time per payment (both ends together), which a busy host disturbs less than a rate.

Run: .venv/bin/python -m benchmarks.link_tls [--seconds 10] [--shards 1] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from coopnode.actors.kernel.link_tls import (
    ClusterTlsFiles,
    link_client_context,
    link_server_context,
)
from coopnode.actors.wallet.link import BatchReply, ShardLink, serve_link
from coopnode.domain.messages import Pay, decline
from coopnode.domain.money import Reason, TillKind
from coopnode.node.cluster_tls import ray_tls_environment
from coopnode.node.dev_ca import make_dev_ca, parse_hosts


def _one_run(seconds: float, shards: int, ca_dir: Path | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.wallet_ray", "--seconds", str(seconds)]
    command += ["--shards", str(shards)]
    env = dict(os.environ)
    if ca_dir is not None:
        env.update(ray_tls_environment(_bench_files(ca_dir)))
        command += ["--cluster-tls", str(ca_dir)]
    result = subprocess.run(command, env=env, capture_output=True, check=True)
    figures: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return figures


LINK_BATCH_OPS = 512
LINK_IN_FLIGHT = 2
# The link's token in this process; a secret only for a link other processes could reach.
LINK_TOKEN = secrets.token_urlsafe(32)


async def _link_alone(files: ClusterTlsFiles | None, seconds: float) -> dict[str, float]:
    """Batches of payments through one link whose shard answers at once."""
    ops = [
        msgspec.Raw(
            msgspec.msgpack.encode(
                Pay(
                    key=f"bench-{index}",
                    member_no=f"2027{index:08d}",
                    amount_yen=430,
                    till_kind=TillKind.CAFETERIA,
                    store="bench",
                )
            )
        )
        for index in range(LINK_BATCH_OPS)
    ]
    answer = BatchReply(
        results=[decline(Reason.UNKNOWN_MEMBER, "bench")] * LINK_BATCH_OPS,
        commit_ops=LINK_BATCH_OPS,
        commit_s=0.0,
    )

    async def submit(raws: list[msgspec.Raw]) -> BatchReply:
        return answer

    server_tls = None if files is None else link_server_context(files)

    ended = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_link(
            reader, writer, token=LINK_TOKEN, submit=submit, frame_max_bytes=1 << 24, tls=server_tls
        )
        ended.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def lookup() -> str:
        return f"127.0.0.1:{port}"

    client_tls = None if files is None else link_client_context(files)
    link = ShardLink(lookup, LINK_TOKEN, 1 << 24, client_tls)
    await link.call(ops)  # Connected (and the handshake done) before the clock starts.
    done = 0
    deadline = time.perf_counter() + seconds

    async def pump() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await link.call(ops)
            done += LINK_BATCH_OPS

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(pump() for _ in range(LINK_IN_FLIGHT)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await link.close()
    await ended.wait()  # The shard's side saw the link close.
    server.close()
    return {"payments_per_s": done / wall, "cpu_us_per_payment": cpu / done * 1e6}


def _bench_files(ca_dir: Path) -> ClusterTlsFiles:
    host = ca_dir / "bench"
    return ClusterTlsFiles(
        ca_file=str(host / "ca.pem"),
        cert_file=str(host / "cert.pem"),
        key_file=str(host / "key.pem"),
    )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    ca_dir = Path(tempfile.mkdtemp(prefix="cnbenchca", dir="/tmp"))
    runs: list[dict[str, Any]] = []
    try:
        make_dev_ca(ca_dir, parse_hosts("bench"))
        for _ in range(args.rounds):
            for files in (None, _bench_files(ca_dir)):
                alone = asyncio.run(_link_alone(files, args.seconds))
                runs.append({"link_alone": alone, "cluster_tls": files is not None})
                print(
                    f"the link alone, cluster TLS {'on ' if files else 'off'}: "
                    f"{alone['payments_per_s']:,.0f} payments/s, "
                    f"{alone['cpu_us_per_payment']:.2f} µs of CPU per payment (both ends)",
                    flush=True,
                )
        for _ in range(args.rounds):
            for tls in (False, True):
                figures = _one_run(args.seconds, args.shards, ca_dir if tls else None)
                runs.append(figures)
                print(
                    f"cluster TLS {'on ' if tls else 'off'}: "
                    f"Ray calls {figures['raw']['payments_per_s']:,.0f} payments/s "
                    f"(batch p50 {figures['raw']['batch_p50_ms']:.1f} ms, "
                    f"p99 {figures['raw']['batch_p99_ms']:.1f} ms); "
                    f"links {figures['client']['payments_per_s']:,.0f} payments/s; "
                    f"books balanced: {figures['books_balanced']}",
                    flush=True,
                )
    finally:
        shutil.rmtree(ca_dir, ignore_errors=True)
    return runs


if __name__ == "__main__":
    main()
