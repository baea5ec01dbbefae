"""What one fsynced group commit of a wallet shard costs: pages written, CPU and wall time.

One `WalletStore` on disk (no Ray, no network), with `--members` wallets and `--preload`
payments already booked (a shard in the middle of a lunch rush), then 1,000 commits each
of 1, 3 and 8 payments to random members, fsync on. Pages written come from the
process's own write counters (/proc/self/io), so they count every page LMDB writes,
the meta page included.

Run: .venv/bin/python -m benchmarks.store_commits [--members 5000] [--preload 55000]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from coopnode.actors.wallet.store import WalletStore
from coopnode.domain.messages import OpenWallet, Pay
from coopnode.domain.money import Purse, TillKind
from coopnode.domain.rules import CoopRules

COMMITS = 1_000
BATCH_SIZES = (1, 3, 8)
PAGE_BYTES = 4096
TILLS = 64


def _written_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        name, _, value = line.partition(": ")
        if name == "wchar":
            return int(value)
    raise RuntimeError("/proc/self/io has no wchar")


class _Payments:
    def __init__(self, members: int) -> None:
        self._members = members
        self._random = random.Random(1)
        self._count = 0

    def batch(self, size: int) -> list[Pay]:
        payments = []
        for _ in range(size):
            self._count += 1
            till = f"till-{self._count % TILLS:04d}"
            payments.append(
                Pay(
                    key=f"{till}:{self._count}",
                    member_no=f"2029{self._random.randrange(self._members):08d}",
                    amount_yen=1,
                    till_kind=TillKind.SHOP,
                    store="bench",
                    till_id=till,
                )
            )
        return payments


def _open(path: Path, fsync: bool) -> WalletStore:
    return WalletStore(
        path,
        shard_index=0,
        shard_count=1,
        coops={"demo": CoopRules()},
        map_size_bytes=4 << 30,
        fsync=fsync,
    )


def run(members: int, preload: int) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="cn-store-"))
    try:
        payments = _Payments(members)
        store = _open(directory, fsync=False)
        store.apply_batch(
            [
                OpenWallet(
                    key=f"open-{index}",
                    member_no=f"2029{index:08d}",
                    coop="demo",
                    deposits={Purse.BASE: 100_000},
                )
                for index in range(members)
            ]
        )
        for _ in range(preload // 1_000):
            store.apply_batch(payments.batch(1_000))
        store.close()
        store = _open(directory, fsync=True)
        figures: dict[str, Any] = {"members": members, "preloaded_payments": preload}
        for size in BATCH_SIZES:
            written = _written_bytes()
            cpu = os.times()
            started = time.perf_counter()
            for _ in range(COMMITS):
                store.apply_batch(payments.batch(size))
            wall_s = time.perf_counter() - started
            after = os.times()
            figures[f"batch_{size}"] = {
                "pages_per_commit": (_written_bytes() - written) / COMMITS / PAGE_BYTES,
                "cpu_us_per_commit": (after.user + after.system - cpu.user - cpu.system)
                / COMMITS
                * 1e6,
                "wall_us_per_commit": wall_s / COMMITS * 1e6,
            }
        store.close()
        return figures
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def summary(figures: dict[str, Any]) -> str:
    parts = [
        f"{size}/commit: {row['pages_per_commit']:.1f} pages, "
        f"cpu {row['cpu_us_per_commit']:.0f} µs, wall {row['wall_us_per_commit']:.0f} µs"
        for size in BATCH_SIZES
        for row in [figures[f"batch_{size}"]]
    ]
    return "store commits (fsync on): " + " | ".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=5_000)
    parser.add_argument("--preload", type=int, default=55_000)
    args = parser.parse_args(argv)
    figures = run(args.members, args.preload)
    print(summary(figures))
    print(msgspec.json.encode(figures).decode())


if __name__ == "__main__":
    main()
