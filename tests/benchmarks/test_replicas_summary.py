"""The replicas benchmark prints each configuration's p99 as a ratio of one replica's,
measured in the same run, and its storage fault is the settings' (refused in production)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.replicas import CONFIGURATIONS, summary
from coopnode.settings import Environment, NodeSettings, ReplicationSettings, Settings
from coopnode.settings import StorageFaultSettings as Fault


def run(label: str, p99_ms: float) -> dict[str, Any]:
    fixed = {"latency_p50_ms": 1.0, "latency_p99_ms": p99_ms, "latency_p999_ms": 9.0}
    return {
        "label": label,
        "fixed": {**fixed, "errors": 0},
        "search": {"max_rate_held_per_s": 1_000.0},
        "books_balanced": True,
    }


def test_each_p99_is_read_against_one_replicas_in_the_same_run() -> None:
    text = summary([run("one replica", 20.0), run("three replicas, one stalling", 10.0)])
    assert "p99   20.0 ms ( 1.0× one replica)" in text
    assert "p99   10.0 ms ( 0.5× one replica)" in text


def test_the_configurations_stall_one_replica_with_the_settings_fault() -> None:
    labels = [label for label, _ in CONFIGURATIONS]
    assert labels[0] == "one replica" and len(labels) == 4
    stalling = dict(CONFIGURATIONS)["three replicas, one stalling"]
    assert stalling["COOPNODE_REPLICATION__STORAGE_FAULT__REPLICA"] == "0"
    production = NodeSettings(environment=Environment.PRODUCTION)
    fault = ReplicationSettings(replica_count=3, storage_fault=Fault(replica=0))
    with pytest.raises(ValueError, match="refused in production"):
        Settings(node=production, replication=fault)
