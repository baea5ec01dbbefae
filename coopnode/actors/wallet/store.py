"""One wallet shard's books in one LMDB environment.

The store applies a batch of operations in one write transaction and commits it with one
fsync (group commit). Inside the transaction each money operation:

1. looks up its idempotency key (scoped to the member): a retry returns the first result,
   the same key with different content is refused;
2. lets `domain.wallet.decide` compute the new wallet and the balanced postings;
3. writes the wallet, the journal entry, the member's history index and the operation's
   record (its result, and for a payment what it took) together.

The store keeps two running sums, what members hold and what the counter accounts hold;
they must cancel at every commit. A store that finds its files inconsistent on open
refuses to start (InvariantViolation).

One operation never fails another. An operation that raises while it is applied (a rule
its own result breaks, checked before anything is written, or any other error of its
own) aborts the batch's transaction; the batch is then applied again with each
operation in its own nested transaction, the failing one is rolled back alone and
answered `operation_failed` with a critical log line, and the rest commit together.
What says the store itself is broken (`StoreCorrupt`: a stored record that does not
decode or check, an index that points nowhere, books that do not balance at commit)
and every LMDB error other than a full map are not one operation's: they stop the
shard, as before.

Databases in the environment:
    members      everything keyed by member, clustered so that one operation mostly
                 rewrites one leaf page of one tree:
                   member number                    → MemberWallet
                   member number + 0x01 + key       → the operation's number (8 bytes,
                                                      big-endian) + its fingerprint
                   member number + 0x02 + sequence  → (empty): the member's journal entries
    operations   operation number (8 bytes, big-endian) → OpRecord, appended in order
    journal      sequence (8 bytes, big-endian) → JournalEntry, appended in order
    overdrafts   member number + NUL + payment key → OverdraftRecord: what offline taps
                 left owing, until the payment is voided
    chain        sequence → the entry's 32-byte chain link (`chain.py`), written with it
    seals        ISO day (JST) → SealRecord: the day's root link, signed (`seal_day`)
    meta         b"shard" → ShardMeta

Why this layout: the cost of an fsynced LMDB commit is the number of pages it writes.
Bulky records go to the two append-only logs, which fill their last page in order; the
random-access tree holds only small entries, next to the member's wallet. Measured
(`python -m benchmarks.store_commits`: 5,000 members, 55,000 payments booked, fsync on),
a commit of 3 payments wrote 36 pages in 1.37 ms when wallets, payments, idempotency
records and history had a tree each, and 21 pages in 0.98 ms this way; of 8 payments,
71 pages in 2.2 ms before and 33 pages in 1.1 ms now.

Long, and kept whole: everything that one write transaction of the books touches
(wallets, journal, operations log, overdrafts, the checks on open) is read in one place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import lmdb
import msgspec
from nacl.signing import SigningKey

from coopnode.actors.kernel.clock import ClockMs, system_ms
from coopnode.actors.kernel.copies import JournalPosition, StoreCopy, copy_environment, host_name
from coopnode.actors.kernel.files import Layout, open_lmdb
from coopnode.actors.wallet import chain
from coopnode.actors.wallet.messages import AuditReport
from coopnode.domain import ledger
from coopnode.domain.errors import InvariantViolation, StoreCorrupt
from coopnode.domain.messages import (
    OPERATION_FAILED,
    Booked,
    ChargeRecord,
    Declined,
    GetHistory,
    GetWallet,
    HistoryLine,
    HistoryPage,
    JournalEntry,
    MemberWallet,
    MoneyOperation,
    OfflinePay,
    OpenWallet,
    Operation,
    OverdraftRecord,
    PaymentRecord,
    Recall,
    Refund,
    RefundCharge,
    Result,
    Resume,
    SettleOverdraft,
    StatusChanged,
    Suspend,
    VoidPayment,
    WalletStatus,
    WalletView,
    Withdraw,
    decline,
)
from coopnode.domain.money import Reason
from coopnode.domain.rules import CoopRules
from coopnode.domain.sharding import shard_of
from coopnode.domain.wallet import (
    Change,
    decide,
    meal_cap_yen,
    meal_remaining_today_yen,
)
from coopnode.logs import get_logger

log = get_logger(__name__)

# Version 2: member-clustered records and the operations log (version 1 had a tree each
# for payments, idempotency records and history).
LAYOUT_VERSION = 2


class ShardMeta(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    shard_index: int
    shard_count: int
    next_seq: int
    counters: dict[str, int]
    next_op: int = 1
    layout: int = 1
    # A replica's books (issue 16): the last log entry applied to them, written in the
    # same transaction, so that a replica started again applies each entry once.
    replica_op: int = 0


class OpRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A keyed operation's first result, and for a payment what it took (voids and
    refunds rewrite `payment` in place)."""

    result: bytes
    payment: PaymentRecord | None = None
    # A charge's credit, for the counter's refund of it (which rewrites it in place).
    charge: ChargeRecord | None = None


