"""A shard's books as the accounts office reads them: its journal folded by day, its
purses' totals at an instant, its clearing credits, and its part of each closed day.

The long reads run in a process of their own (the shard's books reader: one worker,
started on first use, at the lowest CPU priority), which opens the shard's LMDB files read
only, as LMDB lets another process read while the shard writes. Why a process: on the
shard's reading thread they shared the interpreter (the GIL) with the event loop's group
commits, and a closing of 100,000 taps held the taps' p99 at 1.65 s where it was 56 ms
(1,000 taps/s, `benchmarks.books_close`); paced to a fifth of the interpreter it was
still 140 ms against 19 ms, and a closing took 19 s. The reads go in chunks of at most
`wallet.books_read_chunk_entries` entries, each in a read transaction of its own
(`scan_chunk`), so that no reader pins old pages of the file for long: the journal is
append-only and an entry never changes once written, so chunks read at different
moments add up to the same figures as one long read would.

Entries are dated by the wall clock when their batch committed, so `at_ms` grows with
`seq` except when the clock steps back (an NTP correction). A day's read therefore starts
`books_clock_step_max_ms` before the day by binary search, stops that far after it, and
keeps only the entries dated within it.

A closed day is kept in the shard's own `closings` database, beside the journal it was
read from (so a backup and a move carry both): day (ISO date) → `ShardClosing`, written
once in a write transaction that first looks for an earlier closing, never changed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import lmdb
import msgspec

from coopnode.actors.wallet.messages import PurseTotalsReply, ShardClosing
from coopnode.actors.wallet.store import OpRecord, _op_key
from coopnode.domain.books import Correction, DayFold, day_of_ms
from coopnode.domain.errors import StoreCorrupt
from coopnode.domain.messages import Booked, JournalEntry, Result
from coopnode.domain.money import PURSES, Purse, Purses
from coopnode.domain.reconciliation import ClearingCredit, credit_of

_SEQ_BYTES = 8
_entry_decoder = msgspec.msgpack.Decoder(JournalEntry)
_op_decoder = msgspec.msgpack.Decoder(OpRecord)
_result_decoder: msgspec.msgpack.Decoder[Result] = msgspec.msgpack.Decoder(Result)
_closing_decoder = msgspec.msgpack.Decoder(ShardClosing)
_encoder = msgspec.msgpack.Encoder()

Visit = Callable[[Any, JournalEntry], None]
# The books reader's niceness: the taps' commits come first when the cores are busy.
READER_NICENESS = 19
# Readers a shard's books may hold open at once in its reader process.
_READERS_MAX = 8


class Journal(Protocol):
    """What the reads need of a shard's files: the shard's `WalletStore` is one, the
    reader process's `ReadOnlyJournal` another."""

    shard_index: int

    @property
    def env(self) -> Any: ...
    @property
    def journal_db(self) -> Any: ...
    @property
    def members_db(self) -> Any: ...
    @property
    def operations_db(self) -> Any: ...
    @property
    def closings_db(self) -> Any: ...


class ReadOnlyJournal:
    """A shard's files opened read only, in the books reader's process."""

    def __init__(self, path: Path, shard_index: int, map_size_bytes: int) -> None:
        self.shard_index = shard_index
        # The map as large as the shard's: a smaller one fails once the file outgrows it.
        self.env = lmdb.open(
            str(path),
            readonly=True,
            lock=True,
            max_dbs=16,
            max_readers=126,
            map_size=map_size_bytes,
        )
        # Opened outside any transaction of ours: a handle opened inside a read
        # transaction is closed with it.
        self.journal_db = self.env.open_db(b"journal", create=False)
        self.members_db = self.env.open_db(b"members", create=False)
        self.operations_db = self.env.open_db(b"operations", create=False)
        self.closings_db = self.env.open_db(b"closings", create=False)


def _entry(raw: bytes, seq: int) -> JournalEntry:
    try:
        entry = _entry_decoder.decode(raw)
    except msgspec.DecodeError as error:
        raise StoreCorrupt(f"journal entry {seq} does not decode: {error}") from None
    if entry.seq != seq:
        raise StoreCorrupt(f"journal entry {seq} says it is {entry.seq}")
    return entry


