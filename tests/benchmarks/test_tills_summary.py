"""The till benchmark's summary says the durability the node ran with."""

from __future__ import annotations

from typing import Any

from benchmarks.tills import summary
from coopnode.loadtest.node_process import durability
from coopnode.settings import Settings, WalletSettings


def figures(settings: Settings) -> dict[str, Any]:
    run = {"latency_p50_ms": 1.0, "latency_p99_ms": 2.0, "latency_p999_ms": 3.0, "errors": 0}
    disk = {"flushes": 1, "seconds": 1.0, "p50_ms": 0.1, "p99_ms": 0.2, "p999_ms": 0.3,
            "max_ms": 0.4, "stalls": {"over_20_ms": 0, "over_50_ms": 0}}  # fmt: skip
    return {
        "fixed": run,
        "search": {"max_rate_held_per_s": 100.0, "limited_by": "latency"},
        "block_idle_s": [0.001],
        "block_loaded_s": [0.002],
        "disk_before": disk,
        "commits": {"commits": 1, "over_20_ms": 0, "over_50_ms": 0, "over_100_ms": 0},
        "shards": 1,
        "books_balanced": True,
        "fsync": settings.wallet.fsync,
        "durability": durability(settings),
    }


def test_a_node_run_without_fsync_is_not_summarised_as_fsync_on() -> None:
    line = summary(figures(Settings(wallet=WalletSettings(fsync=False))), till_count=64)
    assert "fsync off" in line
    assert "fsync on" not in line


def test_a_node_run_with_fsync_says_so() -> None:
    assert "(64 tills, fsync on, 1 shard(s))" in summary(figures(Settings()), till_count=64)
