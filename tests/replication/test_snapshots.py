"""Checkpoints cut the log; a replica left behind a peer's checkpoint takes its snapshot."""

from __future__ import annotations

from coopnode.replication import Replica, Request, Status
from coopnode.replication.messages import (
    DoViewChange,
    Prepares,
    Snapshot,
    SnapshotReply,
    make_entry,
    make_snapshot,
)
from tests.replication.cluster import Cluster


def request(key: int) -> Request:
    return Request(client_id=7, request_key=key, payload=f"pay {key}".encode())


def status_of(replica: Replica) -> Status:
    return replica.status


def commit_requests(cluster: Cluster, keys: range, *, only: set[int] | None = None) -> None:
    for key in keys:
        cluster.take(0, cluster.replicas[0].on_request(request(key)))
        cluster.deliver(only=only)
    cluster.tick(cluster.bounds.heartbeat_interval_ticks, only=only)


def test_a_checkpoint_cuts_the_log_at_its_entry() -> None:
    cluster = Cluster(checkpoint_interval_ops=4)
    commit_requests(cluster, range(1, 11))
    for replica in cluster.replicas:
        assert replica.applied_op == 10
        assert replica.snapshot is not None and replica.snapshot.op == 8
        # The checkpoint's entry stays, so the log still chains and its time runs on.
        assert [entry.op for entry in replica.log] == [8, 9, 10]
        assert replica.log_first_op == 8 and not replica.needs_snapshot


def test_a_request_behind_the_checkpoint_is_answered_not_prepared_again() -> None:
    cluster = Cluster(checkpoint_interval_ops=4)
    commit_requests(cluster, range(1, 11))
    before = list(cluster.acknowledged)
    cluster.take(0, cluster.replicas[0].on_request(request(10)))
    assert cluster.replicas[0].op == 10
    assert cluster.acknowledged == [*before, (0, 0, 10)]
    # An older request of the same client is an old copy: neither prepared nor answered.
    assert cluster.replicas[0].on_request(request(3)) == []


def test_a_replica_behind_the_checkpoint_catches_up_from_a_snapshot() -> None:
    cluster = Cluster(checkpoint_interval_ops=4)
    commit_requests(cluster, range(1, 11), only={0, 1})  # replica 2 hears nothing
    lagging = cluster.replicas[2]
    assert lagging.op == 0
    # Replica 2 hears the heartbeat, asks for ops 1..10, gets the primary's log from its
    # checkpoint (op 8), and then a snapshot for ops 1..8.
    cluster.tick(cluster.bounds.heartbeat_interval_ticks + cluster.bounds.resend_interval_ticks)
    assert cluster.installed[2] == [8]
    assert lagging.applied_op == 10 and not lagging.needs_snapshot
    assert lagging.snapshot is not None and lagging.snapshot.op == 8


def test_a_corrupt_snapshot_or_one_of_another_history_is_refused() -> None:
    cluster = Cluster(checkpoint_interval_ops=4)
    commit_requests(cluster, range(1, 11), only={0, 1})
    primary = cluster.replicas[0]
    good = primary.snapshot
    assert good is not None
    lagging = cluster.replicas[2]
    log = list(primary.log)
    cluster.take(2, lagging.on_message(Prepares(view=0, replica=0, commit=10, entries=log)))
    assert lagging.needs_snapshot
    corrupt = Snapshot(good.entry, good.sessions, b"other state", good.checksum)
    assert lagging.on_message(SnapshotReply(replica=0, snapshot=corrupt)) == []
    stranger = make_entry(
        op=8, view=0, client_id=1, request_key=1, timestamp_ms=1, payload=b"", parent=bytes(16)
    )
    elsewhere = make_snapshot(stranger, [], b"another shard's state")
    assert lagging.on_message(SnapshotReply(replica=0, snapshot=elsewhere)) == []
    assert lagging.needs_snapshot
    assert lagging.on_message(SnapshotReply(replica=0, snapshot=good)) != []
    assert lagging.applied_op == 10


def test_a_view_change_carries_the_log_from_the_checkpoint_only() -> None:
    cluster = Cluster(checkpoint_interval_ops=4)
    commit_requests(cluster, range(1, 11))
    cluster.down.add(0)
    cluster.tick(cluster.bounds.primary_silence_timeout_ticks + 2)
    sent = [message for message in cluster.sent if isinstance(message, DoViewChange)]
    assert sent and all(m.log[0].op == 8 for m in sent)
    assert status_of(cluster.replicas[1]) is Status.NORMAL and cluster.replicas[1].view == 1


def test_a_replica_restarts_from_its_snapshot() -> None:
    cluster = Cluster(checkpoint_interval_ops=4)
    commit_requests(cluster, range(1, 11))
    snapshot = cluster.replicas[2].snapshot
    assert snapshot is not None
    restarted = Replica.restart(
        cluster.bounds, 2, cluster.clocks[2], {}, snapshot=snapshot, incarnation=1
    )
    assert restarted.applied_op == 8 and restarted.log_first_op == 8
    cluster.replicas[2] = restarted
    cluster.tick(cluster.bounds.resend_interval_ticks + 1)
    assert status_of(restarted) is Status.NORMAL
    assert restarted.applied_op == 10 and cluster.installed[2] == []
