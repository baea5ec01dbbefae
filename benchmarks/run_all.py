"""`make bench`: run every benchmark, one after another, and print its figures.

Each benchmark is a module of this package with a `main()` that prints a summary line and
a JSON document. They run one at a time because they measure a two-core machine: two at
once would measure each other.
"""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = (
    "benchmarks.disk_flush",
    "benchmarks.store_commits",
    "benchmarks.wallet_ray",
    # The same with and without cluster TLS (Ray's gRPC and the links), alternated.
    "benchmarks.link_tls",
    "benchmarks.http_payments",
    "benchmarks.tills",
    # Taps through one front and through two on a cluster on this machine, fsync on and off.
    "benchmarks.fronts",
    # The node's taps beside the PostgreSQL peer's, interleaved in one run.
    "benchmarks.side_by_side",
    "benchmarks.identity_signin",
    "benchmarks.portal_pages",
    # Tap latency while a day of 100,000 taps closes and the unused balance is built.
    "benchmarks.books_close",
)


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        started = time.monotonic()
        try:
            importlib.import_module(name).main([])
        except Exception as error:  # One broken benchmark must not hide the others' figures.
            failed.append(name)
            print(f"!! {name} failed: {error!r}", flush=True)
        print(f"== {name} took {time.monotonic() - started:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
