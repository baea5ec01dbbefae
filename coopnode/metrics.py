"""The node's Prometheus metrics, in one registry served at /metrics.

Shards report the size and duration of each group commit in their replies, so every
figure is recorded here, in the front, with no second scrape target per actor.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.operations = Counter(
            "coopnode_wallet_operations",
            "Wallet operations answered, by kind and outcome.",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.declines = Counter(
            "coopnode_wallet_declines",
            "Wallet operations declined, by reason code.",
            ["reason"],
            registry=self.registry,
        )
        # An alert: each one is a defect (an operation that could not be encoded, decoded
        # or applied, refused alone); the shard or front logs it as critical.
        self.operations_failed = Counter(
            "coopnode_wallet_operations_failed",
            "Wallet operations refused because they could not be encoded, decoded or applied.",
            ["shard", "kind"],
            registry=self.registry,
        )
        self.front_batch_ops = Histogram(
            "coopnode_wallet_front_batch_ops",
            "Operations per Ray call from the front to a shard.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=self.registry,
        )
        self.commit_ops = Histogram(
            "coopnode_wallet_commit_ops",
            "Operations per group commit in a shard.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "coopnode_wallet_commit_seconds",
            "Time of one group commit (transaction and fsync).",
            buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5),
            registry=self.registry,
        )
        self.call_seconds = Histogram(
            "coopnode_wallet_call_seconds",
            "Round trip of one batch from the front to a shard and back.",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0, 5.0),
            registry=self.registry,
        )
        self.call_retries = Counter(
            "coopnode_wallet_call_retries",
            "Batches sent again after their shard failed, by shard.",
            ["shard"],
            registry=self.registry,
        )
        self.shards_ready = Gauge(
            "coopnode_wallet_shards_ready",
            "Wallet shards that answered the last health check.",
            registry=self.registry,
        )
        self.till_connected = Gauge(
            "coopnode_till_connected",
            "Tills connected to this front over the till channel.",
            registry=self.registry,
        )
        self.till_decisions = Counter(
            "coopnode_till_decisions",
            "Decisions sent to tills, by frame kind, outcome and decline reason.",
            ["kind", "outcome", "reason"],
            registry=self.registry,
        )
        self.till_decision_seconds = Histogram(
            "coopnode_till_decision_seconds",
            "From a frame read off a till's socket to its decision written back.",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0),
            registry=self.registry,
        )
        self.till_refused = Counter(
            "coopnode_till_refused_frames",
            "Till frames refused without a decision (malformed, unsigned, another till's).",
            ["reason"],
            registry=self.registry,
        )
        self.till_offline_refused = Counter(
            "coopnode_till_offline_refused",
            "Offline taps a till approved and the node refused when they were forwarded, "
            "kept for staff (GET /api/v1/offline-refusals), by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.till_throttled = Counter(
            "coopnode_till_throttled_frames",
            "Till frames held back by their till's token bucket.",
            registry=self.registry,
        )
        self.till_deny_pushes = Counter(
            "coopnode_till_deny_pushes",
            "Deny-list changes pushed, once per connected till they went to.",
            registry=self.registry,
        )
