"""The replica state machine, driven by hand: quorum commit, view change, recovery and
repair of a corrupt entry."""

from __future__ import annotations

import pytest

from coopnode.replication import Replica, ReplicationInvariantViolation, Request, Status, Write
from coopnode.replication.messages import (
    Prepare,
    Recovery,
    decode_entry,
    encode_entry,
    make_entry,
)
from tests.replication.cluster import Cluster


def request(key: int, client_id: int = 7) -> Request:
    return Request(client_id=client_id, request_key=key, payload=f"pay {key}".encode())


def status_of(replica: Replica) -> Status:
    """The replica's status, read afresh (a call, so that the type checker does not keep
    a status it narrowed before the replica moved on)."""
    return replica.status


def test_an_op_commits_only_once_a_quorum_holds_it_durable() -> None:
    cluster = Cluster()
    primary = cluster.replicas[0]
    cluster.take(0, primary.on_request(request(1)))
    cluster.flush(0)
    assert primary.commit_max == 0
    assert cluster.acknowledged == []
    # The prepare reaches backup 1 only; its durable copy is the second vote of three.
    cluster.deliver(only={0, 1})
    assert primary.commit_max == 1
    assert cluster.acknowledged == [(0, 0, 1)]
    assert cluster.applied[0] == [1]


def test_the_primarys_own_flush_need_not_come_first() -> None:
    cluster = Cluster()
    cluster.take(0, cluster.replicas[0].on_request(request(1)))
    # The primary's disk stalls; both backups flush and answer.
    stalled, cluster.pending_writes[0] = cluster.pending_writes[0], []
    for source, target, message in list(cluster.inbox):
        cluster.inbox.remove((source, target, message))
        cluster.take(target, cluster.replicas[target].on_message(message))
    cluster.flush(1)
    cluster.flush(2)
    for _, target, message in list(cluster.inbox):
        cluster.take(target, cluster.replicas[target].on_message(message))
    assert cluster.replicas[0].commit_max == 1
    assert stalled and cluster.replicas[0].op_durable == 0


def test_a_request_sent_twice_is_one_op_acknowledged_twice() -> None:
    cluster = Cluster()
    cluster.take(0, cluster.replicas[0].on_request(request(1)))
    cluster.deliver()
    cluster.take(0, cluster.replicas[0].on_request(request(1)))
    assert cluster.replicas[0].op == 1
    assert cluster.acknowledged == [(0, 0, 1), (0, 0, 1)]


def test_every_replica_applies_the_primarys_timestamp() -> None:
    cluster = Cluster()
    cluster.take(0, cluster.replicas[0].on_request(request(1)))
    cluster.deliver()
    cluster.tick(cluster.bounds.heartbeat_interval_ticks)
    stamped = {replica.log[0].timestamp_ms for replica in cluster.replicas}
    assert stamped == {cluster.clocks[0].now_ms}
    assert cluster.applied == [[1], [1], [1]]


def test_a_silent_primary_is_replaced_and_acknowledged_ops_survive() -> None:
    cluster = Cluster()
    for key in (1, 2):
        cluster.take(0, cluster.replicas[0].on_request(request(key)))
    cluster.deliver(only={0, 1})  # committed by 0 and 1; replica 2 has heard nothing
    assert cluster.acknowledged == [(0, 0, 1), (0, 0, 2)]
    cluster.down.add(0)
    cluster.tick(cluster.bounds.primary_silence_timeout_ticks + 2)
    new_primary = cluster.replicas[1]
    assert new_primary.status is Status.NORMAL and new_primary.view == 1
    assert cluster.replicas[2].view == 1 and cluster.replicas[2].op == 2
    assert [entry.request_key for entry in cluster.replicas[2].log] == [1, 2]
    cluster.take(1, new_primary.on_request(request(3)))
    cluster.deliver()
    assert cluster.acknowledged[-1] == (1, 1, 3)


def test_the_new_primary_takes_the_log_of_the_latest_view() -> None:
    cluster = Cluster()
    cluster.take(0, cluster.replicas[0].on_request(request(1)))
    cluster.deliver()
    # Op 2 reaches replica 2 only and is never committed; op 1 is.
    cluster.take(0, cluster.replicas[0].on_request(request(2)))
    cluster.deliver(only={0, 2})
    cluster.down.add(0)
    cluster.tick(cluster.bounds.primary_silence_timeout_ticks + 2)
    # Replica 1's do_view_change (log of op 1) and replica 2's (ops 1 and 2) are a
    # quorum with the same log_view: the longer log wins, so op 2 is kept and committed.
    assert [entry.request_key for entry in cluster.replicas[1].log] == [1, 2]
    assert cluster.replicas[1].commit_max == 2


