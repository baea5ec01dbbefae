"""The log's entries and the messages replicas and clients exchange, as tagged structs.

An `Entry` is one operation as the primary decided it: the client's opaque payload, the
client and idempotency key it came with, the primary's clock reading (so that every
replica applies the same time: the meal-plan day is the primary's, issue 16 §4), its op
number and view, and two checksums: its own, over every other field, and its parent's,
which chains each entry to the one before it. A replica checks an entry's checksum when
it reads it from its disk; one that fails is a hole, repaired from a peer.
"""

from __future__ import annotations

import hashlib

import msgspec

# BLAKE2b cut to 16 bytes, as TigerBeetle keeps a 128-bit checksum: far beyond what a
# flipped sector or a torn write can collide with by chance.
CHECKSUM_BYTES = 16
# The parent checksum of the first entry: there is no op 0.
ROOT_CHECKSUM = bytes(CHECKSUM_BYTES)


class Entry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One operation in the log; `checksum` covers every other field."""

    op: int
    view: int
    client_id: int
    request_key: int
    timestamp_ms: int
    payload: bytes
    parent: bytes
    checksum: bytes


def entry_checksum(
    op: int,
    view: int,
    client_id: int,
    request_key: int,
    timestamp_ms: int,
    payload: bytes,
    parent: bytes,
) -> bytes:
    """The checksum an entry with these fields must carry."""
    fields = (op, view, client_id, request_key, timestamp_ms, payload, parent)
    return hashlib.blake2b(msgspec.msgpack.encode(fields), digest_size=CHECKSUM_BYTES).digest()


def make_entry(
    *,
    op: int,
    view: int,
    client_id: int,
    request_key: int,
    timestamp_ms: int,
    payload: bytes,
    parent: bytes,
) -> Entry:
    """An entry with its checksum computed."""
    checksum = entry_checksum(op, view, client_id, request_key, timestamp_ms, payload, parent)
    return Entry(op, view, client_id, request_key, timestamp_ms, payload, parent, checksum)


def entry_is_intact(entry: Entry) -> bool:
    """Whether the entry's checksum matches its fields (checked on every read from disk)."""
    expected = entry_checksum(
        entry.op,
        entry.view,
        entry.client_id,
        entry.request_key,
        entry.timestamp_ms,
        entry.payload,
        entry.parent,
    )
    return expected == entry.checksum


_entry_encoder = msgspec.msgpack.Encoder()
_entry_decoder = msgspec.msgpack.Decoder(Entry)


def encode_entry(entry: Entry) -> bytes:
    """The bytes a disk keeps for an entry."""
    return _entry_encoder.encode(entry)


def decode_entry(data: bytes) -> Entry | None:
    """The entry these bytes hold, or None when they do not decode or fail the checksum."""
    try:
        entry = _entry_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):
        # A flipped bit can break a field name's UTF-8, which msgspec reports as such.
        return None
    return entry if entry_is_intact(entry) else None


