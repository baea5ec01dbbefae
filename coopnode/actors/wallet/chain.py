"""The tamper-evident journal: each shard's entries chained by hash, and sealed days.

Every journal entry's link is SHA-256 over the previous link and the entry's stored bytes
(its MessagePack record, exactly as the `journal` database holds it):

    link(seq) = SHA-256(link(seq - 1) || journal[seq])
    link(0)   = SHA-256("coopnode journal chain v1 shard <index>")

The store writes `link(seq)` into its `chain` database (key: the sequence, as in the
journal) in the write transaction that appends the entry, so the journal's records and
every reader of them stay as they were. The chain depends only on the entries and the
shard's index, never on when or on which host they were written: every replica of a
shard that applies the same operations computes the same chain.

A day is sealed once it is over: its root is the link of the last entry written before
the day's end (midnight JST), signed with the node's Ed25519 journal key. The seal is kept
in the shard's `seals` database by day and never rewritten (sealing again answers the
first seal). Ed25519 signatures are deterministic, so replicas holding the same key seal
the same day with the same bytes.

`verify_files` reads a shard's files and says where they break: an entry whose bytes no
longer give its link (shard, seq, day), a link missing or extra, a seal whose signature
or root does not hold. Each link is checked against its own stored predecessor, so one
changed record is named alone and the entries after it still verify.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import lmdb
import msgspec
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import SigningKey, VerifyKey

from coopnode.actors.wallet.messages import ChainProblem, ChainReport, SealRecord, SealRefused
from coopnode.domain.days import COOP_TIMEZONE
from coopnode.domain.messages import JournalEntry

__all__ = ["ChainProblem", "ChainReport", "SealRecord", "SealRefused"]

LINK_BYTES = 32
_SEED_BYTES = 32
_entry_decoder = msgspec.msgpack.Decoder(JournalEntry)


def genesis(shard_index: int) -> bytes:
    return hashlib.sha256(f"coopnode journal chain v1 shard {shard_index}".encode()).digest()


def link(previous: bytes, entry_bytes: bytes) -> bytes:
    return hashlib.sha256(previous + entry_bytes).digest()


def seal_message(shard_index: int, day: str, last_seq: int, root: bytes) -> bytes:
    """What the journal key signs: readable, so that anyone can check a seal by hand."""
    return (
        f"coopnode journal root v1 shard={shard_index} day={day} seq={last_seq} root={root.hex()}"
    ).encode()


def day_of_ms(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, ZoneInfo(COOP_TIMEZONE)).date().isoformat()


def day_end_ms(day: str) -> int:
    """The first instant after `day` (an ISO date), midnight JST, in ms since the epoch."""
    next_day = date.fromisoformat(day) + timedelta(days=1)
    start = datetime(next_day.year, next_day.month, next_day.day, tzinfo=ZoneInfo(COOP_TIMEZONE))
    return int(start.timestamp() * 1000)


def sign_seal(
    key: SigningKey, shard_index: int, day: str, last_seq: int, root: bytes
) -> SealRecord:
    signature = key.sign(seal_message(shard_index, day, last_seq, root)).signature
    return SealRecord(
        shard_index=shard_index,
        day=day,
        last_seq=last_seq,
        root_hex=root.hex(),
        public_key_hex=bytes(key.verify_key).hex(),
        signature_hex=signature.hex(),
    )


# The journal key file ---------------------------------------------------------------------


def read_journal_key(path: Path) -> SigningKey:
    """The node's Ed25519 journal key: a file holding its 32-byte seed in hex."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise SealRefused(f"the journal key {path} is missing") from None
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        raise SealRefused(f"the journal key {path} is not hex") from None
    if len(seed) != _SEED_BYTES:
        raise SealRefused(f"the journal key {path} is not a 32-byte seed")
    return SigningKey(seed)


