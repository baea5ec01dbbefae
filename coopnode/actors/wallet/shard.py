"""The wallet shard actor: a Ray actor that owns one `WalletStore` and group-commits.

Callers (the front's batchers) send batches of operations as MessagePack bytes. Every
batch waits in the actor's mailbox; one committer drains the whole mailbox into a single
write transaction and fsync, then answers every caller. So the more callers there are,
the more operations share an fsync.

Operations arrive one encoded value each and are decoded one by one: one that does not
decode (or break a bound of its type) is answered `operation_failed` alone, and one that
fails while it is applied is refused alone by the store. A broken store (StoreCorrupt,
or any error out of the store's commit) crashes the actor's process on purpose: Ray
restarts it, and the new process reloads and re-checks the books from disk before it
serves anything.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import ssl
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Protocol, TypeVar

import msgspec
import ray

from coopnode.actors.kernel.clock import ClockMs
from coopnode.actors.kernel.link_tls import (
    LinkTlsError,
    files_from_ray_environment,
    link_server_context,
)
from coopnode.actors.wallet import books
from coopnode.actors.wallet.chain import read_journal_key
from coopnode.actors.wallet.link import BatchReply, serve_link
from coopnode.actors.wallet.messages import (
    AuditReport,
    ShardClosing,
    ShardDay,
)
from coopnode.actors.wallet.move import DATA_FILE, copy_environment, mark_moved, read_chunk
from coopnode.actors.wallet.replicas.faults import FlushStalls
from coopnode.actors.wallet.store import WalletStore
from coopnode.domain.books import DaySums
from coopnode.domain.errors import InvariantViolation, StoreCorrupt
from coopnode.domain.messages import OPERATION_FAILED, Operation, Result, decline
from coopnode.domain.money import Reason
from coopnode.logs import configure_logging, get_logger
from coopnode.settings import Settings

log = get_logger(__name__)

SHARD_NAME_PREFIX = "wallet-shard-"


class ShardHealth(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    shard_index: int
    pid: int
    next_seq: int
    pending_ops: int


batch_encoder = msgspec.msgpack.Encoder()
batch_decoder = msgspec.msgpack.Decoder(list[msgspec.Raw])
operation_decoder: msgspec.msgpack.Decoder[Operation] = msgspec.msgpack.Decoder(Operation)
reply_decoder = msgspec.msgpack.Decoder(BatchReply)


def shard_name(index: int) -> str:
    return f"{SHARD_NAME_PREFIX}{index}"


def shard_path(settings: Settings, index: int) -> Path:
    return settings.data_path.resolve() / "wallet" / f"shard-{index:03d}"


def link_addresses(link_host: str) -> tuple[str, str]:
    """Where the link listens, and the address fronts are told to dial.

    "node" is the address Ray knows this host by (`ray start --node-ip-address`), which
    other hosts reach and the host's certificate names; a wildcard listens everywhere
    and gives fronts that same address, since a wildcard cannot be dialled.
    """
    if link_host == "node" or _is_wildcard(link_host):
        node_ip: str = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
        return (node_ip if link_host == "node" else link_host), node_ip
    return link_host, link_host


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


class _Batched(Protocol):
    ops: list[Operation]


BatchedT = TypeVar("BatchedT", bound=_Batched)


def take_group(mailbox: deque[BatchedT], commit_batch_max_ops: int) -> list[BatchedT]:
    """Take whole batches from the mailbox for one group commit: up to the commit bound,
    and at least one (a batch larger than the bound commits alone). One rule for a shard
    of one and for a replicated shard's primary."""
    taken: list[BatchedT] = []
    count = 0
    while mailbox and (not taken or count + len(mailbox[0].ops) <= commit_batch_max_ops):
        waiting = mailbox.popleft()
        taken.append(waiting)
        count += len(waiting.ops)
    return taken


class _Waiting:
    """A batch in the mailbox: the operations to commit, and the batch's answers so far
    (None where an operation's answer comes from the commit)."""

    __slots__ = ("answers", "future", "ops")

    def __init__(
        self,
        ops: list[Operation],
        answers: list[Result | None],
        future: asyncio.Future[BatchReply],
    ) -> None:
        self.ops = ops
        self.answers = answers
        self.future = future

    def reply(self, results: list[Result], commit_ops: int, commit_s: float) -> BatchReply:
        """The batch's answers in order, the commit's results filling the gaps."""
        given = iter(results)
        answers = [next(given) if answer is None else answer for answer in self.answers]
        return BatchReply(results=answers, commit_ops=commit_ops, commit_s=commit_s)