def test_a_replica_refuses_messages_of_an_older_view() -> None:
    cluster = Cluster()
    cluster.down.add(0)
    cluster.tick(cluster.bounds.primary_silence_timeout_ticks + 2)
    assert cluster.replicas[1].view == 1
    old_primary = cluster.replicas[0]
    stale = make_entry(
        op=1, view=0, client_id=7, request_key=9, timestamp_ms=1, payload=b"x", parent=bytes(16)
    )
    assert old_primary.view == 0
    for backup in (1, 2):
        assert cluster.replicas[backup].on_message(Prepare(view=0, commit=1, entry=stale)) == []
        assert cluster.replicas[backup].op == 0


def test_an_old_primary_that_comes_back_joins_the_new_view() -> None:
    cluster = Cluster()
    cluster.take(0, cluster.replicas[0].on_request(request(1)))
    cluster.deliver()
    cluster.down.add(0)
    cluster.tick(cluster.bounds.primary_silence_timeout_ticks + 2)
    cluster.down.discard(0)
    # The old primary still thinks it leads view 0; a request it takes can never commit,
    # and the new view's heartbeat brings it the new log.
    cluster.take(0, cluster.replicas[0].on_request(request(2)))
    cluster.tick(cluster.bounds.heartbeat_interval_ticks + 1)
    old = cluster.replicas[0]
    assert old.view == 1 and old.status is Status.NORMAL
    assert [entry.request_key for entry in old.log] == [1]
    assert all(view == 0 or index == 1 for index, view, _ in cluster.acknowledged)


def test_a_restarted_replica_repairs_a_corrupt_entry_from_the_primary() -> None:
    cluster = Cluster()
    for key in (1, 2, 3):
        cluster.take(0, cluster.replicas[0].on_request(request(key)))
    cluster.deliver()
    disk = dict(cluster.disks[2])
    corrupt = bytearray(disk[2])
    corrupt[-3] ^= 0x40
    disk[2] = bytes(corrupt)
    assert decode_entry(disk[2]) is None and decode_entry(disk[1]) is not None
    restarted = Replica.restart(
        cluster.bounds, 2, cluster.clocks[2], disk, snapshot=None, incarnation=1
    )
    cluster.replicas[2] = restarted
    assert restarted.status is Status.RECOVERING
    effects = restarted.on_tick()
    assert {type(effect.message) for effect in effects if hasattr(effect, "message")} == {Recovery}
    cluster.take(2, effects)
    cluster.inbox = [item for item in cluster.inbox if item[1] == 0 or item[1] == 1]
    for source, target, message in list(cluster.inbox):
        cluster.inbox.remove((source, target, message))
        cluster.take(target, cluster.replicas[target].on_message(message))
    answers = [(s, t, m) for s, t, m in cluster.inbox if t == 2]
    cluster.inbox = []
    effects = []
    for _, _, message in answers:
        effects.extend(restarted.on_message(message))
    # Only the corrupt op is written again: the intact ones are already on the disk.
    assert [effect.entry.op for effect in effects if isinstance(effect, Write)] == [2]
    assert status_of(restarted) is Status.NORMAL and restarted.op == 3
    assert restarted.log[1].checksum == cluster.replicas[0].log[1].checksum


def test_recovery_waits_for_the_primary_of_the_latest_view() -> None:
    cluster = Cluster()
    cluster.take(0, cluster.replicas[0].on_request(request(1)))
    cluster.deliver()
    restarted = Replica.restart(
        cluster.bounds, 2, cluster.clocks[2], cluster.disks[2], snapshot=None, incarnation=1
    )
    cluster.replicas[2] = restarted
    cluster.down.add(0)  # the primary does not answer
    cluster.tick(cluster.bounds.resend_interval_ticks * 2)
    assert restarted.status is Status.RECOVERING


def test_a_checksum_catches_a_flipped_bit() -> None:
    entry = make_entry(
        op=1, view=0, client_id=1, request_key=1, timestamp_ms=5, payload=b"abc", parent=bytes(16)
    )
    data = bytearray(encode_entry(entry))
    assert decode_entry(bytes(data)) == entry
    for position in range(len(data)):
        flipped = bytearray(data)
        flipped[position] ^= 0x01
        assert decode_entry(bytes(flipped)) is None


