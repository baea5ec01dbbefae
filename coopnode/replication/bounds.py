"""Every bound of the replication protocol, with its unit in its name and why it is so.

Time inside the protocol is counted in ticks: the host calls `Replica.on_tick` at a fixed
interval (`tick_interval_ms` on a real shard), so a timeout is a number of ticks and a
simulation replays it exactly.
"""

from __future__ import annotations

import msgspec


class ReplicationBounds(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The bounds one shard's replicas share; every replica of a shard must hold the same."""

    # Three replicas outlive one lost disk or host, five outlive two; one is today's shard.
    # More than seven would make every commit wait on a quorum of four or more for nothing
    # a co-op needs.
    replica_count: int = 3
    # How long a backup waits without a word from the primary (a prepare or a heartbeat)
    # before it starts a view change. Several heartbeats long, so that one lost heartbeat
    # does not depose a healthy primary.
    primary_silence_timeout_ticks: int = 40
    # How often a primary that has nothing to prepare tells the backups it is alive and
    # how far it has committed.
    heartbeat_interval_ticks: int = 8
    # How long a replica stays in one view change before it gives up on that view's
    # primary and starts the next view (the candidate may itself be down).
    view_change_timeout_ticks: int = 60
    # How long a restarted replica waits for its peers to answer its recovery before it
    # gives up on them and starts a view change from its own disk's log and view record
    # (every replica restarted at once: none is normal, none can answer). Several view
    # changes long, so that a replica whose peers are up always recovers from them.
    recovery_timeout_ticks: int = 200
    # How often messages that may have been lost are sent again: prepares not yet
    # acknowledged, start_view_change, do_view_change, recovery and repair requests.
    resend_interval_ticks: int = 6
    # How many operations a primary keeps prepared but uncommitted. Past it, requests wait
    # at the client (which sends again): a bounded pipeline keeps a view change's work
    # and a stalled quorum's memory bounded.
    pipeline_ops_max: int = 32
    # How many entries one repair answer carries, so that a far-behind replica catches
    # up in bounded messages rather than one huge one.
    repair_entries_per_message_max: int = 64
    # A replica checkpoints its application every this many ops (at ops that are
    # multiples of it, the same ops on every replica) and then cuts its log there: what
    # a view change or a recovery carries is the log since a checkpoint, and a replica
    # left further behind than that takes a peer's snapshot.
    checkpoint_interval_ops: int = 1024
    # The longest log a replica keeps, checkpoints or not (a checkpoint waits for the
    # application; a stalled one must not let the log grow without end): view-change and
    # recovery messages carry the log, so this bounds them. A primary whose log is this
    # long prepares nothing more until a checkpoint cuts it.
    log_ops_max: int = 100_000

    def __post_init__(self) -> None:
        if self.replica_count < 1 or self.replica_count > 7 or self.replica_count % 2 == 0:
            raise ValueError("replica_count must be 1, 3, 5 or 7: an odd count up to seven")
        positive = (
            self.primary_silence_timeout_ticks,
            self.heartbeat_interval_ticks,
            self.view_change_timeout_ticks,
            self.recovery_timeout_ticks,
            self.resend_interval_ticks,
            self.pipeline_ops_max,
            self.repair_entries_per_message_max,
            self.checkpoint_interval_ops,
            self.log_ops_max,
        )
        if min(positive) < 1:
            raise ValueError("every replication bound must be at least 1")
        if self.heartbeat_interval_ticks * 2 > self.primary_silence_timeout_ticks:
            raise ValueError("primary_silence_timeout_ticks must span two heartbeats at least")

    @property
    def quorum(self) -> int:
        """A majority: any two quorums share a replica, which is what carries an
        acknowledged operation across a view change."""
        return self.replica_count // 2 + 1
