"""A till's own LMDB: its sequence counter, what the node last told it, its offline queue.

Everything a till must not forget across a crash or a power cut lives here, written with
fsync before it acts on it:
  * the next sequence number, reserved before a frame is signed, so no number is ever
    used for two different frames;
  * the offline limits and the deny list from the node's last `Welcome`/`DenyUpdate`, so a
    till that starts while the node is down still knows which cards to refuse;
  * the offline queue: signed tap frames approved locally, kept until the node has
    answered each; forwarding is at least once and the node answers a repeat with its
    first decision, so each queued tap is booked exactly once;
  * what each card spent offline each co-op day (`days.coop_day`, the node's day too,
    whatever the host's time zone), for the per-card daily limit;
  * the recent sales, so that a void or a refund can name the card of a sale;
  * queued frames the node refused for good (a sale it declined, a signature it does not
    accept, a frame it cannot read): set aside with the node's reason for staff to look
    at, rather than sent again and again on every link, or forgotten.

Databases in the environment:
    meta    b"seq" → next sequence number; b"node" → NodeView (limits and deny list)
    queue   sequence (8 bytes, big-endian) → QueuedTap
    spent   day (ordinal) + IDm → yen approved offline that day
    sales   sequence (8 bytes, big-endian) → SaleRecord (pruned after `SALES_KEEP_DAYS`)
    aside   sequence (8 bytes, big-endian) → SetAside (kept until staff clear the files)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lmdb
import msgspec

from coopnode.actors.kernel.clock import ClockMs, system_ms
from coopnode.domain.days import coop_day
from coopnode.domain.errors import InvariantViolation
from coopnode.domain.money import Reason
from coopnode.domain.offline import NO_LIMITS, offline_refusal
from coopnode.domain.till_frames import DenyUpdate, OfflineLimits, Welcome

# Sales older than this are forgotten: voids are for today, refunds go through staff.
SALES_KEEP_DAYS = 2
_SEQ_KEY = b"seq"
_NODE_KEY = b"node"


class _Record(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class NodeView(_Record, frozen=True):
    store: str
    kind: str
    limits: OfflineLimits
    deny_version: int
    deny_idms: list[str]


class QueuedTap(_Record, frozen=True):
    seq: int
    # The whole `Signed` frame as sent, so that a repeat is byte for byte the same.
    frame: bytes
    idm: str
    amount_yen: int
    # True when the till approved the sale itself (offline, or an online frame that got
    # no answer); then a late decline of the online frame is re-sent as an offline tap.
    approved_locally: bool
    offline: bool
    # Not a tap but a void or refund that reverses tap number `reverses`: a frame the till
    # refused and the node booked all the same.
    reverses: int = 0
    # The offline limits a sale the till approved was approved under; an online frame's
    # sale that the node declines late is sent again as an offline tap stating them.
    limits: OfflineLimits | None = None


class SetAside(_Record, frozen=True):
    """A queued frame the node refused outright, and why; it will never be booked."""

    tap: QueuedTap
    reason: str
    message: str
    at_ms: int


class SaleRecord(_Record, frozen=True):
    seq: int
    idm: str
    amount_yen: int
    day: int
    approved: bool


_encoder = msgspec.msgpack.Encoder()
_view_decoder = msgspec.msgpack.Decoder(NodeView)
_queued_decoder = msgspec.msgpack.Decoder(QueuedTap)
_sale_decoder = msgspec.msgpack.Decoder(SaleRecord)
_aside_decoder = msgspec.msgpack.Decoder(SetAside)


def _seq_key(seq: int) -> bytes:
    return seq.to_bytes(8, "big")


def _spent_key(day: int, idm: str) -> bytes:
    return day.to_bytes(4, "big") + idm.encode()


class TillState:
    """The till's files; used from the event loop's thread only. `clock_ms` is the
    till's clock (ms since the epoch), which dates its sales and says which day it is."""

    def __init__(
        self,
        path: Path,
        map_size_bytes: int,
        fsync: bool = True,
        clock_ms: ClockMs = system_ms,
    ) -> None:
        self.clock_ms = clock_ms
        path.mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(
            str(path), max_dbs=6, map_size=map_size_bytes, sync=fsync, metasync=fsync
        )
        self._meta = self.env.open_db(b"meta")
        self._queue = self.env.open_db(b"queue")
        self._spent = self.env.open_db(b"spent")
        self._sales = self.env.open_db(b"sales")
        self._aside = self.env.open_db(b"aside")
        raw = self._read(_NODE_KEY, self._meta)
        self.view: NodeView | None = None if raw is None else _view_decoder.decode(raw)
        self.deny: set[str] = set() if self.view is None else set(self.view.deny_idms)
        self._prune_sales()

    def close(self) -> None:
        self.env.close()

    def _read(self, key: bytes, db: Any) -> bytes | None:
        with self.env.begin() as txn:
            value: bytes | None = txn.get(key, db=db)
            return value

    def today(self) -> int:
        """The co-op's day now, by the till's clock."""
        return coop_day(self.clock_ms())

    @property
    def limits(self) -> OfflineLimits:
        return NO_LIMITS if self.view is None else self.view.limits

    def reserve_seq(self) -> int:
        """The next sequence number, durable before it is used."""
        with self.env.begin(write=True) as txn:
            raw = txn.get(_SEQ_KEY, db=self._meta)
            seq = 1 if raw is None else int.from_bytes(raw, "big")
            txn.put(_SEQ_KEY, (seq + 1).to_bytes(8, "big"), db=self._meta)
        return seq

    def advance_seq(self, next_seq: int) -> int | None:
        """Make the next sequence number at least `next_seq`; the old one if it was lower.

        The node says in `Welcome` how far it has seen this till count. A counter behind
        that (the till's files restored from a backup) would number new sales with used
        numbers, which the node answers with the old frames' decisions."""
        with self.env.begin(write=True) as txn:
            raw = txn.get(_SEQ_KEY, db=self._meta)
            current = 1 if raw is None else int.from_bytes(raw, "big")
            if current >= next_seq:
                txn.abort()
                return None
            txn.put(_SEQ_KEY, next_seq.to_bytes(8, "big"), db=self._meta)
        return current

    def remember_welcome(self, welcome: Welcome) -> None:
        view = NodeView(
            store=welcome.store,
            kind=welcome.kind.value,
            limits=welcome.limits,
            deny_version=welcome.deny_version,
            deny_idms=sorted(welcome.deny_idms),
        )
        self._save_view(view)

    def apply_deny_update(self, update: DenyUpdate) -> None:
        if self.view is None or update.version <= self.view.deny_version:
            return
        deny = (set(self.view.deny_idms) | set(update.blocked)) - set(update.unblocked)
        self._save_view(
            msgspec.structs.replace(self.view, deny_version=update.version, deny_idms=sorted(deny))
        )

    def _save_view(self, view: NodeView) -> None:
        with self.env.begin(write=True) as txn:
            txn.put(_NODE_KEY, _encoder.encode(view), db=self._meta)
        self.view = view
        self.deny = set(view.deny_idms)

    # The offline queue ---------------------------------------------------------------

    def queued_count(self) -> int:
        with self.env.begin() as txn:
            count: int = txn.stat(self._queue)["entries"]
            return count

    def approve_offline(self, tap: QueuedTap, day: int) -> tuple[Reason, str] | None:
        """Check the limits and queue the tap in one transaction; a refusal queues nothing."""
        key = _spent_key(day, tap.idm)
        with self.env.begin(write=True) as txn:
            raw = txn.get(key, db=self._spent)
            spent = 0 if raw is None else int.from_bytes(raw, "big")
            queued = txn.stat(self._queue)["entries"]
            refusal = offline_refusal(
                self.limits, tap.idm in self.deny, spent, queued, tap.amount_yen
            )
            if refusal is not None:
                txn.abort()
                return refusal
            txn.put(key, (spent + tap.amount_yen).to_bytes(8, "big"), db=self._spent)
            self._put_queued(txn, tap)
        return None

    def queue_unanswered(self, tap: QueuedTap) -> None:
        """Queue an online frame that got no answer, to learn its fate when the link returns."""
        with self.env.begin(write=True) as txn:
            self._put_queued(txn, tap)

    def _put_queued(self, txn: Any, tap: QueuedTap) -> None:
        key = _seq_key(tap.seq)
        if not txn.put(key, _encoder.encode(tap), db=self._queue, overwrite=False):
            raise InvariantViolation(f"sequence {tap.seq} is queued twice")

    def queued(self) -> Iterator[QueuedTap]:
        """The queued taps, oldest first (a snapshot: taps queued meanwhile come later)."""
        with self.env.begin() as txn:
            taps = [_queued_decoder.decode(raw) for _, raw in txn.cursor(db=self._queue)]
        for tap in taps:
            if tap.amount_yen <= 0:
                raise InvariantViolation(f"queued tap {tap.seq} has no amount")
            yield tap

    def forwarded(self, seq: int) -> None:
        """The node answered a queued tap: it leaves the queue."""
        with self.env.begin(write=True) as txn:
            txn.delete(_seq_key(seq), db=self._queue)

    def replace_queued(self, seq: int, replacement: QueuedTap) -> None:
        """The node's answer to queued `seq` needs one more frame: swap them in one
        transaction, so that a crash leaves the one or the other, never both (which would
        book the follow-up twice) nor neither (which would lose it)."""
        with self.env.begin(write=True) as txn:
            if not txn.delete(_seq_key(seq), db=self._queue):
                raise InvariantViolation(f"sequence {seq} is not queued")
            self._put_queued(txn, replacement)

    def set_aside(self, seq: int, reason: str, message: str, at_ms: int) -> SetAside:
        """The node refused queued `seq` outright: it leaves the queue for the set-aside
        records, in one transaction."""
        with self.env.begin(write=True) as txn:
            raw = txn.get(_seq_key(seq), db=self._queue)
            if raw is None:
                raise InvariantViolation(f"sequence {seq} is not queued")
            aside = SetAside(
                tap=_queued_decoder.decode(raw), reason=reason, message=message, at_ms=at_ms
            )
            txn.delete(_seq_key(seq), db=self._queue)
            txn.put(_seq_key(seq), _encoder.encode(aside), db=self._aside)
        return aside

    def set_aside_count(self) -> int:
        with self.env.begin() as txn:
            count: int = txn.stat(self._aside)["entries"]
            return count

    def set_aside_frames(self) -> list[SetAside]:
        with self.env.begin() as txn:
            return [_aside_decoder.decode(raw) for _, raw in txn.cursor(db=self._aside)]

    # Sales ---------------------------------------------------------------------------

    def remember_sale(self, sale: SaleRecord) -> None:
        with self.env.begin(write=True) as txn:
            txn.put(_seq_key(sale.seq), _encoder.encode(sale), db=self._sales)

    def sale(self, seq: int) -> SaleRecord | None:
        raw = self._read(_seq_key(seq), self._sales)
        return None if raw is None else _sale_decoder.decode(raw)

    def _prune_sales(self) -> None:
        oldest_day = self.today() - SALES_KEEP_DAYS
        with self.env.begin(write=True) as txn:
            for key, raw in list(txn.cursor(db=self._sales)):
                if _sale_decoder.decode(raw).day < oldest_day:
                    txn.delete(key, db=self._sales)
            for key, _ in list(txn.cursor(db=self._spent)):
                if int.from_bytes(key[:4], "big") < oldest_day:
                    txn.delete(key, db=self._spent)
