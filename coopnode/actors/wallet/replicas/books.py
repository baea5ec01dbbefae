"""The wallet store as the replication protocol's application.

A log entry is one group commit as the primary took it: its payload is the list of the
batch's operations, each encoded alone, and its timestamp is the primary's clock, which
the books apply with, so that every replica sets the same meal-plan day (issue 16 §4)
and writes the same records. The books record the entry's op in the same transaction
(`WalletStore.replica_op`), so that an entry applied before a crash is not applied
again when the log is replayed from the last checkpoint.

The books are not flushed at each entry: the log is (a quorum of logs). They are flushed
before each checkpoint is written, which is what lets the log be cut there. A process
killed loses nothing the kernel holds; a host that loses power may lose the books'
last pages, and its replica is then rebuilt from a peer's copy (`install`).
"""

from __future__ import annotations

import msgspec

from coopnode.actors.wallet.chain import SealRecord
from coopnode.actors.wallet.messages import ClosingReply, ShardClosing
from coopnode.actors.wallet.store import WalletStore
from coopnode.domain.errors import InvariantViolation
from coopnode.domain.messages import Operation, Result
from coopnode.replication.messages import Entry


class OpsPayload(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="ops"):
    """A group commit: the batches' operations, each as the front encoded it."""

    ops: list[msgspec.Raw]


class ClosingPayload(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="closing"):
    """A closed day (締め) as the primary read it: every replica keeps the same, once."""

    closing: ShardClosing


class SealPayload(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="seal"):
    """A day's seal of the journal as the primary signed it: every replica keeps the
    same record, once (its chain is the same, so the seal checks on each)."""

    seal: SealRecord


Payload = OpsPayload | ClosingPayload | SealPayload
_payload_encoder = msgspec.msgpack.Encoder()
_payload_decoder: msgspec.msgpack.Decoder[Payload] = msgspec.msgpack.Decoder(Payload)
_operation_decoder: msgspec.msgpack.Decoder[Operation] = msgspec.msgpack.Decoder(Operation)
_closing_encoder = msgspec.msgpack.Encoder()
_closing_decoder = msgspec.msgpack.Decoder(ShardClosing)
_seal_decoder = msgspec.msgpack.Decoder(SealRecord)


class BooksAt(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A checkpoint's state: the books stand in the replica's own files, flushed at
    least as far as `op`; a peer that needs them copies the files (`install`)."""

    shard: int
    replica: int
    op: int


def encode_payload(payload: Payload) -> bytes:
    """A log entry's payload."""
    return _payload_encoder.encode(payload)


def decode_payload(payload: bytes) -> Payload:
    """A committed entry's payload: it was encoded by the primary, so one that does not
    decode here is a broken invariant, not an operation's fault."""
    try:
        return _payload_decoder.decode(payload)
    except msgspec.DecodeError as error:
        raise InvariantViolation(f"a committed log entry does not decode: {error}") from None


def decode_operations(payload: OpsPayload) -> list[Operation]:
    try:
        return [_operation_decoder.decode(raw) for raw in payload.ops]
    except msgspec.DecodeError as error:
        raise InvariantViolation(f"a committed operation does not decode: {error}") from None


class ReplicaBooks:
    """Applies committed entries to the wallet store, once each, in op order."""

    def __init__(self, store: WalletStore, shard: int, replica: int) -> None:
        self.store = store
        self._shard = shard
        self._replica = replica
        # Results of the entries a caller waits for (by request key), taken once: a group
        # commit's results, or a closing's reply.
        self._wanted: set[int] = set()
        self._results: dict[int, list[Result] | ClosingReply | SealRecord] = {}
        # While a peer's copy of the books is being installed, committed entries wait.
        self.held: list[Entry] | None = None

    def want(self, request_key: int) -> None:
        self._wanted.add(request_key)

    def take(self, request_key: int) -> list[Result] | ClosingReply | SealRecord | None:
        self._wanted.discard(request_key)
        return self._results.pop(request_key, None)

    def apply(self, entry: Entry) -> None:
        if self.held is not None:
            self.held.append(entry)
            return
        if entry.op <= self.store.replica_op:
            return  # In the books already: applied before a restart, or in a peer's copy.
        results: list[Result] | ClosingReply | SealRecord
        match decode_payload(entry.payload):
            case OpsPayload() as ops:
                operations = decode_operations(ops)
                results = self.store.apply_batch(
                    operations, now_ms=entry.timestamp_ms, replica_op=entry.op
                )
            case ClosingPayload(closing=closing):
                results = self._keep_closing(closing, entry.op)
            case SealPayload(seal=seal):
                results = self._keep_seal(seal, entry.op)
        if entry.request_key in self._wanted:
            self._results[entry.request_key] = results

    def _keep_closing(self, closing: ShardClosing, op: int) -> ClosingReply:
        """Keep a day's closing unless one is kept already (then that one stands)."""
        found = self.store.keep_once(
            self.store.closings_db,
            closing.sums.day.encode(),
            _closing_encoder.encode(closing),
            replica_op=op,
        )
        if found is None:
            return ClosingReply(closing=closing, created=True)
        return ClosingReply(closing=_closing_decoder.decode(found), created=False)

    def _keep_seal(self, seal: SealRecord, op: int) -> SealRecord:
        """Keep a day's seal unless one is kept already (then that one stands)."""
        found = self.store.keep_once(
            self.store.seals_db, seal.day.encode(), _closing_encoder.encode(seal), replica_op=op
        )
        return seal if found is None else _seal_decoder.decode(found)

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode(BooksAt(self._shard, self._replica, self.store.replica_op))

    def restore(self, state: bytes) -> None:
        raise InvariantViolation("a replica's books are installed by copy, not from bytes")

    def release_held(self) -> None:
        """The installed copy is in place: apply what waited, skipping what it holds."""
        held, self.held = self.held or [], None
        for entry in held:
            self.apply(entry)
