"""A replica's log on its disk: the entries by op and the last checkpoint, in LMDB.

    writes (event loop)             writer thread                       event loop
    write(op, checksum, data) ──▶   queue ──▶ one write transaction ──▶ flushed(writes)
    write_snapshot(snapshot)  ──▶             for all that queued,        in the order
                                              one fsync                   they were made

The replica's event loop never waits for the disk: it queues a write and goes on (a
primary sends its prepares to the backups before its own flush has begun), and the
writer thread makes everything queued durable in one transaction, then hands the list
back to the loop, which tells the protocol (`on_durable`, `on_checkpoint`). A stalled
disk thus stalls only this replica's votes; the quorum goes on without them.

A snapshot is written once the books it names are themselves flushed (the replica does
that first, on a thread of its own), and the entries before it are deleted in the same
transaction: the log stays bounded.

Databases: `entries`: op (8 bytes, big-endian) → the encoded entry; `meta`: b"snapshot"
→ the last checkpoint (`replication.messages.Snapshot`), and b"formatted" once the
replica is part of its shard.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from coopnode.actors.kernel.files import Layout, LmdbFiles, open_lmdb
from coopnode.actors.wallet.replicas.faults import FlushStalls
from coopnode.logs import get_logger
from coopnode.replication.messages import Snapshot, decode_snapshot, encode_snapshot

log = get_logger(__name__)

LOG_LAYOUT = Layout(store="replica-log", version=1)
_OP_BYTES = 8
_SNAPSHOT_KEY = b"snapshot"
# Written once, when the replica's shard is formatted or the replica joins it: a replica
# without it holds nothing it may vote with.
_FORMATTED_KEY = b"formatted"
# The replica's view and the view its log is from (`replication.effects.RecordView`).
_VIEW_KEY = b"view"
_view_encoder = msgspec.msgpack.Encoder()
_view_decoder = msgspec.msgpack.Decoder(tuple[int, int])


class EntryWrite(msgspec.Struct, frozen=True):
    op: int
    checksum: bytes
    data: bytes


class SnapshotWrite(msgspec.Struct, frozen=True):
    snapshot: Snapshot


class ViewWrite(msgspec.Struct, frozen=True):
    view: int
    log_view: int


Write = EntryWrite | SnapshotWrite | ViewWrite
Flushed = Callable[[list[Write]], None]


def _op_key(op: int) -> bytes:
    return op.to_bytes(_OP_BYTES, "big")


class ReplicaLog:
    """The log's files and its writer thread. `write*` are called on the event loop;
    `flushed` is called there, with each group of writes once it is durable."""

    def __init__(
        self,
        path: Path,
        *,
        map_size_bytes: int,
        fsync: bool,
        lock_wait_s: float,
        stalls: FlushStalls,
    ) -> None:
        self._files: LmdbFiles = open_lmdb(
            path,
            layout=LOG_LAYOUT,
            databases=("entries", "meta"),
            map_size_bytes=map_size_bytes,
            fsync=fsync,
            lock_wait_s=lock_wait_s,
        )
        self._entries = self._files.dbs["entries"]
        self._meta = self._files.dbs["meta"]
        self._stalls = stalls
        self._queue: queue.SimpleQueue[Write | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        # Writes queued and not yet reported flushed, and since when the oldest waits
        # (both kept on the event loop's thread).
        self._unflushed = 0
        self._waiting_since: float | None = None
        with self._files.env.begin() as txn:
            self.formatted = txn.get(_FORMATTED_KEY, db=self._meta) is not None

    def mark_formatted(self, *, new_shard: bool) -> None:
        """Record, durably, that this replica belongs to its shard's history now. A new
        shard's replica also records view 0; one that joins an existing shard with
        nothing (a lost disk) records no view until it has recovered from its peers, so
        that it never takes part in a view change on an empty log it did not earn."""
        with self._files.env.begin(write=True) as txn:
            txn.put(_FORMATTED_KEY, b"1", db=self._meta)
            if new_shard:
                txn.put(_VIEW_KEY, _view_encoder.encode((0, 0)), db=self._meta)
        self._files.env.sync(True)
        self.formatted = True

    @property
    def stalls(self) -> int:
        """How many flushes the storage fault stalled (tests and benchmarks)."""
        return self._stalls.stalls

    def read(self) -> tuple[dict[int, bytes], Snapshot | None, tuple[int, int] | None]:
        """What the disk holds: every entry's bytes by op (unchecked: the protocol
        checks each), the last checkpoint if it is intact, and the view record."""
        stored: dict[int, bytes] = {}
        with self._files.env.begin() as txn:
            for key, value in txn.cursor(db=self._entries):
                stored[int.from_bytes(key, "big")] = bytes(value)
            raw = txn.get(_SNAPSHOT_KEY, db=self._meta)
            raw_view = txn.get(_VIEW_KEY, db=self._meta)
        snapshot = decode_snapshot(bytes(raw)) if raw is not None else None
        if raw is not None and snapshot is None:
            log.error("replica log: the checkpoint record fails its checksum; ignored")
        view_record = None
        if raw_view is not None:
            try:
                view_record = _view_decoder.decode(bytes(raw_view))
            except msgspec.DecodeError:
                log.error("replica log: the view record does not decode; ignored")
        return stored, snapshot, view_record

    def start(self, loop: asyncio.AbstractEventLoop, flushed: Flushed) -> None:
        """Start the writer thread, which reports each flushed group on `loop`."""
        self._thread = threading.Thread(
            target=self._run, args=(loop, flushed), name="replica-log", daemon=True
        )
        self._thread.start()

    def write(self, op: int, checksum: bytes, data: bytes) -> None:
        self._put(EntryWrite(op, checksum, data))

    def write_snapshot(self, snapshot: Snapshot) -> None:
        self._put(SnapshotWrite(snapshot))

    def write_view(self, view: int, log_view: int) -> None:
        self._put(ViewWrite(view, log_view))

    def _put(self, write: Write) -> None:
        if self._failure is not None:
            raise RuntimeError("the replica log's writer failed") from self._failure
        if self._unflushed == 0:
            self._waiting_since = time.monotonic()
        self._unflushed += 1
        self._queue.put(write)

    def note_flushed(self, count: int) -> None:
        """On the event loop: `count` writes reached the disk (see `stuck_s`)."""
        self._unflushed -= count
        self._waiting_since = time.monotonic() if self._unflushed else None

    def stuck_s(self) -> float:
        """How long the disk has had writes and flushed none of them (0: none waiting)."""
        if self._waiting_since is None:
            return 0.0
        return time.monotonic() - self._waiting_since

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        self._files.close()

    # The writer thread.

    def _run(self, loop: asyncio.AbstractEventLoop, flushed: Flushed) -> None:
        try:
            while (group := self._take()) is not None:
                self._flush(group)
                loop.call_soon_threadsafe(flushed, group)
        except BaseException as error:  # The replica cannot vote without its disk.
            self._failure = error
            log.critical("replica log writer failed", error=repr(error))
            loop.call_soon_threadsafe(_stop_process, error)

    def _take(self) -> list[Write] | None:
        """Everything queued, waiting for the first write; None once closed."""
        first = self._queue.get()
        if first is None:
            return None
        group = [first]
        while True:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                return group
            if more is None:
                self._queue.put(None)  # Flush what was taken, then stop.
                return group
            group.append(more)

    def _flush(self, group: list[Write]) -> None:
        self._stalls.before_flush()
        env = self._files.env
        with env.begin(write=True) as txn:
            for write in group:
                match write:
                    case EntryWrite(op=op, data=data):
                        txn.put(_op_key(op), data, db=self._entries)
                    case SnapshotWrite(snapshot=snapshot):
                        txn.put(_SNAPSHOT_KEY, encode_snapshot(snapshot), db=self._meta)
                        self._cut_before(txn, snapshot.op)
                    case ViewWrite(view=view, log_view=log_view):
                        txn.put(_VIEW_KEY, _view_encoder.encode((view, log_view)), db=self._meta)

    def _cut_before(self, txn: object, op: int) -> None:
        """Delete the entries the checkpoint holds (its own entry stays: the log's
        first entry chains on from it)."""
        cursor = txn.cursor(db=self._entries)  # type: ignore[attr-defined]
        if not cursor.first():
            return
        while cursor.key() and int.from_bytes(cursor.key(), "big") < op:
            if not cursor.delete():
                break


def _stop_process(error: BaseException) -> None:
    """A replica whose log cannot be written stops; Ray starts it again, and it recovers."""
    import os

    log.critical("replica stopping: its log cannot be written", error=repr(error))
    os._exit(71)
