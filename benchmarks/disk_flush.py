"""How long this machine's disk takes to make one page durable, and how often it stalls.

A tap is answered only after the group commit that booked it is on the device: LMDB
writes the changed pages and the meta page and flushes them (`fdatasync`) twice per
commit. So no tap is faster than the disk's flush, and while the device stalls, every tap
waits. This probe writes one 4 KiB page and flushes it, every `--interval-ms`, for
`--seconds`, in the directory given (the node's data directory when the till benchmark
calls it), and prints the flush time's percentiles and how many flushes stalled.

The till benchmark runs it just before its node starts, so that its tap p99 can be read
against the disk of the same hour: on a host whose disk stalls for 50-100 ms every few
seconds, the tap p99 of a 5 s step is set by the stalls, not by the node's CPU.

Run: .venv/bin/python -m benchmarks.disk_flush [--seconds 10] [--dir var]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

PAGE_BYTES = 4096
# The probe cycles over this many pages, as a shard's commits touch a few pages each.
PAGES = 64
STALL_THRESHOLDS_MS = (10, 20, 50, 100)


def probe(directory: Path, seconds: float, interval_s: float = 0.002) -> dict[str, Any]:
    """Flush one page every `interval_s` for `seconds`; the flush times' figures."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "disk-flush-probe"
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    durations_s: list[float] = []
    page = b"\xa5" * PAGE_BYTES
    try:
        deadline = time.monotonic() + seconds
        count = 0
        while time.monotonic() < deadline:
            os.pwrite(descriptor, page, (count % PAGES) * PAGE_BYTES)
            count += 1
            started = time.perf_counter()
            os.fdatasync(descriptor)
            durations_s.append(time.perf_counter() - started)
            time.sleep(interval_s)
    finally:
        os.close(descriptor)
        path.unlink(missing_ok=True)
    return figures(durations_s, seconds)


def figures(durations_s: list[float], seconds: float) -> dict[str, Any]:
    ordered = sorted(durations_s)
    if not ordered:
        raise ValueError("no flush was measured")

    def quantile_ms(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000

    return {
        "seconds": seconds,
        "flushes": len(ordered),
        "p50_ms": quantile_ms(0.5),
        "p99_ms": quantile_ms(0.99),
        "p999_ms": quantile_ms(0.999),
        "max_ms": ordered[-1] * 1000,
        "stalls": {
            f"over_{limit}_ms": sum(1 for value in ordered if value * 1000 > limit)
            for limit in STALL_THRESHOLDS_MS
        },
    }


def summary(result: dict[str, Any]) -> str:
    stalls = result["stalls"]
    return (
        f"disk flush (fdatasync of one 4 KiB page, {result['flushes']:,} in "
        f"{result['seconds']:g} s): p50 {result['p50_ms']:.2f} ms, p99 "
        f"{result['p99_ms']:.2f} ms, p99.9 {result['p999_ms']:.2f} ms, max "
        f"{result['max_ms']:.1f} ms; stalls over 20 ms: {stalls['over_20_ms']}, "
        f"over 50 ms: {stalls['over_50_ms']}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval-ms", type=float, default=2.0)
    parser.add_argument("--dir", type=Path, default=Path("var"))
    args = parser.parse_args(argv)
    result = probe(args.dir, args.seconds, args.interval_ms / 1000)
    print(summary(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
