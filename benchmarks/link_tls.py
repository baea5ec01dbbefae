"""What cluster TLS costs the wallet: `benchmarks.wallet_ray` with and without it.

Each run is a process of its own (Ray reads its TLS variables when it is imported), on a
local Ray, one shard by default, fsync on; the runs alternate, plain then TLS, so that a
host whose speed drifts shows it in both. With TLS, Ray's own calls (the "raw" figure:
pre-built batches of 512 as Ray actor calls) go over Ray's TLS gRPC, and the front's
batches (the "client" figure: one `submit` per payment, micro-batched over the shard's
link) over a mutual-TLS link, with the development CA's certificates.

Run: .venv/bin/python -m benchmarks.link_tls [--seconds 10] [--shards 1] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from coopnode.actors.kernel.link_tls import ClusterTlsFiles
from coopnode.node.cluster_tls import ray_tls_environment
from coopnode.node.dev_ca import make_dev_ca, parse_hosts


def _one_run(seconds: float, shards: int, ca_dir: Path | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.wallet_ray", "--seconds", str(seconds)]
    command += ["--shards", str(shards)]
    env = dict(os.environ)
    if ca_dir is not None:
        host = ca_dir / "bench"
        files = ClusterTlsFiles(
            ca_file=str(host / "ca.pem"),
            cert_file=str(host / "cert.pem"),
            key_file=str(host / "key.pem"),
        )
        env.update(ray_tls_environment(files))
        command += ["--cluster-tls", str(ca_dir)]
    result = subprocess.run(command, env=env, capture_output=True, check=True)
    figures: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return figures


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