def create_journal_key(path: Path) -> None:
    """Make the journal key (mode 0600) unless it is there; a key is never replaced."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = bytes(SigningKey.generate()).hex()
    partial = path.with_name(path.name + ".partial")
    partial.write_text(seed + "\n", encoding="ascii")
    partial.chmod(0o600)
    partial.replace(path)


# Verification -------------------------------------------------------------------------------


def verify_files(path: Path, shard_index: int, public_key: VerifyKey | None) -> ChainReport:
    """Check a shard's chain and seals in its LMDB files at `path`, read-only.

    Readers do not block the shard's commits, so a running node's files can be checked
    (from another process: LMDB forbids one process to open an environment twice).
    """
    env = lmdb.open(str(path), readonly=True, max_dbs=16, lock=True, subdir=True)
    try:
        return verify_environment(env, shard_index, public_key)
    finally:
        env.close()


def verify_environment(env: Any, shard_index: int, public_key: VerifyKey | None) -> ChainReport:
    """Check every link and seal in one read transaction's snapshot. `public_key` None
    checks each seal against the key it names (a seal made with another key then passes)."""
    journal, chain, seals = (env.open_db(name, create=False) for name in _DATABASES)
    with env.begin() as txn:
        problems: list[ChainProblem] = []
        entries = 0
        for problem in _check_links(txn, journal, chain, shard_index):
            if isinstance(problem, int):
                entries = problem
            else:
                problems.append(problem)
        sealed = 0
        for day, raw in txn.cursor(db=seals):
            sealed += 1
            found = list(_check_seal(txn, journal, chain, bytes(raw), shard_index, public_key))
            if not found and _seal_day(bytes(raw)) != bytes(day).decode(errors="replace"):
                found.append(
                    ChainProblem(
                        shard_index=shard_index,
                        seq=0,
                        day=bytes(day).decode(errors="replace"),
                        problem="the seal kept under this day is another day's",
                    )
                )
            problems.extend(found)
    return ChainReport(shard_index=shard_index, entries=entries, seals=sealed, problems=problems)


_DATABASES = (b"journal", b"chain", b"seals")


def _check_links(
    txn: Any, journal: Any, chain: Any, shard_index: int
) -> Iterator[ChainProblem | int]:
    """Every link checked against its stored predecessor; yields the count at the end."""
    previous = genesis(shard_index)
    expected_seq = 1
    entries = 0
    for key, raw in txn.cursor(db=journal):
        seq = int.from_bytes(key, "big")
        day = _entry_day(raw)
        if seq != expected_seq:
            yield ChainProblem(
                shard_index=shard_index, seq=seq, day=day, problem=f"expected entry {expected_seq}"
            )
        stored = txn.get(key, db=chain)
        if stored is None:
            yield ChainProblem(shard_index=shard_index, seq=seq, day=day, problem="no chain link")
        elif link(previous, bytes(raw)) != stored:
            yield ChainProblem(
                shard_index=shard_index,
                seq=seq,
                day=day,
                problem="the entry's bytes do not give its chain link (the entry or the link "
                "was changed)",
            )
        previous = stored if stored is not None else link(previous, bytes(raw))
        expected_seq = seq + 1
        entries += 1
    last = txn.cursor(db=chain)
    if last.last() and int.from_bytes(last.key(), "big") >= expected_seq:
        yield ChainProblem(
            shard_index=shard_index,
            seq=int.from_bytes(last.key(), "big"),
            day="",
            problem="a chain link without its journal entry",
        )
    yield entries


def _check_seal(
    txn: Any, journal: Any, chain: Any, raw: bytes, shard_index: int, trusted: VerifyKey | None
) -> Iterator[ChainProblem]:
    try:
        seal = msgspec.msgpack.decode(raw, type=SealRecord)
    except msgspec.DecodeError as error:
        yield ChainProblem(shard_index=shard_index, seq=0, day="", problem=f"a seal: {error}")
        return

    def problem(text: str) -> ChainProblem:
        return ChainProblem(shard_index=shard_index, seq=seal.last_seq, day=seal.day, problem=text)

    try:
        key = trusted or VerifyKey(bytes.fromhex(seal.public_key_hex))
        root = bytes.fromhex(seal.root_hex)
        signature = bytes.fromhex(seal.signature_hex)
        end_ms = day_end_ms(seal.day)
    except (ValueError, TypeError, CryptoError) as error:
        yield problem(f"the seal does not decode: {error}")
        return
    try:
        key.verify(seal_message(seal.shard_index, seal.day, seal.last_seq, root), signature)
    except (BadSignatureError, ValueError):
        yield problem("the day's seal is not signed by the journal key")
    if seal.shard_index != shard_index:
        yield problem(f"the seal names shard {seal.shard_index}")
    stored = (
        genesis(shard_index) if seal.last_seq == 0 else txn.get(_seq_key(seal.last_seq), db=chain)
    )
    if stored != root:
        yield problem("the day's signed root is not the chain's link at its last entry")
    last = txn.get(_seq_key(seal.last_seq), db=journal) if seal.last_seq else None
    after = txn.get(_seq_key(seal.last_seq + 1), db=journal)
    if last is not None and _entry_at_ms(last) >= end_ms:
        yield problem("the seal's last entry is after the day's end")
    if after is not None and _entry_at_ms(after) < end_ms:
        yield problem("an entry of the sealed day comes after its root")


def _seal_day(raw: bytes) -> str:
    return msgspec.msgpack.decode(raw, type=SealRecord).day


def _seq_key(seq: int) -> bytes:
    return seq.to_bytes(8, "big")


def _entry_at_ms(raw: bytes) -> int:
    try:
        return _entry_decoder.decode(raw).at_ms
    except msgspec.DecodeError:
        return -1


def _entry_day(raw: bytes) -> str:
    at_ms = _entry_at_ms(bytes(raw))
    return "" if at_ms < 0 else day_of_ms(at_ms)
