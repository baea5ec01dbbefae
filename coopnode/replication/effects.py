"""What a replica asks its host to do, returned by every call into the state machine.

The replica itself touches nothing: it returns these, in the order they must be carried
out, and the host (`host.py`) hands them to the network, the disk, the application and
the clients. A real shard's host and the simulator's are the only two hosts.
"""

from __future__ import annotations

import msgspec

from coopnode.replication.messages import Entry, Message, Reply, Snapshot


class _Effect(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="effect"):
    """What every effect shares."""


class Send(_Effect, frozen=True, tag="send"):
    """Send `message` to replica `target` (best effort: the network may lose it)."""

    target: int
    message: Message


class Write(_Effect, frozen=True, tag="write"):
    """Write `entry` at its op on the disk; the host calls `on_durable` once it is flushed."""

    entry: Entry


class Apply(_Effect, frozen=True, tag="apply"):
    """`entry` is committed: apply it to the application, in op order, once."""

    entry: Entry


class Acknowledge(_Effect, frozen=True, tag="acknowledge"):
    """Tell the client its request is committed (only a primary, only after a quorum)."""

    reply: Reply


class Checkpoint(_Effect, frozen=True, tag="checkpoint"):
    """The application has applied `entry`: take its state as a snapshot (with
    `sessions`), write it, and call `on_checkpoint` with it once it is flushed."""

    entry: Entry
    sessions: list[tuple[int, int, int]]


class Install(_Effect, frozen=True, tag="install"):
    """Replace the application's state with a peer's `snapshot`, write the snapshot, and
    call `on_checkpoint` with it once it is flushed."""

    snapshot: Snapshot


class RecordView(_Effect, frozen=True, tag="record_view"):
    """Write the replica's view and the view its log is from, in order with the
    entries' writes: a log_view reaches the disk only after the log it names. A replica
    started again reads them back, so that if no peer can tell it the current view
    (every replica restarted at once), it can still take part in a view change without
    ever going back to a view it left."""

    view: int
    log_view: int


Effect = Send | Write | Apply | Acknowledge | Checkpoint | Install | RecordView