class WalletShard:
    """One shard of the wallets. Async actor: `apply` calls interleave while a commit runs.

    The class stays undecorated so that Ray pickles it by reference to this module;
    `kernel.ray_calls.named_actor` makes the Ray actor of it.
    """

    def __init__(
        self,
        shard_index: int,
        settings_json: bytes,
        link_token: str,
        clock_ms: ClockMs | None = None,
    ) -> None:
        settings = msgspec.json.decode(settings_json, type=Settings)
        self._link_token = link_token
        self._link_server: asyncio.Server | None = None
        self._link_endpoint: str | None = None
        configure_logging(settings.log)
        self._index = shard_index
        self._wallet = settings.wallet
        self._cluster_tls = settings.cluster.tls.enabled
        self._link_tls: ssl.SSLContext | None = None
        self._path = shard_path(settings, shard_index)
        self._journal_key_path = settings.journal_key_path
        # The disk this shard's files are on (a cluster's), which a move changes.
        disks = settings.cluster.wallet_shard_disks
        self._disk = disks[shard_index] if disks else ""
        # Set by a move's switch: no batch is taken any more (see `move.py`).
        self._fenced = False
        self._link_writers: set[asyncio.StreamWriter] = set()
        self._store = WalletStore(
            self._path,
            shard_index=shard_index,
            shard_count=settings.wallet.shard_count,
            coops=settings.coops,
            map_size_bytes=settings.wallet.lmdb_map_size_mib * 1024 * 1024,
            fsync=settings.wallet.fsync,
            lock_wait_s=settings.wallet.lock_wait_s,
            clock_ms=clock_ms,
        )
        # Long reads (audit, overdraft lists) run here, off the event loop; writes run on
        # the loop's thread, always the same one, as LMDB write transactions require.
        self._long_reads = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"shard-{shard_index}"
        )
        # The books' long reads run in a process of their own (`books.py`).
        self._books_reader = books.ReaderProcess(settings.wallet, shard_index)
        # The storage fault of tests and benchmarks (off unless they turn it on): a shard
        # of one is replica 0, and its commit's flush stalls as a bad disk's would.
        self._stalls = FlushStalls(settings.replication.storage_fault, 0, shard_index)
        self._mailbox: deque[_Waiting] = deque()
        self._pending_ops = 0
        self._committing = False
        self._commit_task: asyncio.Task[None] | None = None
        log.info("wallet shard ready", shard=shard_index, next_seq=self._store.next_seq)

    async def apply(self, batch: bytes) -> bytes:
        """Apply a batch sent as a Ray call (the data plane's fallback and benchmarks)."""
        return batch_encoder.encode(await self._submit(batch_decoder.decode(batch)))

    def _decode(self, raws: list[msgspec.Raw]) -> tuple[list[Operation], list[Result | None]]:
        """Decode each operation alone; one that does not decode is refused alone."""
        ops: list[Operation] = []
        answers: list[Result | None] = []
        for raw in raws:
            try:
                ops.append(operation_decoder.decode(raw))
            except msgspec.DecodeError as error:
                log.critical(
                    "wallet operation refused: it does not decode",
                    shard=self._index,
                    error=str(error),
                )
                answers.append(OPERATION_FAILED)
            else:
                answers.append(None)
        return ops, answers

    async def data_endpoint(self) -> str:
        """The `host:port` of this shard's data plane, opened on first request: on
        `wallet.link_host`, with mutual TLS under this host's cluster certificate when
        `cluster.tls` is on (a host whose Ray runs without TLS refuses, saying so)."""
        if self._link_endpoint is None:
            if self._cluster_tls:
                try:
                    self._link_tls = link_server_context(files_from_ray_environment())
                except LinkTlsError as error:
                    log.critical(
                        "wallet link cannot serve TLS", shard=self._index, error=str(error)
                    )
                    raise
            bind, advertised = link_addresses(self._wallet.link_host)
            self._link_server = await asyncio.start_server(self._serve_link, bind, 0)
            port = self._link_server.sockets[0].getsockname()[1]
            self._link_endpoint = f"{advertised}:{port}"
            log.info(
                "wallet link listening",
                shard=self._index,
                address=f"{bind}:{port}",
                tls=self._link_tls is not None,
            )
        return self._link_endpoint

    async def _serve_link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._link_writers.add(writer)
        try:
            await serve_link(
                reader,
                writer,
                token=self._link_token,
                submit=self._submit,
                frame_max_bytes=self._wallet.link_frame_max_bytes,
                tls=self._link_tls,
                handshake_timeout_s=self._wallet.link_handshake_timeout_s,
            )
        finally:
            self._link_writers.discard(writer)

    async def _submit(self, raws: list[msgspec.Raw]) -> BatchReply:
        """Queue a batch for the next group commit; answer once that commit is durable."""
        if self._fenced:
            # The front sends it again, under the same keys, to the shard's new home.
            raise ConnectionResetError(f"wallet shard {self._index} is moving to another disk")
        if self._pending_ops + len(raws) > self._wallet.mailbox_max_ops:
            busy = decline(Reason.OVERLOADED, "the wallet shard is busy; try again shortly")
            return BatchReply(results=[busy] * len(raws), commit_ops=0, commit_s=0.0)
        ops, answers = self._decode(raws)
        future: asyncio.Future[BatchReply] = asyncio.get_running_loop().create_future()
        waiting = _Waiting(ops, answers, future)
        if not ops:
            return waiting.reply([], commit_ops=0, commit_s=0.0)
        self._mailbox.append(waiting)
        self._pending_ops += len(ops)
        if not self._committing:
            self._committing = True
            # Kept: the loop holds only a weak reference to a task, and a commit loop
            # collected half way would leave every caller in the mailbox waiting.
            self._commit_task = asyncio.get_running_loop().create_task(self._commit_loop())
        return await future

    async def _commit_loop(self) -> None:
        """Drain the mailbox, a group commit at a time, until it is empty."""
        try:
            while self._mailbox:
                taken = self._take_group()
                ops = [op for waiting in taken for op in waiting.ops]
                started = time.perf_counter()
                try:
                    # The commit runs on the event loop's own thread: handing it to a worker
                    # thread cost more (GIL and wake-up, ~0.5 ms) than the loop loses by
                    # waiting. Frames that arrive meanwhile join the next group commit.
                    self._stalls.before_flush()
                    results = self._store.apply_batch(ops)
                except Exception as error:  # The store refuses one operation's failure
                    # itself; what reaches here is the store's own (StoreCorrupt, LMDB).
                    self._crash(error, taken)
                    return
                elapsed = time.perf_counter() - started
                self._answer(taken, results, elapsed)
                await asyncio.sleep(0)  # Let waiting frames and calls join the mailbox.
        finally:
            self._committing = False

    def _take_group(self) -> list[_Waiting]:
        taken = take_group(self._mailbox, self._wallet.commit_batch_max_ops)
        self._pending_ops -= sum(len(waiting.ops) for waiting in taken)
        return taken

    def _answer(self, taken: list[_Waiting], results: list[Result], elapsed_s: float) -> None:
        offset = 0
        for waiting in taken:
            part = results[offset : offset + len(waiting.ops)]
            offset += len(waiting.ops)
            if not waiting.future.done():
                waiting.future.set_result(waiting.reply(part, len(results), elapsed_s))

    def _crash(self, error: Exception, taken: list[_Waiting]) -> None:
        """Stop at once on a broken store; Ray restarts the process, which re-checks the disk."""
        log.critical("wallet shard store broken; restarting", shard=self._index, error=repr(error))
        failure = error if isinstance(error, InvariantViolation) else StoreCorrupt(repr(error))
        for waiting in [*taken, *self._mailbox]:
            if not waiting.future.done():
                waiting.future.set_exception(failure)
        os._exit(70)

    async def health(self) -> bytes:
        health = ShardHealth(
            shard_index=self._index,
            pid=os.getpid(),
            next_seq=self._store.next_seq,
            pending_ops=self._pending_ops,
        )
        return msgspec.msgpack.encode(health)

    async def overdrafts(self, limit: int) -> bytes:
        """The shard's open overdrafts (offline taps the balance did not cover)."""
        records = await asyncio.get_running_loop().run_in_executor(
            self._long_reads, self._store.overdrafts, limit
        )
        return msgspec.msgpack.encode(records)

    async def backup_to(self, backup_dir: str) -> bytes:
        """Copy this shard's files into `<backup_dir>/wallet/shard-NNN/` on this host while
        batches go on committing: the copy reads one snapshot on a thread of its own (not
        the long-reads thread, so that an audit does not wait for a long copy)."""
        # The shard's files are `<data_dir>/wallet/shard-NNN` (`shard_path`), in the data
        # directory this shard was given, which is its host's.
        data_dir = self._store.path.parents[1]
        copy = await asyncio.to_thread(self._store.backup_to, Path(backup_dir), data_dir)
        return msgspec.msgpack.encode(copy)

    async def audit(self) -> bytes:
        report: AuditReport = await asyncio.get_running_loop().run_in_executor(
            self._long_reads, self._store.audit
        )
        return msgspec.msgpack.encode(report)

    # The journal's sealed days (`chain.py`).

    async def seal_day(self, day: str) -> bytes:
        """Seal a finished day (ISO date, JST) with the node's journal key; idempotent.
        Runs on the loop's thread, between group commits, as every write does."""
        if self._fenced:
            raise ConnectionResetError(f"wallet shard {self._index} is moving to another disk")
        key = read_journal_key(self._journal_key_path)
        seal = self._store.seal_day(day, key, grace_ms=self._wallet.books_clock_step_max_ms)
        return msgspec.msgpack.encode(seal)

    async def seals(self) -> bytes:
        return msgspec.msgpack.encode(self._store.seals())

    async def verify_chain(self) -> bytes:
        report = await asyncio.get_running_loop().run_in_executor(
            self._long_reads, self._store.verify_chain
        )
        return msgspec.msgpack.encode(report)

    # The books (`books.py`): long reads in chunks on the reading thread.

    async def _books_job(self, job: Callable[..., bytes], *args: object) -> bytes:
        """Run one of the books' long reads in the shard's books reader process."""
        return await self._books_reader.run(self._store.path, job, *args)

    def close_books(self) -> None:
        """Stop the books reader process, if it was started."""
        self._books_reader.close()

    async def _day_sums(self, day: date) -> DaySums:
        raw = await self._books_job(books.day_sums_job, day.isoformat())
        return msgspec.msgpack.decode(raw, type=DaySums)

    async def books_day(self, day_iso: str) -> bytes:
        """The shard's figures of a day: as closed, or as the journal has them now."""
        day = date.fromisoformat(day_iso)
        closing = await asyncio.get_running_loop().run_in_executor(
            self._long_reads, books.read_closing, self._store, day
        )
        sums = closing.sums if closing is not None else await self._day_sums(day)
        return msgspec.msgpack.encode(ShardDay(closing=closing, sums=sums))

    async def closings(self, first_iso: str, last_iso: str) -> bytes:
        found = await asyncio.get_running_loop().run_in_executor(
            self._long_reads,
            books.read_closings,
            self._store,
            date.fromisoformat(first_iso),
            date.fromisoformat(last_iso),
        )
        return msgspec.msgpack.encode(found)

    async def close_day(self, day_iso: str, closed_by: str) -> bytes:
        """Close the shard's part of a day once it is over: its figures, read now and
        checked against its accounts, are kept and never change (`books.py`)."""

        async def keep(closing: ShardClosing) -> tuple[ShardClosing, bool]:
            # On the loop's thread, which writes the batches: no commit runs meanwhile.
            return books.write_closing(self._store, closing)

        reply = await books.close_day(
            self._store,
            self._index,
            date.fromisoformat(day_iso),
            closed_by,
            clock_step_max_ms=self._wallet.books_clock_step_max_ms,
            day_sums=self._day_sums,
            read_closing=self._read_closing,
            keep=keep,
        )
        return msgspec.msgpack.encode(reply)

    async def _read_closing(self, day: date) -> ShardClosing | None:
        return await asyncio.get_running_loop().run_in_executor(
            self._long_reads, books.read_closing, self._store, day
        )

    async def purse_totals(self, end_ms: int) -> bytes:
        """What the members held in each purse at `end_ms`, from the journal up to then
        (`PurseTotalsReply`)."""
        return await self._books_job(books.purse_totals_job, end_ms)

    async def clearing_credits(self, start_ms: int, end_ms: int) -> bytes:
        """The credits booked through card and konbini clearing between the instants."""
        return await self._books_job(books.credits_job, start_ms, end_ms)

    # A move to another host's disk (`move.py`; `coopnode admin move-shard`).

    async def where(self) -> str:
        """The disk this shard's files are on ("" on one host)."""
        return self._disk

    async def copy_out(self) -> bytes:
        """A consistent copy of the shard's files beside them, for a move; its digests."""
        info = await asyncio.get_running_loop().run_in_executor(
            self._long_reads, copy_environment, self._store.env, self._outgoing
        )
        return msgspec.msgpack.encode(info)

    async def read_copy(self, index: int) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(
            self._long_reads, read_chunk, self._outgoing / DATA_FILE, index
        )

    @property
    def _outgoing(self) -> Path:
        return self._path.with_name(self._path.name + ".outgoing")

    async def fence(self) -> None:
        """Take no batch any more, and return once every batch taken is durable and
        answered; then drop the fronts' links, which send their next batches to the
        shard's new home."""
        self._fenced = True
        if self._link_server is not None:
            self._link_server.close()
        while self._commit_task is not None and not self._commit_task.done():
            await asyncio.shield(self._commit_task)
        await asyncio.sleep(0)  # The answers' writes run once their futures are set.
        for writer in list(self._link_writers):
            writer.close()
        log.info("wallet shard fenced for a move", shard=self._index)

    async def retire(self, disk: str) -> None:
        """Mark the files here as moved to `disk` and close them; the actor is killed next."""
        if not self._fenced:
            raise RuntimeError("a shard retires only once fenced")
        self.close_books()
        mark_moved(self._path, disk)
        shutil.rmtree(self._outgoing, ignore_errors=True)
        self._store.close()
        log.info("wallet shard moved away", shard=self._index, disk=disk)