_SEQ_BYTES = 8
_META_KEY = b"shard"
_MEMBER_KEY_BYTES = 12
_OP_TAG = b"\x01"
_HISTORY_TAG = b"\x02"
_PAST_MEMBER = b"\xff"  # Sorts after every key of the member it follows.
_encoder = msgspec.msgpack.Encoder()
_wallet_decoder = msgspec.msgpack.Decoder(MemberWallet)
_op_decoder = msgspec.msgpack.Decoder(OpRecord)
_entry_decoder = msgspec.msgpack.Decoder(JournalEntry)
_meta_decoder = msgspec.msgpack.Decoder(ShardMeta)
_overdraft_decoder = msgspec.msgpack.Decoder(OverdraftRecord)
_seal_decoder = msgspec.msgpack.Decoder(chain.SealRecord)
_result_decoder: msgspec.msgpack.Decoder[Result] = msgspec.msgpack.Decoder(Result)


def _seq_key(seq: int) -> bytes:
    return seq.to_bytes(_SEQ_BYTES, "big")


def _scoped(member_no: str, key: str) -> bytes:
    return f"{member_no}\x00{key}".encode()


def _op_key(member_no: str, key: str) -> bytes:
    """Where a member's operation key points at its record, beside the member's wallet."""
    return member_no.encode() + _OP_TAG + key.encode()


def _history_key(member_no: str, seq: int) -> bytes:
    return member_no.encode() + _HISTORY_TAG + _seq_key(seq)


# Deterministic order, so that a retry whose JSON lists deposits in another order is
# still the same operation.
_fingerprint_encoder = msgspec.msgpack.Encoder(order="deterministic")


def _fingerprint(op: MoneyOperation) -> bytes:
    return hashlib.sha256(_fingerprint_encoder.encode(op)).digest()[:16]


def _stored(decoder: msgspec.msgpack.Decoder[Any], raw: bytes | None, what: str) -> Any:
    """A record read back from the store; one that is missing or does not decode is
    the store's fault, never the operation's that read it."""
    if raw is None:
        raise StoreCorrupt(f"{what} is missing")
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError as error:
        raise StoreCorrupt(f"{what} does not decode: {error}") from None


class _OperationFailed(Exception):
    """One operation raised while it was applied; the batch is applied again without it."""

    def __init__(self, op: Operation, error: Exception) -> None:
        super().__init__(repr(error))
        self.op = op
        self.error = error


class _Batch:
    """What one write transaction changes, so that an aborted batch leaves no trace."""

    def __init__(
        self,
        txn: Any,
        next_seq: int,
        next_op: int,
        counters: dict[str, int],
        members_total: int,
        chain_head: bytes,
    ):
        self.txn = txn
        self.next_seq = next_seq
        self.next_op = next_op
        self.counters = dict(counters)
        self.members_total = members_total
        self.chain_head = chain_head

    def mark(self) -> tuple[int, int, dict[str, int], int, bytes]:
        return self.next_seq, self.next_op, dict(self.counters), self.members_total, self.chain_head

    def restore(self, mark: tuple[int, int, dict[str, int], int, bytes]) -> None:
        self.next_seq, self.next_op, self.counters, self.members_total, self.chain_head = mark