def first_seq_at(store: Journal, at_ms: int) -> int:
    """The first sequence whose entry is dated at or after `at_ms`, by binary search (the
    journal's next sequence when none is); 1 when the journal is empty."""
    with store.env.begin() as txn:
        low, high = 1, 1
        last = txn.cursor(db=store.journal_db)
        if last.last():
            high = int.from_bytes(last.key(), "big") + 1
        while low < high:
            middle = (low + high) // 2
            raw = txn.get(middle.to_bytes(_SEQ_BYTES, "big"), db=store.journal_db)
            if raw is None:
                raise StoreCorrupt(f"journal entry {middle} is missing")
            if _entry(raw, middle).at_ms < at_ms:
                low = middle + 1
            else:
                high = middle
        return low


def scan_chunk(
    store: Journal, from_seq: int, stop_ms: int, chunk_entries: int, visit: Visit
) -> int:
    """Visit at most `chunk_entries` entries from `from_seq` in one read transaction; the
    sequence to go on from, or 0 once the journal ends or an entry is dated at `stop_ms`
    or later."""
    with store.env.begin() as txn:
        cursor = txn.cursor(db=store.journal_db)
        if not cursor.set_range(from_seq.to_bytes(_SEQ_BYTES, "big")):
            return 0
        seq = from_seq
        for key, raw in cursor:
            seq = int.from_bytes(key, "big")
            if seq >= from_seq + chunk_entries:
                return seq
            entry = _entry(raw, seq)
            if entry.at_ms >= stop_ms:
                return 0
            visit(txn, entry)
    return 0


def booked_under(store: Journal, txn: Any, member_no: str, key: str) -> Booked | None:
    """What the operation under `key` of a member booked, if it booked something."""
    known = txn.get(_op_key(member_no, key), db=store.members_db)
    if known is None:
        return None
    raw = txn.get(known[:_SEQ_BYTES], db=store.operations_db)
    if raw is None:
        raise StoreCorrupt(f"operation {known[:_SEQ_BYTES].hex()} is missing")
    record = _op_decoder.decode(raw)
    result = _result_decoder.decode(record.result)
    return result if isinstance(result, Booked) else None


def day_visitor(store: Journal, fold: DayFold) -> Visit:
    """Adds the entries dated within the fold's day, and lists its corrections: voids
    and refunds of payments booked on an earlier day."""

    def visit(txn: Any, entry: JournalEntry) -> None:
        if not fold.covers(entry.at_ms):
            return
        fold.add(entry)
        if entry.kind not in ("void", "refund") or not entry.refers_to:
            return
        original = booked_under(store, txn, entry.member_no, entry.refers_to)
        if original is not None and original.at_ms >= fold.start_ms:
            return  # A correction of the same day's payment: the day's own business.
        fold.add_correction(
            Correction(
                shard_index=store.shard_index,
                seq=entry.seq,
                at_ms=entry.at_ms,
                kind=entry.kind,
                member_no=entry.member_no,
                key=entry.key,
                amount_yen=entry.amount_yen,
                store=entry.store,
                till_id=entry.till_id,
                payment_key=entry.refers_to,
                payment_day="" if original is None else day_of_ms(original.at_ms).isoformat(),
                payment_seq=0 if original is None else original.seq,
            )
        )

    return visit


class PurseTotals:
    """The members' purses added up over the entries dated before `end_ms`."""

    def __init__(self, end_ms: int) -> None:
        self.end_ms = end_ms
        self.entries = 0
        self.totals: dict[Purse, int] = dict.fromkeys(PURSES, 0)

    def visit(self, txn: Any, entry: JournalEntry) -> None:
        if entry.at_ms >= self.end_ms:
            return
        self.entries += 1
        for account, amount in entry.postings:
            if account.startswith("member:"):
                self.totals[Purse(account.rsplit(":", 1)[1])] += amount


def credits_visitor(
    shard_index: int, start_ms: int, end_ms: int, found: list[ClearingCredit]
) -> Visit:
    def visit(txn: Any, entry: JournalEntry) -> None:
        if start_ms <= entry.at_ms < end_ms:
            credit = credit_of(
                entry.key, entry.member_no, entry.postings, entry.at_ms, shard_index, entry.seq
            )
            if credit is not None:
                found.append(credit)

    return visit


