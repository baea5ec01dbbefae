"""The replica's host: the interfaces to the world, and the loop that carries effects out.

A replica returns effects; its host hands each to the one interface that can carry it
out. A real shard will give these interfaces a Ray-backed network, an LMDB log and the
wallet store; the simulator (`simulator.py`) gives them a seeded network, a disk that
stalls, loses unflushed writes and corrupts entries, and a stand-in application. Both
drive the very same `Replica`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from coopnode.replication.effects import (
    Acknowledge,
    Apply,
    Checkpoint,
    Effect,
    Install,
    RecordView,
    Send,
    Write,
)
from coopnode.replication.messages import (
    Entry,
    Message,
    Reply,
    Request,
    Snapshot,
    encode_entry,
    make_snapshot,
)
from coopnode.replication.replica import Replica


class Network(Protocol):
    """Carries messages between replicas, best effort: it may lose, delay, reorder or
    double them, and the protocol copes."""

    def send(self, source: int, target: int, message: Message) -> None:
        """Send `message` from replica `source` to replica `target`."""
        ...


class Storage(Protocol):
    """A replica's log on its disk. A write is not durable when `write` returns: the
    host's `durable` is called once it is flushed, writes in the order they were made."""

    def write(self, op: int, checksum: bytes, data: bytes) -> None:
        """Write the encoded entry `data` (with `checksum`) at `op`."""
        ...

    def write_snapshot(self, snapshot: Snapshot) -> None:
        """Write `snapshot` in place of the last one; the host's `snapshot_durable` is
        called once it is flushed, in order with the entries' writes."""
        ...

    def write_view(self, view: int, log_view: int) -> None:
        """Write the view record in place of the last one, in order with the entries'
        writes (nothing is called back: the replica reads it only when restarted)."""
        ...


class Application(Protocol):
    """What the log's committed operations are applied to (a wallet store, in a shard)."""

    def apply(self, entry: Entry) -> None:
        """Apply one committed entry; entries come once each, in op order."""
        ...

    def snapshot(self) -> bytes:
        """The state after the last entry applied, as bytes another replica can restore."""
        ...

    def restore(self, state: bytes) -> None:
        """Replace the whole state with one a peer's `snapshot` returned."""
        ...


class Clients(Protocol):
    """Where a primary's acknowledgements go."""

    def acknowledge(self, reply: Reply) -> None:
        """Tell the client named in `reply` its request is committed."""
        ...


class ReplicaHost:
    """Feeds one replica its calls and carries out the effects it returns."""

    def __init__(
        self,
        replica: Replica,
        network: Network,
        storage: Storage,
        application: Application,
        clients: Clients,
    ) -> None:
        self.replica = replica
        self.network = network
        self.storage = storage
        self.application = application
        self.clients = clients

    def deliver(self, message: Message) -> None:
        """A message arrived for this replica."""
        if isinstance(message, Request):
            self._carry_out(self.replica.on_request(message))
        else:
            self._carry_out(self.replica.on_message(message))

    def tick(self) -> None:
        """One tick of the replica's clock passed."""
        self._carry_out(self.replica.on_tick())

    def durable(self, op: int, checksum: bytes) -> None:
        """The disk flushed the write at `op` of the entry with `checksum`."""
        self._carry_out(self.replica.on_durable(op, checksum))

    def snapshot_durable(self, snapshot: Snapshot) -> None:
        """The disk flushed `snapshot`."""
        self._carry_out(self.replica.on_checkpoint(snapshot))

    def _carry_out(self, effects: Sequence[Effect]) -> None:
        for effect in effects:
            match effect:
                case Send(target=target, message=message):
                    self.network.send(self.replica.index, target, message)
                case Write(entry=entry):
                    self.storage.write(entry.op, entry.checksum, encode_entry(entry))
                case Apply(entry=entry):
                    self.application.apply(entry)
                case Acknowledge(reply=reply):
                    self.clients.acknowledge(reply)
                case Checkpoint(entry=entry, sessions=sessions):
                    state = self.application.snapshot()
                    self.storage.write_snapshot(make_snapshot(entry, sessions, state))
                case Install(snapshot=snapshot):
                    self.application.restore(snapshot.state)
                    self.storage.write_snapshot(snapshot)
                case RecordView(view=view, log_view=log_view):
                    self.storage.write_view(view, log_view)