class Snapshot(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The application's state after `entry` (a checkpoint), with the client sessions
    (client id, its latest request key, that request's op) that keep requests behind the
    checkpoint from being prepared twice; `checksum` covers every other field."""

    entry: Entry
    sessions: list[tuple[int, int, int]]
    state: bytes
    checksum: bytes

    @property
    def op(self) -> int:
        """The last op the state holds."""
        return self.entry.op


def _snapshot_checksum(entry: Entry, sessions: list[tuple[int, int, int]], state: bytes) -> bytes:
    fields = (entry.checksum, sessions, state)
    return hashlib.blake2b(msgspec.msgpack.encode(fields), digest_size=CHECKSUM_BYTES).digest()


def make_snapshot(entry: Entry, sessions: list[tuple[int, int, int]], state: bytes) -> Snapshot:
    """A snapshot with its checksum computed."""
    return Snapshot(entry, sessions, state, _snapshot_checksum(entry, sessions, state))


_snapshot_encoder = msgspec.msgpack.Encoder()
_snapshot_decoder = msgspec.msgpack.Decoder(Snapshot)


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """The bytes a disk keeps for a snapshot."""
    return _snapshot_encoder.encode(snapshot)


def decode_snapshot(data: bytes) -> Snapshot | None:
    """The snapshot these bytes hold, or None when they do not decode or fail a checksum."""
    try:
        snapshot = _snapshot_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    return snapshot if snapshot_is_intact(snapshot) else None


def snapshot_is_intact(snapshot: Snapshot) -> bool:
    """Whether the snapshot's checksum, and its entry's, match their fields."""
    expected = _snapshot_checksum(snapshot.entry, snapshot.sessions, snapshot.state)
    return entry_is_intact(snapshot.entry) and expected == snapshot.checksum


class _Message(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind"):
    """What every message shares: frozen, strict, tagged by its kind."""


class Request(_Message, frozen=True, tag="request"):
    """A client's operation: the same `request_key` sent again is the same operation."""

    client_id: int
    request_key: int
    payload: bytes


class Reply(_Message, frozen=True, tag="reply"):
    """The primary's word that a request is committed by a quorum, at `op` in `view`."""

    view: int
    replica: int
    client_id: int
    request_key: int
    op: int


class Prepare(_Message, frozen=True, tag="prepare"):
    """The primary asks backups to make `entry` durable; `commit` travels with it."""

    view: int
    commit: int
    entry: Entry


class PrepareOk(_Message, frozen=True, tag="prepare_ok"):
    """A backup holds every op up to `op` of `view`'s log on its disk."""

    view: int
    replica: int
    op: int


class Commit(_Message, frozen=True, tag="commit"):
    """The primary's heartbeat: it is alive in `view` and has committed up to `commit`."""

    view: int
    replica: int
    commit: int


class StartViewChange(_Message, frozen=True, tag="start_view_change"):
    """`replica` has given up on the primary of the view before `view`."""

    view: int
    replica: int


class DoViewChange(_Message, frozen=True, tag="do_view_change"):
    """To the new primary: `replica`'s log, as of the last view it was normal in."""

    view: int
    replica: int
    log_view: int
    commit: int
    log: list[Entry]


class StartView(_Message, frozen=True, tag="start_view"):
    """The new primary's log for `view`: every replica takes it as its own."""

    view: int
    replica: int
    commit: int
    log: list[Entry]


class RequestStartView(_Message, frozen=True, tag="request_start_view"):
    """A replica that heard of `view` late asks its primary for the view's log."""

    view: int
    replica: int


class RequestPrepares(_Message, frozen=True, tag="request_prepares"):
    """A backup missing ops `op_first`..`op_last` of `view` asks the primary for them."""

    view: int
    replica: int
    op_first: int
    op_last: int


class Prepares(_Message, frozen=True, tag="prepares"):
    """The primary's answer to a repair request: consecutive entries of its log (from
    its checkpoint on, when the backup asked for ops the primary's log no longer holds)."""

    view: int
    replica: int
    commit: int
    entries: list[Entry]


class Recovery(_Message, frozen=True, tag="recovery"):
    """A restarted replica, which may have lost writes and forgotten its view, asks for
    the current view; `nonce` tells its answers from older ones."""

    replica: int
    nonce: int


class RecoveryResponse(_Message, frozen=True, tag="recovery_response"):
    """A normal replica's answer to `Recovery`; only the primary's carries its log."""

    view: int
    replica: int
    nonce: int
    commit: int
    log: list[Entry] | None


class RequestSnapshot(_Message, frozen=True, tag="request_snapshot"):
    """A replica whose log starts past what it has applied (the peers cut their logs at a
    checkpoint) asks for a snapshot of at least `op_min`."""

    replica: int
    op_min: int


class SnapshotReply(_Message, frozen=True, tag="snapshot_reply"):
    """A replica's latest durable checkpoint."""

    replica: int
    snapshot: Snapshot


Message = (
    Request
    | Reply
    | Prepare
    | PrepareOk
    | Commit
    | StartViewChange
    | DoViewChange
    | StartView
    | RequestStartView
    | RequestPrepares
    | Prepares
    | Recovery
    | RecoveryResponse
    | RequestSnapshot
    | SnapshotReply
)

_message_encoder = msgspec.msgpack.Encoder()
_message_decoder: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(Message)


def encode_message(message: Message) -> bytes:
    """The bytes of a message on the wire."""
    return _message_encoder.encode(message)


def decode_message(data: bytes) -> Message:
    """The message these bytes hold (raises `msgspec.DecodeError` if they hold none)."""
    return _message_decoder.decode(data)