def read_closing(store: Journal, day: date) -> ShardClosing | None:
    with store.env.begin() as txn:
        raw = txn.get(day.isoformat().encode(), db=store.closings_db)
    return None if raw is None else _closing(raw, day)


def read_closings(store: Journal, first: date, last: date) -> list[ShardClosing]:
    """The shard's closings from `first` to `last`, both included, in order."""
    found: list[ShardClosing] = []
    with store.env.begin() as txn:
        cursor = txn.cursor(db=store.closings_db)
        if cursor.set_range(first.isoformat().encode()):
            for key, raw in cursor:
                day = date.fromisoformat(key.decode())
                if day > last:
                    break
                found.append(_closing(raw, day))
    return found


def _closing(raw: bytes, day: date) -> ShardClosing:
    try:
        closing = _closing_decoder.decode(raw)
    except msgspec.DecodeError as error:
        raise StoreCorrupt(f"the closing of {day} does not decode: {error}") from None
    if closing.sums.day != day.isoformat():
        raise StoreCorrupt(f"the closing kept under {day} is of {closing.sums.day}")
    return closing


def write_closing(store: Journal, closing: ShardClosing) -> tuple[ShardClosing, bool]:
    """Keep `closing` unless the day was closed before; the closing kept, and whether it
    is this one. Called on the thread that writes the shard's batches."""
    key = closing.sums.day.encode()
    with store.env.begin(write=True) as txn:
        raw = txn.get(key, db=store.closings_db)
        if raw is not None:
            return _closing(raw, date.fromisoformat(closing.sums.day)), False
        txn.put(key, _encoder.encode(closing), db=store.closings_db)
    return closing, True


# The books reader process: its jobs, each a whole read in chunks ------------------------

_opened: dict[tuple[str, int], ReadOnlyJournal] = {}


def reader_started() -> None:
    """The reader process's start: below the shard's priority."""
    os.nice(READER_NICENESS)


def _journal(path: str, shard_index: int, map_size_bytes: int) -> ReadOnlyJournal:
    journal = _opened.get((path, shard_index))
    if journal is None:
        if len(_opened) >= _READERS_MAX:
            # A shard moved to another disk leaves its old files' reader behind.
            for stale in _opened.values():
                stale.env.close()
            _opened.clear()
        opened = ReadOnlyJournal(Path(path), shard_index, map_size_bytes)
        journal = _opened[path, shard_index] = opened
    return journal


def scan(
    journal: Journal, from_ms: int, stop_ms: int, chunk: int, slack_ms: int, visit: Visit
) -> None:
    """Visit the entries dated from `from_ms` (0: the first) up to `stop_ms`, give or take
    the clock's steps, a chunk per read transaction."""
    seq = first_seq_at(journal, from_ms - slack_ms) if from_ms > 0 else 1
    while seq:
        seq = scan_chunk(journal, seq, stop_ms + slack_ms, chunk, visit)


def day_sums_job(
    path: str, shard_index: int, map_size: int, day_iso: str, chunk: int, slack_ms: int
) -> bytes:
    journal = _journal(path, shard_index, map_size)
    fold = DayFold(date.fromisoformat(day_iso))
    scan(journal, fold.start_ms, fold.end_ms, chunk, slack_ms, day_visitor(journal, fold))
    return _encoder.encode(fold.result())


def purse_totals_job(
    path: str, shard_index: int, map_size: int, end_ms: int, chunk: int, slack_ms: int
) -> bytes:
    totals = PurseTotals(end_ms)
    scan(_journal(path, shard_index, map_size), 0, end_ms, chunk, slack_ms, totals.visit)
    reply = PurseTotalsReply(
        shard_index=shard_index, totals=Purses.of(totals.totals), entries=totals.entries
    )
    return _encoder.encode(reply)


def credits_job(
    path: str,
    shard_index: int,
    map_size: int,
    start_ms: int,
    end_ms: int,
    chunk: int,
    slack_ms: int,
) -> bytes:
    found: list[ClearingCredit] = []
    visit = credits_visitor(shard_index, start_ms, end_ms, found)
    scan(_journal(path, shard_index, map_size), start_ms, end_ms, chunk, slack_ms, visit)
    return _encoder.encode(found)