class WalletStore:
    """The books of one shard. Not thread-safe: one thread applies batches."""

    def __init__(
        self,
        path: Path,
        *,
        shard_index: int,
        shard_count: int,
        coops: Mapping[str, CoopRules],
        map_size_bytes: int,
        fsync: bool = True,
        lock_wait_s: float = 30.0,
        clock_ms: ClockMs | None = None,
    ) -> None:
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.coops = dict(coops)
        self._clock_ms = clock_ms or system_ms
        self._files = open_lmdb(
            path,
            layout=Layout(store="wallet", version=LAYOUT_VERSION),
            databases=(
                "members",
                "operations",
                "journal",
                "meta",
                "overdrafts",
                "closings",
                "chain",
                "seals",
            ),
            map_size_bytes=map_size_bytes,
            fsync=fsync,
            lock_wait_s=lock_wait_s,
            max_readers=64,
        )
        self.env = self._files.env
        self._members = self._files.dbs["members"]
        self._ops = self._files.dbs["operations"]
        self._journal = self._files.dbs["journal"]
        self._meta = self._files.dbs["meta"]
        self._overdrafts = self._files.dbs["overdrafts"]
        self._chain = self._files.dbs["chain"]
        self._seals = self._files.dbs["seals"]
        # The shard's part of each closed day (`books.py`), written once, never changed.
        self.closings_db = self._files.dbs["closings"]
        self.members_db = self._members
        self.operations_db = self._ops
        self.journal_db = self._journal
        self.next_seq, self.next_op, self.counters, self.members_total = self._load()
        self.chain_head = self._open_chain()

    def close(self) -> None:
        self._files.close()

    def now_ms(self) -> int:
        """The store's clock: what it dates journal entries by."""
        return self._clock_ms()

    @property
    def path(self) -> Path:
        """The shard's directory."""
        return self._files.path

    def backup_to(self, backup_dir: Path, data_dir: Path) -> StoreCopy:
        """Copy the shard into its directory under `backup_dir` (as under the live
        `data_dir`) while batches commit, and say where its books stand in the copy: the
        meta record is read in the read transaction the copy is made from, so the
        position is the copy's own. Runs on any thread."""
        with self.env.begin() as txn:
            meta = _stored(_meta_decoder, txn.get(_META_KEY, db=self._meta), "the meta record")
            store, files = copy_environment(self._files, backup_dir, data_dir, txn=txn)
        return StoreCopy(
            store=store,
            layout=Layout(store="wallet", version=LAYOUT_VERSION),
            host=host_name(),
            files=files,
            journal=JournalPosition(last_seq=meta.next_seq - 1, last_op=meta.next_op - 1),
        )

    # Opening ---------------------------------------------------------------------------

    def _load(self) -> tuple[int, int, dict[str, int], int]:
        """Read the shard's meta record and check the books before serving anything."""
        with self.env.begin(write=True) as txn:
            raw = txn.get(_META_KEY, db=self._meta)
            if raw is None:
                meta = ShardMeta(
                    shard_index=self.shard_index,
                    shard_count=self.shard_count,
                    next_seq=1,
                    counters={},
                    layout=LAYOUT_VERSION,
                )
                txn.put(_META_KEY, _encoder.encode(meta), db=self._meta)
            else:
                meta = _meta_decoder.decode(raw)
        if (meta.shard_index, meta.shard_count) != (self.shard_index, self.shard_count):
            raise InvariantViolation(
                f"the files are shard {meta.shard_index} of {meta.shard_count}, "
                f"not {self.shard_index} of {self.shard_count}: shard_count cannot change"
            )
        if meta.layout != LAYOUT_VERSION:
            raise InvariantViolation(
                f"the files are of layout {meta.layout}, this node reads layout "
                f"{LAYOUT_VERSION}: they were written by an older version; move them aside"
            )
        members_total = 0
        with self.env.begin() as txn:
            for member_key, raw_wallet in _wallets(txn, self._members):
                wallet = _wallet_decoder.decode(raw_wallet)
                self._check_wallet_record(member_key, wallet)
                members_total += wallet.balances.total()
            for db, next_key, name in (
                (self._journal, meta.next_seq, "journal"),
                (self._ops, meta.next_op, "operations log"),
            ):
                last = txn.cursor(db=db)
                if last.last() and int.from_bytes(last.key(), "big") != next_key - 1:
                    raise InvariantViolation(f"the {name}'s last record does not match the meta")
        if members_total + sum(meta.counters.values()) != 0:
            raise InvariantViolation(
                f"shard {self.shard_index} books do not balance on open: members hold "
                f"{members_total}, counters {sum(meta.counters.values())}"
            )
        self.replica_op = meta.replica_op
        return meta.next_seq, meta.next_op, dict(meta.counters), members_total

    def _check_wallet_record(self, member_key: bytes, wallet: MemberWallet) -> None:
        """Check a wallet read from disk: a broken one is the store's fault (StoreCorrupt)."""
        try:
            ledger.check_wallet(wallet)
        except InvariantViolation as error:
            raise StoreCorrupt(f"stored wallet {member_key!r}: {error}") from None
        if wallet.member_no.encode() != member_key:
            raise StoreCorrupt(f"wallet record {member_key!r} names {wallet.member_no}")
        if shard_of(wallet.member_no, self.shard_count) != self.shard_index:
            raise StoreCorrupt(f"member {wallet.member_no} is not in shard {self.shard_index}")
        if wallet.coop not in self.coops:
            raise StoreCorrupt(f"member {wallet.member_no} names unknown co-op {wallet.coop}")

    def _open_chain(self) -> bytes:
        """The chain's head link, checked at its tail; files written before the chain was
        kept have their links made now, from their entries, in one transaction.

        Only the last link is checked here (a full check reads every entry, seconds for
        millions, and a shard that restarts after a crash must serve at once):
        `coopnode audit verify` and `verify_chain` check every link and seal.
        """
        with self.env.begin(write=True) as txn:
            last_link = txn.cursor(db=self._chain)
            if not last_link.last():
                return self._link_existing(txn)
            last_seq = int.from_bytes(last_link.key(), "big")
            if last_seq != self.next_seq - 1:
                raise InvariantViolation(
                    f"shard {self.shard_index}: the chain ends at entry {last_seq}, "
                    f"the journal at {self.next_seq - 1}"
                )
            head = bytes(last_link.value())
            previous = (
                chain.genesis(self.shard_index)
                if last_seq == 1
                else txn.get(_seq_key(last_seq - 1), db=self._chain)
            )
            entry = txn.get(_seq_key(last_seq), db=self._journal)
            if previous is None or entry is None or chain.link(previous, entry) != head:
                raise InvariantViolation(
                    f"shard {self.shard_index}: journal entry {last_seq} does not match its "
                    "chain link"
                )
            return head

    def _link_existing(self, txn: Any) -> bytes:
        head = chain.genesis(self.shard_index)
        for key, raw in txn.cursor(db=self._journal):
            head = chain.link(head, raw)
            txn.put(key, head, db=self._chain, append=True)
        return head

    # Applying ----------------------------------------------------------------------------

    def apply_batch(
        self, ops: Sequence[Operation], *, now_ms: int | None = None, replica_op: int = 0
    ) -> list[Result]:
        """Apply every operation in one transaction and commit it with one fsync.

        The answers are returned only after the commit is durable. A full map answers
        every operation with `storage_full` and changes nothing. An operation that
        fails is refused alone (`operation_failed`) and the others are committed; a
        broken store raises (StoreCorrupt, or LMDB's error).

        A replica's books apply a log entry with the time its primary decided it at
        (`now_ms`: every replica sets the same meal-plan day) and record the entry's op
        (`replica_op`) in the same transaction.
        """
        if replica_op and replica_op <= self.replica_op:
            raise InvariantViolation(
                f"log entry {replica_op} applied again (the books hold {self.replica_op})"
            )
        if now_ms is None:
            now_ms = self._clock_ms()
        try:
            try:
                batch, results = self._commit(ops, now_ms, self._apply_guarded, replica_op)
            except _OperationFailed:
                # Rare: pay for a nested transaction per operation only to find which.
                batch, results = self._commit(ops, now_ms, self._apply_alone, replica_op)
        except lmdb.MapFullError:
            full = decline(Reason.STORAGE_FULL, "the shard's storage is full; nothing was changed")
            return [full for _ in ops]
        self.next_seq, self.next_op, self.counters, self.members_total = (
            batch.next_seq,
            batch.next_op,
            batch.counters,
            batch.members_total,
        )
        self.chain_head = batch.chain_head
        if replica_op:
            self.replica_op = replica_op
        return results

    def keep_once(self, db: Any, key: bytes, value: bytes, *, replica_op: int) -> bytes | None:
        """Write `value` at `key` of `db` unless something is there (returned, unchanged),
        with a replica's log entry op in the same transaction: how a replicated shard's
        books keep a closed day, once, on every replica alike."""
        if replica_op <= self.replica_op:
            raise InvariantViolation(
                f"log entry {replica_op} applied again (the books hold {self.replica_op})"
            )
        with self.env.begin(write=True) as txn:
            found = txn.get(key, db=db)
            if found is None:
                txn.put(key, value, db=db)
            batch = _Batch(
                txn,
                self.next_seq,
                self.next_op,
                self.counters,
                self.members_total,
                self.chain_head,
            )
            self._finish(batch, replica_op)
        self.replica_op = replica_op
        return None if found is None else bytes(found)

    def _commit(
        self,
        ops: Sequence[Operation],
        now_ms: int,
        apply: Callable[[_Batch, Operation, int], Result],
        replica_op: int,
    ) -> tuple[_Batch, list[Result]]:
        with self.env.begin(write=True) as txn:
            batch = _Batch(
                txn,
                self.next_seq,
                self.next_op,
                self.counters,
                self.members_total,
                self.chain_head,
            )
            results = [apply(batch, op, now_ms) for op in ops]
            self._finish(batch, replica_op or self.replica_op)
        return batch, results

    def _apply_guarded(self, batch: _Batch, op: Operation, now_ms: int) -> Result:
        """Apply one operation; whatever it raises that is not the store's is its own."""
        try:
            return self._apply_one(batch, op, now_ms)
        except (StoreCorrupt, lmdb.Error):
            raise
        except Exception as error:
            raise _OperationFailed(op, error) from error

    def _apply_alone(self, batch: _Batch, op: Operation, now_ms: int) -> Result:
        """Apply one operation in a nested transaction, so that it can fail alone."""
        parent, mark = batch.txn, batch.mark()
        child = self.env.begin(write=True, parent=parent)
        batch.txn = child
        try:
            result = self._apply_guarded(batch, op, now_ms)
        except _OperationFailed as failed:
            child.abort()
            batch.restore(mark)
            log.critical(
                "wallet operation refused: it could not be applied",
                shard=self.shard_index,
                kind=str(op.__struct_config__.tag),
                member_no=op.member_no,
                error=repr(failed.error),
            )
            return OPERATION_FAILED
        except BaseException:
            child.abort()
            raise
        finally:
            batch.txn = parent
        child.commit()
        return result

    def _finish(self, batch: _Batch, replica_op: int) -> None:
        """Check that the books balance and write the meta record, inside the transaction."""
        # Every entry was checked to balance, so sums that do not cancel started wrong.
        if batch.members_total + sum(batch.counters.values()) != 0:
            raise StoreCorrupt(f"shard {self.shard_index} books do not balance at commit")
        meta = ShardMeta(
            shard_index=self.shard_index,
            shard_count=self.shard_count,
            next_seq=batch.next_seq,
            counters=batch.counters,
            next_op=batch.next_op,
            layout=LAYOUT_VERSION,
            replica_op=replica_op,
        )
        batch.txn.put(_META_KEY, _encoder.encode(meta), db=self._meta)

    def _apply_one(self, batch: _Batch, op: Operation, now_ms: int) -> Result:
        if shard_of(op.member_no, self.shard_count) != self.shard_index:
            raise InvariantViolation(f"member {op.member_no} sent to shard {self.shard_index}")
        match op:
            case GetWallet():
                return self._view(batch.txn, op.member_no, now_ms)
            case GetHistory():
                return self._history_page(batch.txn, op)
            case Recall():
                return self._recall(batch.txn, op)
            case Suspend() | Resume():
                return self._set_status(batch, op, now_ms)
        return self._apply_money(batch, op, now_ms)

    def _decided_before(self, txn: Any, op: MoneyOperation, fingerprint: bytes) -> Result | None:
        """The stored result of `op`'s key, a conflict when the key was used for another
        operation, or None when nothing was decided under it."""
        known = txn.get(_op_key(op.member_no, op.key), db=self._members)
        if known is None:
            return None
        if known[_SEQ_BYTES:] != fingerprint:
            return decline(
                Reason.IDEMPOTENCY_CONFLICT,
                f"key {op.key!r} was already used for a different operation",
            )
        record = self._op_record(txn, known)
        first: Result = _stored(_result_decoder, record.result, f"the result of {op.key!r}")
        return first

    def _recall(self, txn: Any, op: Recall) -> Result:
        if op.payment.member_no != op.member_no:
            return decline(Reason.INVALID_INPUT, "the payment names another member")
        recalled = self._decided_before(txn, op.payment, _fingerprint(op.payment))
        if recalled is None:
            return decline(Reason.UNKNOWN_PAYMENT, f"nothing was decided under {op.payment.key!r}")
        return recalled

    def _apply_money(self, batch: _Batch, op: MoneyOperation, now_ms: int) -> Result:
        txn = batch.txn
        index_key = _op_key(op.member_no, op.key)
        fingerprint = _fingerprint(op)
        first = self._decided_before(txn, op, fingerprint)
        if first is not None:
            return first
        wallet = self._get_wallet(txn, op.member_no)
        # The operation number of the payment (or charge) a void or refund names.
        paid_by: bytes | None = None
        payment = None
        charge = None
        if isinstance(op, (VoidPayment, Refund, SettleOverdraft)):
            paid_by = txn.get(_op_key(op.member_no, op.payment_key), db=self._members)
            payment = None if paid_by is None else self._op_record(txn, paid_by).payment
        elif isinstance(op, RefundCharge):
            paid_by = txn.get(_op_key(op.member_no, op.charge_key), db=self._members)
            charge = None if paid_by is None else self._op_record(txn, paid_by).charge
        owed = self._owed_yen(txn, op.member_no) if isinstance(op, Withdraw) else 0
        outcome = decide(op, wallet, payment, self.coops, now_ms, owed_yen=owed, charge=charge)
        new_payment = new_charge = None
        if isinstance(outcome, Declined):
            result: Result = outcome
            if wallet is None and not isinstance(op, OpenWallet):
                return result  # Nothing to scope a record to: unknown members leave no trace.
        else:
            result = self._book(batch, op, outcome, now_ms)
            if paid_by is not None and (outcome.payment or outcome.charge) is not None:
                self._rewrite_record(txn, paid_by, outcome.payment, outcome.charge)
            else:
                new_payment, new_charge = outcome.payment, outcome.charge
        op_no = _seq_key(batch.next_op)
        batch.next_op += 1
        record = OpRecord(result=_encoder.encode(result), payment=new_payment, charge=new_charge)
        txn.put(op_no, _encoder.encode(record), db=self._ops, append=True)
        txn.put(index_key, op_no + fingerprint, db=self._members)
        return result

    def _owed_yen(self, txn: Any, member_no: str) -> int:
        """What the member's offline taps still owe, from the overdrafts database."""
        prefix = member_no.encode() + b"\x00"
        owed = 0
        cursor = txn.cursor(db=self._overdrafts)
        positioned = cursor.set_range(prefix)
        while positioned and cursor.key().startswith(prefix):
            owed += _overdraft_decoder.decode(cursor.value()).overdraft_yen
            positioned = cursor.next()
        return owed

    def _op_record(self, txn: Any, index_value: bytes) -> OpRecord:
        raw = txn.get(index_value[:_SEQ_BYTES], db=self._ops)
        record: OpRecord = _stored(_op_decoder, raw, f"operation {index_value[:_SEQ_BYTES].hex()}")
        return record

    def _rewrite_record(
        self,
        txn: Any,
        index_value: bytes,
        payment: PaymentRecord | None,
        charge: ChargeRecord | None,
    ) -> None:
        """A void, refund or settling changes what the payment's own record says it took;
        a counter refund of a charge, what the charge's record says is left of it."""
        record = self._op_record(txn, index_value)
        if payment is not None:
            record = msgspec.structs.replace(record, payment=payment)
        if charge is not None:
            record = msgspec.structs.replace(record, charge=charge)
        txn.put(index_value[:_SEQ_BYTES], _encoder.encode(record), db=self._ops)

    def _book(self, batch: _Batch, op: MoneyOperation, change: Change, now_ms: int) -> Booked:
        ledger.check_wallet(change.wallet)
        entry = JournalEntry(
            seq=batch.next_seq,
            at_ms=now_ms,
            kind=change.kind,
            member_no=op.member_no,
            key=op.key,
            amount_yen=change.amount_yen,
            postings=change.postings,
            store=change.store,
            till_id=change.till_id,
            refers_to=_refers_to(op),
        )
        self._append(batch, entry)
        self._put_wallet(batch.txn, change.wallet)
        if change.payment is not None:
            self._track_overdraft(batch.txn, op, change.payment, now_ms)
        rules = self.coops[change.wallet.coop]
        return Booked(
            kind=change.kind,
            key=op.key,
            member_no=op.member_no,
            seq=entry.seq,
            at_ms=now_ms,
            amount_yen=change.amount_yen,
            changes=change.changes,
            points_earned=change.points_earned,
            balances=change.wallet.balances,
            meal_remaining_today_yen=meal_remaining_today_yen(
                change.wallet, rules, change.wallet.meal_day
            ),
            overdraft_yen=change.overdraft_yen,
        )

    def _track_overdraft(
        self, txn: Any, op: MoneyOperation, payment: PaymentRecord, now_ms: int
    ) -> None:
        """Record an offline tap's overdraft; a void of that tap, or its settling, ends it."""
        key = _scoped(payment.member_no, payment.payment_key)
        if isinstance(op, SettleOverdraft):
            txn.delete(key, db=self._overdrafts)
            return
        if not payment.overdraft_yen:
            return
        if payment.voided:
            txn.delete(key, db=self._overdrafts)
        elif isinstance(op, OfflinePay):
            record = OverdraftRecord(
                member_no=payment.member_no,
                payment_key=payment.payment_key,
                amount_yen=payment.amount_yen,
                overdraft_yen=payment.overdraft_yen,
                store=payment.store,
                till_id=payment.till_id,
                tapped_at_ms=op.tapped_at_ms,
                booked_at_ms=now_ms,
            )
            txn.put(key, _encoder.encode(record), db=self._overdrafts)

    def _append(self, batch: _Batch, entry: JournalEntry) -> None:
        """Write a checked journal entry and move the running sums by its postings."""
        ledger.check_entry(entry)
        for account, amount in entry.postings:
            if account.startswith("member:"):
                batch.members_total += amount
            else:
                batch.counters[account] = batch.counters.get(account, 0) + amount
        raw = _encoder.encode(entry)
        key = _seq_key(entry.seq)
        batch.txn.put(key, raw, db=self._journal, append=True)
        # The chain's link, in the same transaction: one SHA-256 of ~200 bytes and one
        # append to the last page of the `chain` tree.
        batch.chain_head = chain.link(batch.chain_head, raw)
        batch.txn.put(key, batch.chain_head, db=self._chain, append=True)
        batch.txn.put(_history_key(entry.member_no, entry.seq), b"", db=self._members)
        batch.next_seq += 1

    def _set_status(self, batch: _Batch, op: Suspend | Resume, now_ms: int) -> Result:
        wallet = self._get_wallet(batch.txn, op.member_no)
        if wallet is None:
            return decline(Reason.UNKNOWN_MEMBER, f"no wallet for member {op.member_no}")
        if wallet.status is WalletStatus.CLOSED:
            return decline(Reason.ACCOUNT_CLOSED, "the member withdrew; the account is closed")
        status = WalletStatus.SUSPENDED if isinstance(op, Suspend) else WalletStatus.ACTIVE
        if wallet.status is status:
            return StatusChanged(member_no=op.member_no, status=status, seq=0)
        entry = JournalEntry(
            seq=batch.next_seq,
            at_ms=now_ms,
            kind=status.value,
            member_no=op.member_no,
            key="",
            amount_yen=0,
            postings=[],
        )
        self._append(batch, entry)
        self._put_wallet(batch.txn, msgspec.structs.replace(wallet, status=status))
        return StatusChanged(member_no=op.member_no, status=status, seq=entry.seq)

    # Reading -----------------------------------------------------------------------------

    def _get_wallet(self, txn: Any, member_no: str) -> MemberWallet | None:
        raw = txn.get(member_no.encode(), db=self._members)
        if raw is None:
            return None
        wallet: MemberWallet = _stored(_wallet_decoder, raw, f"the wallet of {member_no}")
        self._check_wallet_record(member_no.encode(), wallet)
        return wallet

    def _put_wallet(self, txn: Any, wallet: MemberWallet) -> None:
        txn.put(wallet.member_no.encode(), _encoder.encode(wallet), db=self._members)

    def _view(self, txn: Any, member_no: str, now_ms: int) -> Result:
        wallet = self._get_wallet(txn, member_no)
        if wallet is None:
            return decline(Reason.UNKNOWN_MEMBER, f"no wallet for member {member_no}")
        rules = self.coops[wallet.coop]
        return WalletView(
            member_no=wallet.member_no,
            coop=wallet.coop,
            status=wallet.status,
            meal_plan=wallet.meal_plan,
            meal_cap_yen=meal_cap_yen(wallet, rules),
            meal_remaining_today_yen=meal_remaining_today_yen(wallet, rules, rules.day_of(now_ms)),
            balances=wallet.balances,
            emoney_used=wallet.emoney_used,
        )

    def _history_page(self, txn: Any, op: GetHistory) -> Result:
        wallet = self._get_wallet(txn, op.member_no)
        if wallet is None:
            return decline(Reason.UNKNOWN_MEMBER, f"no wallet for member {op.member_no}")
        window = _month_window_ms(op.month, self.coops[wallet.coop].timezone)
        lines: list[HistoryLine] = []
        next_before = 0
        for entry in self._member_entries(txn, op.member_no, op.before_seq):
            if window is not None and entry.at_ms >= window[1]:
                continue
            if window is not None and entry.at_ms < window[0]:
                break
            if len(lines) == op.limit:
                next_before = lines[-1].seq
                break
            lines.append(_history_line(entry))
        return HistoryPage(member_no=op.member_no, lines=lines, next_before_seq=next_before)

    def _member_entries(self, txn: Any, member_no: str, before_seq: int) -> Iterator[JournalEntry]:
        """The member's journal entries, newest first, older than `before_seq` (0: all)."""
        prefix = member_no.encode() + _HISTORY_TAG
        cursor = txn.cursor(db=self._members)
        start = prefix + _seq_key(before_seq if before_seq else 2**63)
        # Step back from the first key at or after `start`, or from the very end.
        positioned = cursor.prev() if cursor.set_range(start) else cursor.last()
        while positioned and cursor.key().startswith(prefix):
            seq = cursor.key()[len(prefix) :]
            entry: JournalEntry = _stored(
                _entry_decoder, txn.get(seq, db=self._journal), f"journal entry {seq.hex()}"
            )
            if entry.member_no != member_no:
                raise StoreCorrupt(f"history of {member_no} points at entry {entry.seq}")
            yield entry
            positioned = cursor.prev()

    def overdrafts(self, limit: int) -> list[OverdraftRecord]:
        """The overdrafts staff have to recover, by member, at most `limit` of them."""
        found: list[OverdraftRecord] = []
        with self.env.begin() as txn:
            for _, raw in txn.cursor(db=self._overdrafts):
                if len(found) == limit:
                    break
                record = _overdraft_decoder.decode(raw)
                if record.overdraft_yen <= 0:
                    raise InvariantViolation(f"overdraft {record.payment_key} is not positive")
                found.append(record)
        return found

    # Sealed days ------------------------------------------------------------------------

    def seal_day(self, day: str, key: SigningKey, *, grace_ms: int = 0) -> chain.SealRecord:
        """Sign the day's root (the chain's link at its last entry) once the day is over.

        Idempotent: a day sealed before answers its first seal, whatever key is given.
        Refused until `grace_ms` past the day's end (how far the clock may step back, as
        the books' closing waits: no entry is dated in the day after its seal). Runs on
        the thread that commits (it writes).
        """
        with self.env.begin(write=True) as txn:
            known = self._known_seal(txn, day)
            if known is not None:
                return known
            seal = self._make_seal(txn, day, key, grace_ms)
            txn.put(day.encode(), _encoder.encode(seal), db=self._seals)
        return seal

    def seal_of(self, day: str, key: SigningKey, *, grace_ms: int) -> tuple[chain.SealRecord, bool]:
        """The day's seal: the one kept (False), or one made now and not yet kept (True),
        which a replicated shard's primary sends through its log (`keep_once`)."""
        with self.env.begin() as txn:
            known = self._known_seal(txn, day)
            if known is not None:
                return known, False
            return self._make_seal(txn, day, key, grace_ms), True

    @property
    def seals_db(self) -> Any:
        return self._seals

    def _known_seal(self, txn: Any, day: str) -> chain.SealRecord | None:
        known = txn.get(day.encode(), db=self._seals)
        if known is None:
            return None
        seal: chain.SealRecord = _stored(_seal_decoder, known, f"the seal of {day}")
        return seal

    def _make_seal(self, txn: Any, day: str, key: SigningKey, grace_ms: int) -> chain.SealRecord:
        """The seal of a day that is over: the last entry before its end is found by
        bisection on the entries' times, which the store's clock makes non-decreasing; a
        step back of the clock is then walked forward over."""
        end_ms = chain.day_end_ms(day)
        if self._clock_ms() < end_ms + grace_ms:
            raise chain.SealRefused(f"the day {day} is not over yet")
        last_seq = self._last_seq_before(txn, end_ms)
        root = (
            chain.genesis(self.shard_index)
            if last_seq == 0
            else bytes(txn.get(_seq_key(last_seq), db=self._chain))
        )
        return chain.sign_seal(key, self.shard_index, day, last_seq, root)

    def _last_seq_before(self, txn: Any, end_ms: int) -> int:
        """The last entry written before `end_ms` (0: none)."""

        def at_ms(seq: int) -> int:
            raw = txn.get(_seq_key(seq), db=self._journal)
            entry: JournalEntry = _stored(_entry_decoder, raw, f"journal entry {seq}")
            return entry.at_ms

        low, high = 0, self.next_seq - 1  # The answer lies in [low, high].
        while low < high:
            middle = (low + high + 1) // 2
            if at_ms(middle) < end_ms:
                low = middle
            else:
                high = middle - 1
        while low + 1 < self.next_seq and at_ms(low + 1) < end_ms:
            low += 1
        return low

    def seals(self) -> list[chain.SealRecord]:
        """Every sealed day of the shard, oldest first."""
        with self.env.begin() as txn:
            return [_seal_decoder.decode(raw) for _, raw in txn.cursor(db=self._seals)]

    def verify_chain(self) -> chain.ChainReport:
        """Check every link and seal of the shard's files (read-only, any thread)."""
        return chain.verify_environment(self.env, self.shard_index, None)

    def audit(self) -> AuditReport:
        """Recount every account from the journal and compare with the stored balances.

        Everything is read from one read transaction, a consistent snapshot, so an audit
        may run on another thread while commits go on.
        """
        problems: list[str] = []
        sums: dict[str, int] = {}
        entries = 0
        with self.env.begin() as txn:
            stored_counters = _meta_decoder.decode(
                txn.get(_META_KEY, db=self._meta) or b""
            ).counters
            for _, raw in txn.cursor(db=self._journal):
                entry = _entry_decoder.decode(raw)
                entries += 1
                try:
                    ledger.check_entry(entry)
                except InvariantViolation as error:
                    problems.append(str(error))
                for account, amount in entry.postings:
                    sums[account] = sums.get(account, 0) + amount
            members = 0
            members_total = 0
            for _, raw in _wallets(txn, self._members):
                wallet = _wallet_decoder.decode(raw)
                members += 1
                members_total += wallet.balances.total()
                for purse, amount in wallet.balances.items():
                    account = ledger.member_account(wallet.member_no, purse)
                    if sums.get(account, 0) != amount:
                        problems.append(
                            f"{account} holds {amount}, journal says {sums.get(account, 0)}"
                        )
        counters = {
            account: total
            for account, total in sums.items()
            if total and not account.startswith("member:")
        }
        if counters != {account: total for account, total in stored_counters.items() if total}:
            problems.append("counter accounts differ from the journal")
        counters_total = sum(counters.values())
        if members_total + counters_total != 0:
            problems.append(f"members hold {members_total} but counters hold {counters_total}")
        return AuditReport(
            shard_index=self.shard_index,
            entries=entries,
            members=members,
            members_total_yen=members_total,
            counters_total_yen=counters_total,
            balanced=not problems,
            problems=problems[:20],
        )