def test_two_entries_for_one_op_in_one_view_is_an_invariant_violation() -> None:
    cluster = Cluster()
    cluster.take(0, cluster.replicas[0].on_request(request(1)))
    cluster.deliver()
    other = make_entry(
        op=1, view=0, client_id=7, request_key=2, timestamp_ms=9, payload=b"y", parent=bytes(16)
    )
    with pytest.raises(ReplicationInvariantViolation):
        cluster.replicas[1].on_message(Prepare(view=0, commit=0, entry=other))


def test_a_lone_replica_restarts_from_its_own_log() -> None:
    cluster = Cluster(replica_count=1)
    for key in (1, 2):
        cluster.take(0, cluster.replicas[0].on_request(request(key)))
    cluster.flush(0)
    assert cluster.acknowledged == [(0, 0, 1), (0, 0, 2)]
    restarted = Replica.restart(
        cluster.bounds, 0, cluster.clocks[0], cluster.disks[0], snapshot=None, incarnation=1
    )
    assert restarted.status is Status.NORMAL and restarted.op == 2
    assert restarted.commit_max == 2


def test_a_lone_replica_with_a_corrupt_entry_stops() -> None:
    cluster = Cluster(replica_count=1)
    for key in (1, 2):
        cluster.take(0, cluster.replicas[0].on_request(request(key)))
    cluster.flush(0)
    disk = dict(cluster.disks[0])
    disk[1] = disk[1][:-1] + bytes([disk[1][-1] ^ 1])
    with pytest.raises(ReplicationInvariantViolation):
        Replica.restart(cluster.bounds, 0, cluster.clocks[0], disk, snapshot=None, incarnation=1)


def test_a_whole_shard_restarted_at_once_rejoins_from_its_disks() -> None:
    """A power cut: no replica can answer another's recovery, so each falls back on its
    own log and view record after `recovery_timeout_ticks`, and a view change from a
    quorum of them keeps every committed op."""
    cluster = Cluster()
    for key in (1, 2, 3):
        cluster.take(0, cluster.replicas[0].on_request(request(key)))
    cluster.deliver()
    assert cluster.replicas[0].commit_max == 3 and len(cluster.acknowledged) == 3
    for index in range(3):
        cluster.restart(index, incarnation=10 + index)
    cluster.tick(cluster.bounds.recovery_timeout_ticks // 2)
    assert {replica.status for replica in cluster.replicas} == {Status.RECOVERING}
    cluster.tick(cluster.bounds.recovery_timeout_ticks + cluster.bounds.view_change_timeout_ticks)
    assert {replica.status for replica in cluster.replicas} == {Status.NORMAL}
    assert len({replica.view for replica in cluster.replicas}) == 1
    assert all(replica.view >= 1 and replica.op == 3 for replica in cluster.replicas)
    primary = next(replica for replica in cluster.replicas if replica.is_primary)
    cluster.take(primary.index, primary.on_request(request(4)))
    cluster.deliver()
    assert primary.commit_max == 4 and cluster.acknowledged[-1] == (primary.index, primary.view, 4)


def test_a_replica_whose_disk_was_lost_never_rejoins_on_its_own() -> None:
    """Empty, it may have voted for ops it no longer holds: it waits for normal peers."""
    cluster = Cluster()
    cluster.take(0, cluster.replicas[0].on_request(request(1)))
    cluster.deliver()
    cluster.down = {0, 1}
    lost = cluster.restart(2, incarnation=5, disk_lost=True)
    cluster.tick(cluster.bounds.recovery_timeout_ticks * 3)
    assert status_of(lost) is Status.RECOVERING and lost.disk_log is None
    cluster.down = set()
    cluster.tick(cluster.bounds.resend_interval_ticks * 2)
    assert status_of(lost) is Status.NORMAL and lost.op == 1


def test_a_replica_with_a_corrupt_entry_never_rejoins_on_its_own() -> None:
    """A corrupt entry may be one it acknowledged: only a peer may replace it."""
    cluster = Cluster()
    for key in (1, 2):
        cluster.take(0, cluster.replicas[0].on_request(request(key)))
    cluster.deliver()
    corrupt = bytearray(cluster.disks[2][1])
    corrupt[-3] ^= 0x40
    cluster.disks[2][1] = bytes(corrupt)
    cluster.down = {0, 1}
    rotten = cluster.restart(2, incarnation=6)
    cluster.tick(cluster.bounds.recovery_timeout_ticks * 3)
    assert rotten.status is Status.RECOVERING and rotten.disk_log is None
