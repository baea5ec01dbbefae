"""A hand-driven shard for unit tests: messages move only when a test moves them."""

from __future__ import annotations

from collections.abc import Iterable

from coopnode.replication import (
    Acknowledge,
    Apply,
    Effect,
    Message,
    Replica,
    ReplicationBounds,
    Send,
    Write,
)
from coopnode.replication.effects import Checkpoint, Install, RecordView
from coopnode.replication.messages import Snapshot, encode_entry, make_snapshot


class FixedClock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def realtime_ms(self) -> int:
        return self.now_ms


class Cluster:
    """Three (or more) replicas; every effect is kept for the test to look at or carry out."""

    def __init__(self, replica_count: int = 3, checkpoint_interval_ops: int = 1024) -> None:
        self.bounds = ReplicationBounds(
            replica_count=replica_count, checkpoint_interval_ops=checkpoint_interval_ops
        )
        self.clocks = [FixedClock(1_800_000_000_000 + 1000 * i) for i in range(replica_count)]
        self.replicas = [
            Replica.format(self.bounds, index, self.clocks[index]) for index in range(replica_count)
        ]
        self.disks: list[dict[int, bytes]] = [{} for _ in range(replica_count)]
        self.inbox: list[tuple[int, int, Message]] = []
        self.sent: list[Message] = []
        self.pending_writes: list[list[Write | RecordView]] = [[] for _ in range(replica_count)]
        # Each disk's view record, written in order with its entries (formatted: view 0).
        self.view_records: list[tuple[int, int] | None] = [(0, 0)] * replica_count
        self.applied: list[list[int]] = [[] for _ in range(replica_count)]
        self.acknowledged: list[tuple[int, int, int]] = []
        self.down: set[int] = set()
        self.pending_snapshots: list[list[Snapshot]] = [[] for _ in range(replica_count)]
        self.installed: list[list[int]] = [[] for _ in range(replica_count)]

    def take(self, index: int, effects: Iterable[Effect]) -> None:
        for effect in effects:
            match effect:
                case Send(target=target, message=message):
                    self.inbox.append((index, target, message))
                    self.sent.append(message)
                case Write() | RecordView():
                    self.pending_writes[index].append(effect)
                case Apply(entry=entry):
                    self.applied[index].append(entry.op)
                case Acknowledge(reply=reply):
                    self.acknowledged.append((index, reply.view, reply.op))
                case Checkpoint(entry=entry, sessions=sessions):
                    state = f"state after op {entry.op}".encode()
                    self.pending_snapshots[index].append(make_snapshot(entry, sessions, state))
                case Install(snapshot=snapshot):
                    self.installed[index].append(snapshot.op)
                    self.pending_snapshots[index].append(snapshot)

    def flush(self, index: int) -> None:
        """Replica `index`'s disk flushes every pending write."""
        writes, self.pending_writes[index] = self.pending_writes[index], []
        for write in writes:
            if isinstance(write, RecordView):
                self.view_records[index] = (write.view, write.log_view)
                continue
            self.disks[index][write.entry.op] = encode_entry(write.entry)
            self.take(index, self.replicas[index].on_durable(write.entry.op, write.entry.checksum))
        snapshots, self.pending_snapshots[index] = self.pending_snapshots[index], []
        for snapshot in snapshots:
            self.take(index, self.replicas[index].on_checkpoint(snapshot))

    def deliver(self, *, only: set[int] | None = None, rounds: int = 50) -> None:
        """Deliver messages (and flush every disk) until none is left; messages to or
        from a replica that is down, or outside `only`, are lost."""
        for _ in range(rounds):
            for index in range(len(self.replicas)):
                if index not in self.down:
                    self.flush(index)
            if not self.inbox:
                return
            inbox, self.inbox = self.inbox, []
            for source, target, message in inbox:
                if {source, target} & self.down:
                    continue
                if only is not None and not {source, target} <= only:
                    continue
                self.take(target, self.replicas[target].on_message(message))

    def restart(self, index: int, incarnation: int, *, disk_lost: bool = False) -> Replica:
        """Replica `index` starts again over its disk (unflushed writes lost), or over
        nothing if its disk was lost."""
        self.pending_writes[index] = []
        if disk_lost:
            self.disks[index] = {}
            self.view_records[index] = None
        replica = Replica.restart(
            self.bounds,
            index,
            self.clocks[index],
            dict(self.disks[index]),
            snapshot=None,
            incarnation=incarnation,
            view_record=self.view_records[index],
        )
        self.replicas[index] = replica
        return replica

    def tick(self, ticks: int, *, only: set[int] | None = None) -> None:
        for _ in range(ticks):
            for index, replica in enumerate(self.replicas):
                if index not in self.down:
                    self.take(index, replica.on_tick())
            self.deliver(only=only)