def _refers_to(op: MoneyOperation) -> str:
    """The payment a void, refund or settling changes, for its journal entry."""
    if isinstance(op, (VoidPayment, Refund, SettleOverdraft)):
        return op.payment_key
    return ""


def _wallets(txn: Any, members: Any) -> Iterator[tuple[bytes, bytes]]:
    """Every wallet record, one seek per member past its operation and history entries.

    (A declined enrolment keeps its key's record without a wallet beside it.)"""
    cursor = txn.cursor(db=members)
    found = cursor.first()
    while found:
        key = cursor.key()
        if len(key) == _MEMBER_KEY_BYTES:
            yield key, cursor.value()
        found = cursor.set_range(key[:_MEMBER_KEY_BYTES] + _PAST_MEMBER)


def _history_line(entry: JournalEntry) -> HistoryLine:
    return HistoryLine(
        seq=entry.seq,
        at_ms=entry.at_ms,
        kind=entry.kind,
        key=entry.key,
        amount_yen=entry.amount_yen,
        changes=ledger.changes_of(entry),
        store=entry.store,
        till_id=entry.till_id,
    )


def _month_window_ms(month: str, timezone: str) -> tuple[int, int] | None:
    """The [start, end) instants of a "YYYY-MM" month in the co-op's time zone."""
    if not month:
        return None
    year, month_number = (int(part) for part in month.split("-"))
    zone = ZoneInfo(timezone)
    start = datetime(year, month_number, 1, tzinfo=zone)
    end = datetime(year + month_number // 12, month_number % 12 + 1, 1, tzinfo=zone)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)
