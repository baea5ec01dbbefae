"""The storage fault of tests and benchmarks: one replica's flushes stall now and then.

Issue 16 §7: to measure what a quorum buys on one machine, where every replica shares
one disk, one replica's log flushes are made to stall as a bad disk's do: each flush
waits `stall_ms` more with the probability that puts stalls about `every_ms` apart. The
settings refuse it in production; it is off unless a test or a benchmark turns it on.
"""

from __future__ import annotations

import math
import random
import time

from coopnode.settings import StorageFaultSettings


class FlushStalls:
    """Decides, flush by flush, whether this one stalls, and stalls it (on the log's
    writer thread, never the event loop)."""

    def __init__(self, fault: StorageFaultSettings, replica: int, shard: int) -> None:
        self._on = fault.enabled and fault.replica == replica
        self._stall_s = fault.stall_ms / 1000
        self._every_s = fault.every_ms / 1000
        # Seeded per shard, so that two runs of a benchmark stall alike.
        self._random = random.Random(fault.seed * 1_000 + shard)
        self._last = time.monotonic()
        self.stalls = 0

    def before_flush(self) -> None:
        """Called by the writer thread before each flush."""
        if not self._on:
            return
        now = time.monotonic()
        elapsed_s, self._last = now - self._last, now
        # A Poisson process of stalls, one per `every_s` on average: the chance that one
        # falls in the time since the last flush.
        if self._random.random() < 1 - math.exp(-elapsed_s / self._every_s):
            self.stalls += 1
            time.sleep(self._stall_s)
