"""The card and till registry in one LMDB environment.

Cards: a FeliCa card's IDm is bound to one member; a member has at most one active card.
A card reported lost is blocked at once; a reissue binds a new card to the same member
(so it reaches the same purses, which belong to the member, not the card) and leaves the
old one blocked as "replaced". Tills: an id, a store, a kind and an Ed25519 public key;
a retired till can no longer connect.

The registry also knows which members are suspended, because the deny list the node
pushes to every till holds the cards of suspended accounts as well as blocked cards.
Every change raises the registry's version by one; fronts compare versions to know that
their in-memory copy is current.

Each change is one write transaction with fsync: staff make a few changes a minute, so
there is nothing to batch. Records are checked before they are written and when the
registry opens.

Beside the versioned registry, what the node keeps of each till's offline sales: the
offline limits it sent the till (`LimitsSent`, the history a forwarded tap's stated limits
are checked against), and the offline taps it refused, for staff (`RefusedOfflineTap`).

Databases in the environment:
    cards      IDm (16 hex) → CardRecord
    members    member number → IDm of the member's active card
    tills      till id → TillRecord
    suspended  member number → (empty)
    meta       b"registry" → RegistryMeta
    till_seqs  till id → the highest sequence number seen (8 bytes, big-endian)
    till_limits  till id → list[LimitsSent], oldest first
    offline_refused  till id + 0x00 + sequence (8 bytes) + frame digest → RefusedOfflineTap
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from coopnode.actors.kernel.clock import ClockMs, system_ms
from coopnode.actors.kernel.copies import StoreCopy, copy_store
from coopnode.actors.kernel.files import Layout, open_lmdb
from coopnode.actors.registry.messages import (
    AddTill,
    BindCard,
    CardRecord,
    CardStatus,
    Record,
    RefusedOfflineTap,
    RegistryChange,
    RegistryOp,
    RegistrySnapshot,
    Reissue,
    ReportLost,
    RetireTill,
    SetSuspended,
    TillRecord,
)
from coopnode.domain.errors import InvariantViolation
from coopnode.domain.money import Reason
from coopnode.domain.offline import LimitsSent, noted


class RegistryMeta(Record, frozen=True):
    version: int
    next_till_number: int


_META_KEY = b"registry"
# The layout of the registry's records; a change that old files cannot be read in raises it.
LAYOUT_VERSION = 1
_DATABASES = (
    "cards",
    "members",
    "tills",
    "suspended",
    "meta",
    "till_seqs",
    "till_limits",
    "offline_refused",
)
_encoder = msgspec.msgpack.Encoder()
_card_decoder = msgspec.msgpack.Decoder(CardRecord)
_till_decoder = msgspec.msgpack.Decoder(TillRecord)
_meta_decoder = msgspec.msgpack.Decoder(RegistryMeta)
_history_decoder = msgspec.msgpack.Decoder(list[LimitsSent])
_refused_decoder = msgspec.msgpack.Decoder(RefusedOfflineTap)


def _refused(version: int, reason: Reason, message: str) -> RegistryChange:
    return RegistryChange(ok=False, version=version, reason=reason, message=message)


class _Txn:
    """One write transaction of the registry and the records it changed."""

    def __init__(self, txn: Any, meta: RegistryMeta, now_ms: int) -> None:
        self.txn = txn
        self.meta = meta
        self.now_ms = now_ms
        self.cards: list[CardRecord] = []
        self.tills: list[TillRecord] = []
        self.suspended: list[str] = []
        self.resumed: list[str] = []


class RegistryStore:
    """The registry's files. Not thread-safe: one thread applies operations."""

    def __init__(
        self,
        path: Path,
        *,
        map_size_bytes: int,
        fsync: bool = True,
        lock_wait_s: float = 30.0,
        clock_ms: ClockMs | None = None,
    ) -> None:
        self._clock_ms = clock_ms or system_ms
        self._files = open_lmdb(
            path,
            layout=Layout(store="registry", version=LAYOUT_VERSION),
            databases=_DATABASES,
            map_size_bytes=map_size_bytes,
            fsync=fsync,
            lock_wait_s=lock_wait_s,
        )
        self.env = self._files.env
        dbs = self._files.dbs
        self._cards = dbs["cards"]
        self._members = dbs["members"]
        self._tills = dbs["tills"]
        self._suspended = dbs["suspended"]
        self._meta = dbs["meta"]
        # Till id → the highest sequence number the node has seen from it (see
        # `note_sequences`); not part of the versioned registry that tills are sent.
        self._till_seqs = dbs["till_seqs"]
        self._till_limits = dbs["till_limits"]
        self._offline_refused = dbs["offline_refused"]
        self._check_on_open()

    def close(self) -> None:
        self._files.close()

    def backup_to(self, backup_dir: Path, data_dir: Path) -> StoreCopy:
        """Copy the registry store into its directory under `backup_dir` (as under the live
        `data_dir`) from one read transaction, while it serves; runs on any thread."""
        layout = Layout(store="registry", version=LAYOUT_VERSION)
        return copy_store(self._files, layout, backup_dir, data_dir)

    # Reading ---------------------------------------------------------------------------

    def _get_meta(self, txn: Any) -> RegistryMeta:
        raw = txn.get(_META_KEY, db=self._meta)
        if raw is None:
            return RegistryMeta(version=0, next_till_number=1)
        return _meta_decoder.decode(raw)

    def snapshot(self) -> RegistrySnapshot:
        with self.env.begin() as txn:
            return RegistrySnapshot(
                version=self._get_meta(txn).version,
                cards=[_card_decoder.decode(raw) for _, raw in txn.cursor(db=self._cards)],
                tills=[_till_decoder.decode(raw) for _, raw in txn.cursor(db=self._tills)],
                suspended=[key.decode() for key, _ in txn.cursor(db=self._suspended)],
            )

    def version(self) -> int:
        with self.env.begin() as txn:
            return self._get_meta(txn).version

    def _check_on_open(self) -> None:
        """Every active card is its member's one active card, and the other way round."""
        with self.env.begin() as txn:
            active: dict[str, str] = {}
            for key, raw in txn.cursor(db=self._cards):
                card = _card_decoder.decode(raw)
                _check_card(key, card)
                if card.status is CardStatus.ACTIVE:
                    if card.member_no in active:
                        raise InvariantViolation(f"member {card.member_no} has two active cards")
                    active[card.member_no] = card.idm
            indexed = {key.decode(): raw.decode() for key, raw in txn.cursor(db=self._members)}
            if indexed != active:
                raise InvariantViolation("the members index does not match the active cards")
            for key, raw in txn.cursor(db=self._tills):
                till = _till_decoder.decode(raw)
                if till.till_id.encode() != key or len(till.public_key) != 32:
                    raise InvariantViolation(f"till record {key!r} is inconsistent")

    def sequences(self) -> dict[str, int]:
        """The highest sequence number the node has seen from each till."""
        with self.env.begin() as txn:
            return {
                key.decode(): int.from_bytes(raw, "big")
                for key, raw in txn.cursor(db=self._till_seqs)
            }

    def sequence_of(self, till_id: str) -> int:
        """The highest sequence number saved for one till (0: none)."""
        with self.env.begin() as txn:
            raw = txn.get(till_id.encode(), db=self._till_seqs)
            return 0 if raw is None else int.from_bytes(raw, "big")

    def note_sequences(self, seen: dict[str, int]) -> None:
        """Raise each till's highest seen sequence number to at least `seen`'s.

        The node tells a till this number when it connects, and a till whose own counter
        is behind it (its files restored from a backup) moves its counter past it, so
        that it never numbers a new sale with a number it used before: the node would
        answer that with the old sale's decision.
        """
        with self.env.begin(write=True) as txn:
            for till_id, seq in seen.items():
                key = till_id.encode()
                raw = txn.get(key, db=self._till_seqs)
                if raw is None or int.from_bytes(raw, "big") < seq:
                    txn.put(key, seq.to_bytes(8, "big"), db=self._till_seqs)

    # Offline sales -----------------------------------------------------------------------

    def limits_history(self) -> dict[str, list[LimitsSent]]:
        """Every till's history of the offline limits the node sent it, oldest first."""
        with self.env.begin() as txn:
            return {
                key.decode(): _history_decoder.decode(raw)
                for key, raw in txn.cursor(db=self._till_limits)
            }

    def limits_of(self, till_id: str) -> list[LimitsSent]:
        raw = self._read_limits(till_id)
        return [] if raw is None else _history_decoder.decode(raw)

    def _read_limits(self, till_id: str) -> bytes | None:
        with self.env.begin() as txn:
            raw: bytes | None = txn.get(till_id.encode(), db=self._till_limits)
            return raw

    def note_limits(self, till_id: str, sent: LimitsSent, skew_ms: int) -> list[LimitsSent]:
        """Record that `sent` went to the till (a new entry only when the limits changed);
        return the till's history. Durable before the `Welcome` that carries them leaves."""
        key = till_id.encode()
        with self.env.begin(write=True) as txn:
            raw = txn.get(key, db=self._till_limits)
            before = [] if raw is None else _history_decoder.decode(raw)
            history = noted(before, sent, self._clock_ms(), skew_ms)
            if history != before:
                txn.put(key, _encoder.encode(history), db=self._till_limits)
        return history

    def note_refused(self, refused: RefusedOfflineTap, per_till_max: int) -> str:
        """Keep a refused offline tap for staff: "new", "seen" (the same frame was refused
        before), or "full" (the till has `per_till_max` of them already; nothing kept)."""
        if refused.amount_yen <= 0 or refused.seq <= 0:
            raise InvariantViolation(f"refused tap {refused.till_id}:{refused.seq} is empty")
        prefix = refused.till_id.encode() + b"\x00"
        key = prefix + refused.seq.to_bytes(8, "big") + bytes.fromhex(refused.frame_digest_hex)
        with self.env.begin(write=True) as txn:
            if txn.get(key, db=self._offline_refused) is not None:
                return "seen"
            if self._count_prefix(txn, prefix, per_till_max) >= per_till_max:
                return "full"
            txn.put(key, _encoder.encode(refused), db=self._offline_refused)
        return "new"

    def _count_prefix(self, txn: Any, prefix: bytes, stop_at: int) -> int:
        cursor = txn.cursor(db=self._offline_refused)
        count = 0
        if cursor.set_range(prefix):
            for key in cursor.iternext(values=False):
                if not key.startswith(prefix) or count >= stop_at:
                    break
                count += 1
        return count

    def refused_taps(self, till_id: str, limit: int) -> list[RefusedOfflineTap]:
        """Refused offline taps by till and number, of one till ("" for every till); at
        most `limit` of them."""
        prefix = till_id.encode() + b"\x00" if till_id else b""
        found: list[RefusedOfflineTap] = []
        with self.env.begin() as txn:
            cursor = txn.cursor(db=self._offline_refused)
            if cursor.set_range(prefix):
                for key, raw in cursor.iternext():
                    if not key.startswith(prefix) or len(found) >= limit:
                        break
                    refused = _refused_decoder.decode(raw)
                    if not key.startswith(refused.till_id.encode() + b"\x00"):
                        raise InvariantViolation(f"refused tap record {key!r} is misfiled")
                    found.append(refused)
        return found

    # Writing ---------------------------------------------------------------------------

    def apply(self, op: RegistryOp) -> RegistryChange:
        """Apply one operation in one durable transaction; a refusal changes nothing."""
        txn = self.env.begin(write=True)
        try:
            change = _Txn(txn, self._get_meta(txn), self._clock_ms())
            refused = self._apply(change, op)
            if refused is not None:
                txn.abort()
                return refused
            meta = msgspec.structs.replace(change.meta, version=change.meta.version + 1)
            txn.put(_META_KEY, _encoder.encode(meta), db=self._meta)
            txn.commit()
        except BaseException:
            txn.abort()
            raise
        return RegistryChange(
            ok=True,
            version=meta.version,
            cards=change.cards,
            tills=change.tills,
            suspended=change.suspended,
            resumed=change.resumed,
        )

    def _apply(self, change: _Txn, op: RegistryOp) -> RegistryChange | None:
        match op:
            case BindCard():
                return self._bind(change, op.idm, op.member_no, replace=False)
            case Reissue():
                return self._bind(change, op.new_idm, op.member_no, replace=True)
            case ReportLost():
                return self._report_lost(change, op)
            case SetSuspended():
                return self._set_suspended(change, op)
            case AddTill():
                return self._add_till(change, op)
            case RetireTill():
                return self._retire_till(change, op)
        raise AssertionError(f"unhandled registry operation {op!r}")  # pragma: no cover

    def _card(self, txn: Any, idm: str) -> CardRecord | None:
        raw = txn.get(idm.encode(), db=self._cards)
        if raw is None:
            return None
        card = _card_decoder.decode(raw)
        _check_card(idm.encode(), card)
        return card

    def _put_card(self, change: _Txn, card: CardRecord) -> None:
        _check_card(card.idm.encode(), card)
        change.txn.put(card.idm.encode(), _encoder.encode(card), db=self._cards)
        change.cards.append(card)

    def _bind(
        self, change: _Txn, idm: str, member_no: str, *, replace: bool
    ) -> RegistryChange | None:
        version = change.meta.version
        existing = self._card(change.txn, idm)
        if existing is not None:
            if existing.member_no == member_no and existing.status is CardStatus.ACTIVE:
                return _refused(version, Reason.DUPLICATE, "the card is already this member's")
            return _refused(version, Reason.DUPLICATE, "the card was bound before; use a new card")
        current = change.txn.get(member_no.encode(), db=self._members)
        if current is not None:
            if not replace:
                return _refused(
                    version, Reason.DUPLICATE, "the member has an active card; reissue instead"
                )
            old = self._card(change.txn, current.decode())
            if old is None or old.status is not CardStatus.ACTIVE:
                raise InvariantViolation(f"member {member_no} indexes a card that is not active")
            replaced = msgspec.structs.replace(
                old, status=CardStatus.REPLACED, blocked_at_ms=change.now_ms
            )
            self._put_card(change, replaced)
        card = CardRecord(
            idm=idm, member_no=member_no, status=CardStatus.ACTIVE, bound_at_ms=change.now_ms
        )
        self._put_card(change, card)
        change.txn.put(member_no.encode(), idm.encode(), db=self._members)
        return None

    def _report_lost(self, change: _Txn, op: ReportLost) -> RegistryChange | None:
        card = self._card(change.txn, op.idm)
        if card is None:
            return _refused(change.meta.version, Reason.UNKNOWN_CARD, "no such card")
        if card.status is not CardStatus.ACTIVE:
            return _refused(change.meta.version, Reason.CARD_BLOCKED, "the card is already blocked")
        self._put_card(
            change,
            msgspec.structs.replace(card, status=CardStatus.LOST, blocked_at_ms=change.now_ms),
        )
        change.txn.delete(card.member_no.encode(), db=self._members)
        return None

    def _set_suspended(self, change: _Txn, op: SetSuspended) -> RegistryChange | None:
        key = op.member_no.encode()
        if op.suspended:
            if change.txn.put(key, b"", db=self._suspended, overwrite=False):
                change.suspended.append(op.member_no)
        elif change.txn.delete(key, db=self._suspended):
            change.resumed.append(op.member_no)
        return None

    def _add_till(self, change: _Txn, op: AddTill) -> RegistryChange | None:
        number = change.meta.next_till_number
        till = TillRecord(
            till_id=f"till-{number:04d}",
            store=op.store,
            kind=op.kind,
            public_key=op.public_key,
            retired=False,
            added_at_ms=change.now_ms,
        )
        if change.txn.get(till.till_id.encode(), db=self._tills) is not None:
            raise InvariantViolation(f"till number {number} is already taken")
        change.txn.put(till.till_id.encode(), _encoder.encode(till), db=self._tills)
        change.meta = msgspec.structs.replace(change.meta, next_till_number=number + 1)
        change.tills.append(till)
        return None

    def _retire_till(self, change: _Txn, op: RetireTill) -> RegistryChange | None:
        raw = change.txn.get(op.till_id.encode(), db=self._tills)
        if raw is None:
            return _refused(change.meta.version, Reason.INVALID_INPUT, "no such till")
        till = msgspec.structs.replace(_till_decoder.decode(raw), retired=True)
        change.txn.put(till.till_id.encode(), _encoder.encode(till), db=self._tills)
        change.tills.append(till)
        return None


def _check_card(key: bytes, card: CardRecord) -> None:
    if card.idm.encode() != key:
        raise InvariantViolation(f"card record {key!r} names {card.idm}")
    blocked = card.status is not CardStatus.ACTIVE
    if blocked != (card.blocked_at_ms > 0):
        raise InvariantViolation(f"card {card.idm[-4:]} is {card.status} at {card.blocked_at_ms}")
