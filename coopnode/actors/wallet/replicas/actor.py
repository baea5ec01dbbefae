"""One replica of a wallet shard: a Ray actor that hosts the replication protocol.

    fronts ──batch──▶ primary's mailbox ──group──▶ Request ──▶ Replica (protocol)
                                                             │ effects
            ◀──answers── acknowledged entry's results ◀──────┤ Send ──▶ peers (sockets)
                                                             │ Write ──▶ log (writer thread)
                                                             │ Apply ──▶ books (WalletStore)

The primary gathers the batches its mailbox holds into one log entry (a group commit, as
a shard of one does), at most `prepares_in_flight_max` entries in flight; each entry is
acknowledged once a majority of the replicas hold it durable, then applied to the books,
and its results answer the batches it carried. The fronts send batches only to the
primary: a replica that is not the primary of a normal view closes their links, and the
fronts look the primary up again (`front_endpoint` on every replica). A primary that
loses its view fails the batches it has not answered with a broken link; the fronts send
them again, under the same idempotency keys, to the new primary, which answers each from
the books (booked once, or not at all).

Reads (a wallet, a history page, a recall) are answered by the primary from its books
without a log entry: they change nothing.

Starting: a replica whose log says it was formatted recovers (the protocol's recovery:
it may have lost unflushed writes and forgotten its view). One that holds nothing waits:
if a peer has been formatted, the shard exists and this replica lost its disk, so it
recovers with an empty log and takes a peer's copy of the books; a new shard's replicas
are formatted together by the node (`format`), once none of them holds anything.

Long, and kept whole: the protocol's host, the fronts' batches, the books' installs and
the accounts office's reads all act on one replica's state from one event loop, and the
rules between them (who may answer, when a primary steps down) are read together here.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import ssl
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import lmdb
import msgspec
import ray

from coopnode.actors.kernel.link_tls import (
    files_from_ray_environment,
    link_client_context,
    link_server_context,
)
from coopnode.actors.kernel.ray_calls import RAY_NAMESPACE
from coopnode.actors.wallet import books as shard_books
from coopnode.actors.wallet.chain import SealRecord, read_journal_key
from coopnode.actors.wallet.link import BatchReply, serve_link
from coopnode.actors.wallet.messages import (
    AuditReport,
    ClosingReply,
    ReplicaRole,
    ShardClosing,
    ShardDay,
)
from coopnode.actors.wallet.move import (
    DATA_FILE,
    CopyInfo,
    copy_environment,
    digest_file,
    read_chunk,
)
from coopnode.actors.wallet.replicas.books import (
    BooksAt,
    ClosingPayload,
    OpsPayload,
    ReplicaBooks,
    SealPayload,
    encode_payload,
)
from coopnode.actors.wallet.replicas.faults import FlushStalls
from coopnode.actors.wallet.replicas.log import EntryWrite, ReplicaLog, SnapshotWrite, Write
from coopnode.actors.wallet.replicas.peers import Peers
from coopnode.actors.wallet.shard import (
    ShardHealth,
    batch_decoder,
    batch_encoder,
    link_addresses,
    operation_decoder,
    take_group,
)
from coopnode.actors.wallet.store import WalletStore
from coopnode.domain.books import DaySums
from coopnode.domain.errors import InvariantViolation, StoreCorrupt
from coopnode.domain.messages import (
    OPERATION_FAILED,
    GetHistory,
    GetWallet,
    Operation,
    Recall,
    Result,
    decline,
)
from coopnode.domain.money import Reason
from coopnode.logs import configure_logging, get_logger
from coopnode.replication.bounds import ReplicationBounds
from coopnode.replication.effects import Checkpoint, Effect, Install
from coopnode.replication.errors import ReplicationError
from coopnode.replication.host import ReplicaHost
from coopnode.replication.messages import (
    Entry,
    Message,
    Reply,
    Request,
    Snapshot,
    decode_entry,
    make_snapshot,
)
from coopnode.replication.replica import Replica, Status
from coopnode.settings import ReplicationSettings, Settings

log = get_logger(__name__)

_READS = (GetWallet, GetHistory, Recall)
# How often a replica that holds nothing asks its peers whether the shard exists.
_FORMAT_QUESTION_INTERVAL_S = 0.5


def replica_name(shard: int, replica: int) -> str:
    return f"wallet-shard-{shard}-replica-{replica}"


def replica_path(settings: Settings, shard: int, replica: int) -> Path:
    return settings.data_path.resolve() / "wallet" / f"shard-{shard:03d}" / f"replica-{replica}"


def replication_bounds(replication: ReplicationSettings) -> ReplicationBounds:
    """The protocol's bounds in ticks, from the settings' milliseconds."""
    return ReplicationBounds(
        replica_count=replication.replica_count,
        primary_silence_timeout_ticks=replication.ticks(replication.primary_silence_ms),
        heartbeat_interval_ticks=replication.ticks(replication.heartbeat_ms),
        view_change_timeout_ticks=replication.ticks(replication.view_change_ms),
        recovery_timeout_ticks=replication.ticks(replication.recovery_ms),
        resend_interval_ticks=replication.ticks(replication.resend_ms),
        pipeline_ops_max=replication.pipeline_ops_max,
        repair_entries_per_message_max=replication.repair_entries_per_message_max,
        checkpoint_interval_ops=replication.checkpoint_interval_ops,
        log_ops_max=replication.log_ops_max,
    )


def _node_id() -> str:
    node_id: str = ray.get_runtime_context().get_node_id()
    return node_id


class _WallClock:
    def realtime_ms(self) -> int:
        return time.time_ns() // 1_000_000


class _Waiting:
    """A front's batch: its operations (encoded, and decoded), and its answers so far."""

    __slots__ = ("answers", "future", "ops", "raws")

    def __init__(
        self,
        raws: list[msgspec.Raw],
        ops: list[Operation],
        answers: list[Result | None],
        future: asyncio.Future[BatchReply],
    ) -> None:
        self.raws = raws
        self.ops = ops
        self.answers = answers
        self.future = future

    def answer(self, results: list[Result], commit_ops: int, commit_s: float) -> None:
        if self.future.done():
            return
        given = iter(results)
        answers = [next(given) if answer is None else answer for answer in self.answers]
        self.future.set_result(
            BatchReply(results=answers, commit_ops=commit_ops, commit_s=commit_s)
        )


class _Group(msgspec.Struct):
    """A log entry's batches, waiting for its acknowledgement (or, for a closed day's
    entry, the closing's caller)."""

    batches: list[_Waiting]
    started_s: float
    # A closing's or a seal's caller, waiting for what every replica keeps.
    closing: asyncio.Future[ClosingReply | SealRecord] | None = None


class _ShardHost(ReplicaHost):
    """The protocol's host, with the books installed from a peer's copy asynchronously."""

    def __init__(self, owner: ReplicaShard, replica: Replica) -> None:
        super().__init__(replica, owner, owner.replica_log, owner.books, owner)
        self._owner = owner

    def _carry_out(self, effects: list[Effect]) -> None:  # type: ignore[override]
        for effect in effects:
            match effect:
                case Install(snapshot=snapshot):
                    self._owner.install(snapshot)
                case Checkpoint(entry=entry, sessions=sessions):
                    self._owner.checkpoint(entry, sessions)
                case _:
                    super()._carry_out([effect])


class ReplicaShard:
    """One replica of wallet shard `shard_index`. Undecorated, so that Ray pickles it by
    reference; `kernel.ray_calls.named_actor` makes the Ray actor of it."""

    def __init__(
        self, shard_index: int, replica_index: int, settings_json: bytes, link_token: str
    ) -> None:
        settings = msgspec.json.decode(settings_json, type=Settings)
        configure_logging(settings.log)
        self._settings = settings
        self._shard = shard_index
        self._index = replica_index
        self._link_token = link_token
        self._wallet = settings.wallet
        self._replication = settings.replication
        self._bounds = replication_bounds(settings.replication)
        self._path = replica_path(settings, shard_index, replica_index)
        self.books = ReplicaBooks(self._open_store(), shard_index, replica_index)
        self.replica_log = ReplicaLog(
            self._path / "log",
            map_size_bytes=settings.wallet.lmdb_map_size_mib * 1024 * 1024,
            fsync=settings.wallet.fsync,
            lock_wait_s=settings.wallet.lock_wait_s,
            stalls=FlushStalls(settings.replication.storage_fault, replica_index, shard_index),
        )
        # Checkpoints flush the books here, apart from the log's writer: a flush of many
        # pages must not hold back the log's flushes, which every commit waits for.
        self._checkpoints = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoints")
        self._host: _ShardHost | None = None
        self._started: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._peers_endpoint = ""
        self._link_endpoint = ""
        self._link_server: asyncio.Server | None = None
        self._link_writers: set[asyncio.StreamWriter] = set()
        self._link_tls: ssl.SSLContext | None = None
        self._peer_actors: dict[int, Any] = {}
        # Requests of this incarnation: a fresh client id, keys counting up.
        self._client_id = random.SystemRandom().getrandbits(62)
        self._next_key = 0
        self._mailbox: deque[_Waiting] = deque()
        self._pending_ops = 0
        self._in_flight: dict[int, _Group] = {}
        self._serving = False
        self._corrupt_found = 0
        # Set while this replica's disk is stuck (`_flush_stuck`): it takes no part.
        self._silent = False
        self._long_reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replica-reads")
        self._books_reader = shard_books.ReaderProcess(settings.wallet, shard_index)
        log.info(
            "wallet replica opened",
            shard=shard_index,
            replica=replica_index,
            books_op=self.books.store.replica_op,
        )

    def _open_store(self) -> WalletStore:
        # The books are not flushed per commit: the log (a quorum of logs) is durable, and
        # the books are flushed before each checkpoint (`_sync_books`).
        return WalletStore(
            self._path / "books",
            shard_index=self._shard,
            shard_count=self._wallet.shard_count,
            coops=self._settings.coops,
            map_size_bytes=self._wallet.lmdb_map_size_mib * 1024 * 1024,
            fsync=False,
            lock_wait_s=self._wallet.lock_wait_s,
        )

    def checkpoint(self, entry: Entry, sessions: list[tuple[int, int, int]]) -> None:
        """The books have applied `entry`: flush them (off the log's writer thread), then
        write the checkpoint, after which the log is cut there."""
        if self.books.held is not None or self.books.store.replica_op != entry.op:
            # The books are being replaced by a peer's copy: they are not at `entry` now.
            # No checkpoint this time; the log is cut at the next one.
            return
        snapshot = make_snapshot(entry, sessions, self.books.snapshot())
        self._keep(self._checkpoint(snapshot))

    async def _checkpoint(self, snapshot: Snapshot) -> None:
        env = self.books.store.env
        await asyncio.get_running_loop().run_in_executor(self._checkpoints, env.sync, True)
        self.replica_log.write_snapshot(snapshot)

    # Starting -----------------------------------------------------------------------

    async def _ensure_started(self) -> None:
        if self._started is None:
            self._started = asyncio.get_running_loop().create_task(self._start())
        await asyncio.shield(self._started)

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        server_tls = client_tls = None
        if self._settings.cluster.tls.enabled:
            files = files_from_ray_environment()
            server_tls, client_tls = link_server_context(files), link_client_context(files)
            self._link_tls = server_tls
        self._peers = Peers(
            me=self._index,
            token=self._link_token,
            frame_max_bytes=self._replication.peer_frame_max_bytes,
            lookup=self._peer_lookup,
            server_tls=server_tls,
            client_tls=client_tls,
        )
        bind, advertised = link_addresses(self._wallet.link_host)
        port = await self._peers.serve(bind, self._deliver)
        self._peers_endpoint = f"{advertised}:{port}"
        self.replica_log.start(loop, self._flushed)
        if self.replica_log.formatted:
            self._begin(self._restarted())
        self._keep(self._ticks())

    def _keep(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _restarted(self) -> Replica:
        stored, snapshot, view_record = self.replica_log.read()
        self._corrupt_found = sum(
            1
            for op, data in stored.items()
            if (entry := decode_entry(data)) is None or entry.op != op
        )
        if self._corrupt_found:
            log.error(
                "replica log entries fail their checksum; the primary's copies replace them",
                shard=self._shard,
                replica=self._index,
                entries=self._corrupt_found,
            )
        if snapshot is not None and self.books.store.replica_op < snapshot.op:
            # The books are behind their own checkpoint (lost with a host's power): the
            # protocol will find the log begins past them and take a peer's copy.
            log.warning("replica books behind their checkpoint", shard=self._shard)
            snapshot = None
        return Replica.restart(
            self._bounds,
            self._index,
            _WallClock(),
            stored,
            snapshot=snapshot,
            incarnation=random.SystemRandom().getrandbits(62),
            view_record=view_record,
        )

    def _begin(self, replica: Replica) -> None:
        self._host = _ShardHost(self, replica)
        log.info(
            "wallet replica started",
            shard=self._shard,
            replica=self._index,
            status=replica.status.value,
            op=replica.op,
        )

    async def format(self) -> bool:
        """Begin a new shard: view 0, an empty log. Refused (False) if this replica
        holds anything: only a shard none of whose replicas holds anything is formatted."""
        await self._ensure_started()
        if self.replica_log.formatted or self.books.store.replica_op:
            return False
        self.replica_log.mark_formatted(new_shard=True)
        self._begin(Replica.format(self._bounds, self._index, _WallClock()))
        return True

    async def _answer_format_question(self) -> None:
        """A replica that holds nothing recovers once a peer says the shard exists."""
        for peer in range(self._bounds.replica_count):
            if peer == self._index or self._host is not None:
                continue
            try:
                role = await self._peer_role(peer)
            except Exception as error:  # A peer not up yet: ask again later.
                log.debug("wallet replica peer not answering", peer=peer, error=repr(error))
                continue
            if role.formatted and self._host is None:
                log.warning(
                    "wallet replica holds nothing, its shard exists: recovering from peers",
                    shard=self._shard,
                    replica=self._index,
                )
                self.replica_log.mark_formatted(new_shard=False)
                self._begin(self._restarted())

    async def _ticks(self) -> None:
        tick_s = self._replication.tick_ms / 1000
        next_question = 0.0
        while True:
            await asyncio.sleep(tick_s)
            if self._host is None:
                if time.monotonic() >= next_question:
                    next_question = time.monotonic() + _FORMAT_QUESTION_INTERVAL_S
                    await self._answer_format_question()
                continue
            if self._flush_stuck():
                continue
            self._drive(self._host.tick)

    # Driving the protocol ----------------------------------------------------------------

    def _drive(self, call: Any, *args: Any) -> None:
        """Call into the protocol; then answer the fronts as its state now says. A broken
        invariant stops the process: Ray starts it again, and it recovers from the disk
        and its peers."""
        try:
            call(*args)
        except (InvariantViolation, StoreCorrupt, ReplicationError, lmdb.Error) as error:
            self._crash(error)
        self._after()

    def _deliver(self, message: Message) -> None:
        if self._host is not None and not self._silent:
            self._drive(self._host.deliver, message)

    def _flush_stuck(self) -> bool:
        """A primary whose disk has flushed nothing for `flush_stuck_ms` goes silent (no
        heartbeat, no answer to its peers), so that a backup with a working disk takes
        over; it speaks again once its disk flushes. A stall shorter than that is
        outvoted instead: the backups' flushes commit without it."""
        host = self._host
        if self._silent or host is None or not host.replica.is_primary:
            return self._silent
        if self.replica_log.stuck_s() * 1000 < self._replication.flush_stuck_ms:
            return False
        log.critical(
            "wallet replica's disk has flushed nothing; the primary steps aside",
            shard=self._shard,
            replica=self._index,
            stuck_s=round(self.replica_log.stuck_s(), 1),
        )
        self._silent = True
        self._step_down()
        self._serving = False
        return True

    def _flushed(self, group: list[Write]) -> None:
        self.replica_log.note_flushed(len(group))
        if self._silent:
            log.warning(
                "wallet replica's disk flushes again", shard=self._shard, replica=self._index
            )
            self._silent = False
        host = self._host
        if host is None:
            return
        for write in group:
            if isinstance(write, EntryWrite):
                self._drive(host.durable, write.op, write.checksum)
            elif isinstance(write, SnapshotWrite):
                self._drive(host.snapshot_durable, write.snapshot)

    def _crash(self, error: BaseException) -> NoReturn:
        log.critical(
            "wallet replica stopping on a broken invariant",
            shard=self._shard,
            replica=self._index,
            error=repr(error),
        )
        os._exit(70)

    # The protocol's interfaces: Network and Clients (Storage is the log, Application
    # the books).

    def send(self, source: int, target: int, message: Message) -> None:
        self._peers.send(target, message)

    def acknowledge(self, reply: Reply) -> None:
        if reply.client_id != self._client_id:
            return  # An entry of an earlier primary's: its fronts ask again.
        group = self._in_flight.pop(reply.request_key, None)
        results = self.books.take(reply.request_key)
        if group is None:
            return
        if results is None:
            raise InvariantViolation(f"entry {reply.op} acknowledged without its results")
        if isinstance(results, ClosingReply | SealRecord):
            if group.closing is not None and not group.closing.done():
                group.closing.set_result(results)
            return
        elapsed_s = time.perf_counter() - group.started_s
        offset = 0
        for waiting in group.batches:
            count = len(waiting.ops)
            waiting.answer(results[offset : offset + count], len(results), elapsed_s)
            offset += count

    # The fronts' batches ---------------------------------------------------------------------

    @property
    def _is_serving_primary(self) -> bool:
        host = self._host
        if host is None:
            return False
        replica = host.replica
        return replica.status is Status.NORMAL and replica.is_primary and not replica.needs_snapshot

    def _after(self) -> None:
        """After each call into the protocol: a primary that lost its view drops its
        fronts (they find the new primary); one that is serving prepares what waits."""
        serving = self._is_serving_primary and not self._silent
        if self._serving and not serving:
            self._step_down()
        self._serving = serving
        if serving:
            self._pump()

    def _step_down(self) -> None:
        log.warning(
            "wallet replica is no longer the primary", shard=self._shard, replica=self._index
        )
        lost = ConnectionResetError(f"wallet shard {self._shard}: its primary changed")
        waiting = [w for group in self._in_flight.values() for w in group.batches]
        for batch in [*waiting, *self._mailbox]:
            if not batch.future.done():
                batch.future.set_exception(lost)
        for group in self._in_flight.values():
            if group.closing is not None and not group.closing.done():
                group.closing.set_exception(lost)
        self._in_flight.clear()
        self._mailbox.clear()
        self._pending_ops = 0
        self._close_links()

    def _close_links(self) -> None:
        if self._link_server is not None:
            self._link_server.close()
            self._link_server = None
            self._link_endpoint = ""
        for writer in list(self._link_writers):
            writer.close()

    def _pump(self) -> None:
        """Prepare the mailbox's batches as log entries, a group commit each, while the
        pipeline has room."""
        host = self._host
        if host is None:
            return
        in_flight_max = self._replication.prepares_in_flight_max
        while self._mailbox and len(self._in_flight) < in_flight_max:
            batches = self._take_group()
            self._next_key += 1
            key = self._next_key
            raws = [raw for waiting in batches for raw in waiting.raws]
            request = Request(
                client_id=self._client_id,
                request_key=key,
                payload=encode_payload(OpsPayload(raws)),
            )
            self._in_flight[key] = _Group(batches=batches, started_s=time.perf_counter())
            self.books.want(key)
            try:
                host.deliver(request)
            except (InvariantViolation, StoreCorrupt, ReplicationError, lmdb.Error) as error:
                self._crash(error)
            if (self._client_id, key) not in host.replica.request_ops and key in self._in_flight:
                # Not prepared: the pipeline or the log is full. The batches wait.
                del self._in_flight[key]
                self.books.take(key)
                self._mailbox.extendleft(reversed(batches))
                self._pending_ops += sum(len(waiting.ops) for waiting in batches)
                return

    def _take_group(self) -> list[_Waiting]:
        taken = take_group(self._mailbox, self._wallet.commit_batch_max_ops)
        self._pending_ops -= sum(len(waiting.ops) for waiting in taken)
        return taken

    async def _submit(self, raws: list[msgspec.Raw]) -> BatchReply:
        await self._ensure_started()
        if not self._is_serving_primary or self._silent:
            self._close_links()
            raise ConnectionResetError(f"wallet shard {self._shard}: not its primary")
        if self._pending_ops + len(raws) > self._wallet.mailbox_max_ops:
            busy = decline(Reason.OVERLOADED, "the wallet shard is busy; try again shortly")
            return BatchReply(results=[busy] * len(raws), commit_ops=0, commit_s=0.0)
        kept, ops, answers = self._decode(raws)
        future: asyncio.Future[BatchReply] = asyncio.get_running_loop().create_future()
        waiting = _Waiting(kept, ops, answers, future)
        if not ops:
            waiting.answer([], 0, 0.0)
        elif all(isinstance(op, _READS) for op in ops):
            # Reads change nothing: the primary answers them from its books.
            waiting.answer(self.books.store.apply_batch(ops), len(ops), 0.0)
        else:
            self._mailbox.append(waiting)
            self._pending_ops += len(ops)
            self._pump()
        return await future

    async def apply(self, batch: bytes) -> bytes:
        """A batch sent as a Ray call (the identity actor's way to the wallet)."""
        return batch_encoder.encode(await self._submit(batch_decoder.decode(batch)))

    def _decode(
        self, raws: list[msgspec.Raw]
    ) -> tuple[list[msgspec.Raw], list[Operation], list[Result | None]]:
        """Decode each operation alone; one that does not decode is refused alone and
        never reaches the log."""
        kept: list[msgspec.Raw] = []
        ops: list[Operation] = []
        answers: list[Result | None] = []
        for raw in raws:
            try:
                ops.append(operation_decoder.decode(raw))
            except msgspec.DecodeError as error:
                log.critical("wallet operation refused: it does not decode", error=str(error))
                answers.append(OPERATION_FAILED)
            else:
                kept.append(raw)
                answers.append(None)
        return kept, ops, answers

    async def front_endpoint(self) -> bytes:
        """This replica's role, with the link's address if it is the primary now."""
        await self._ensure_started()
        if self._is_serving_primary and not self._silent and not self._link_endpoint:
            bind, advertised = link_addresses(self._wallet.link_host)
            self._link_server = await asyncio.start_server(self._serve_link, bind, 0)
            port = self._link_server.sockets[0].getsockname()[1]
            self._link_endpoint = f"{advertised}:{port}"
        return msgspec.msgpack.encode(self._role())

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

    def _role(self) -> ReplicaRole:
        host = self._host
        if host is None:
            return ReplicaRole(
                shard=self._shard,
                replica=self._index,
                pid=os.getpid(),
                node_id=_node_id(),
                formatted=self.replica_log.formatted,
                status="unformatted",
                view=0,
                primary=0,
                op=0,
                commit=0,
                applied=self.books.store.replica_op,
                endpoint="",
            )
        replica = host.replica
        return ReplicaRole(
            shard=self._shard,
            replica=self._index,
            pid=os.getpid(),
            node_id=_node_id(),
            formatted=True,
            status=replica.status.value,
            view=replica.view,
            primary=replica.primary_of(replica.view),
            op=replica.op,
            commit=replica.commit_max,
            applied=self.books.store.replica_op,
            endpoint=self._link_endpoint if self._is_serving_primary and not self._silent else "",
            silent=self._silent,
            corrupt_entries_found=self._corrupt_found,
        )

    async def role(self) -> bytes:
        await self._ensure_started()
        return msgspec.msgpack.encode(self._role())

    async def peers_endpoint(self) -> str:
        await self._ensure_started()
        return self._peers_endpoint

    async def _peer_actor(self, peer: int) -> Any:
        actor = self._peer_actors.get(peer)
        if actor is None:
            actor = await asyncio.to_thread(
                ray.get_actor, replica_name(self._shard, peer), namespace=RAY_NAMESPACE
            )
            self._peer_actors[peer] = actor
        return actor

    async def _peer_lookup(self, peer: int) -> str:
        actor = await self._peer_actor(peer)
        try:
            async with asyncio.timeout(5):
                endpoint: str = await actor.peers_endpoint.remote()
        except Exception:
            self._peer_actors.pop(peer, None)  # Restarted or moved: look it up again.
            raise
        return endpoint

    async def _peer_role(self, peer: int) -> ReplicaRole:
        actor = await self._peer_actor(peer)
        try:
            async with asyncio.timeout(5):
                raw = await actor.role.remote()
        except Exception:
            self._peer_actors.pop(peer, None)
            raise
        return msgspec.msgpack.decode(raw, type=ReplicaRole)

    # A peer's copy of the books (a replica that lost its disk, or fell behind a cut log)

    def install(self, snapshot: Snapshot) -> None:
        """Take the books from the peer that sent `snapshot`; committed entries wait
        meanwhile, and the snapshot is written once the copy is in place."""
        self.books.held = []
        self._keep(self._install(snapshot))

    async def _install(self, snapshot: Snapshot) -> None:
        state = msgspec.msgpack.decode(snapshot.state, type=BooksAt)
        try:
            peer = await self._peer_actor(state.replica)
            info = msgspec.msgpack.decode(await peer.copy_books.remote(), type=CopyInfo)
            incoming = self._path / "books.incoming"
            shutil.rmtree(incoming, ignore_errors=True)
            incoming.mkdir(parents=True)
            with (incoming / DATA_FILE).open("wb") as file:
                for index in range(len(info.chunk_sha256)):
                    file.write(await peer.read_books.remote(index))
                file.flush()
                os.fsync(file.fileno())
            if digest_file(incoming / DATA_FILE).sha256 != info.sha256:
                raise ConnectionError("the peer's copy of the books arrived damaged")
        except Exception as error:  # The protocol asks a peer again (its resend).
            log.error("wallet replica could not copy a peer's books", error=repr(error))
            self.books.release_held()
            return
        self._books_reader.close()  # Its files are about to be replaced.
        self.books.store.close()
        books = self._path / "books"
        shutil.rmtree(books, ignore_errors=True)
        incoming.rename(books)
        self.books.store = self._open_store()
        if self.books.store.replica_op < snapshot.op:
            self._crash(InvariantViolation("a peer's copy of the books is behind its checkpoint"))
        log.info(
            "wallet replica installed a peer's books",
            shard=self._shard,
            replica=self._index,
            peer=state.replica,
            op=self.books.store.replica_op,
        )
        self._drive(self.books.release_held)
        self.replica_log.write_snapshot(snapshot)

    async def copy_books(self) -> bytes:
        """LMDB's consistent copy of the books beside them (while commits go on)."""
        info = await asyncio.get_running_loop().run_in_executor(
            self._long_reads, copy_environment, self.books.store.env, self._outgoing
        )
        return msgspec.msgpack.encode(info)

    async def read_books(self, index: int) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(
            self._long_reads, read_chunk, self._outgoing / DATA_FILE, index
        )

    @property
    def _outgoing(self) -> Path:
        return self._path / "books.outgoing"

    # What the node asks of every shard ---------------------------------------------------

    async def health(self) -> bytes:
        await self._ensure_started()
        health = ShardHealth(
            shard_index=self._shard,
            pid=os.getpid(),
            next_seq=self.books.store.next_seq,
            pending_ops=self._pending_ops,
        )
        return msgspec.msgpack.encode(health)

    async def audit(self) -> bytes:
        report: AuditReport = await asyncio.get_running_loop().run_in_executor(
            self._long_reads, self.books.store.audit
        )
        return msgspec.msgpack.encode(report)

    async def overdrafts(self, limit: int) -> bytes:
        records = await asyncio.get_running_loop().run_in_executor(
            self._long_reads, self.books.store.overdrafts, limit
        )
        return msgspec.msgpack.encode(records)

    # The accounts office's books (`actors/wallet/books.py`), as a shard of one serves them.
    # Reads come from this replica's books (a backup's are a commit or two behind the
    # primary's at most); a closing goes through the log, so every replica keeps it.

    async def _books_job(self, job: Any, *args: object) -> bytes:
        return await self._books_reader.run(self.books.store.path, job, *args)

    async def _day_sums(self, day: date) -> DaySums:
        raw = await self._books_job(shard_books.day_sums_job, day.isoformat())
        return msgspec.msgpack.decode(raw, type=DaySums)

    async def _read_closing(self, day: date) -> ShardClosing | None:
        return await asyncio.get_running_loop().run_in_executor(
            self._long_reads, shard_books.read_closing, self.books.store, day
        )

    async def books_day(self, day_iso: str) -> bytes:
        day = date.fromisoformat(day_iso)
        closing = await self._read_closing(day)
        sums = closing.sums if closing is not None else await self._day_sums(day)
        return msgspec.msgpack.encode(ShardDay(closing=closing, sums=sums))

    async def closings(self, first_iso: str, last_iso: str) -> bytes:
        found = await asyncio.get_running_loop().run_in_executor(
            self._long_reads,
            shard_books.read_closings,
            self.books.store,
            date.fromisoformat(first_iso),
            date.fromisoformat(last_iso),
        )
        return msgspec.msgpack.encode(found)

    async def purse_totals(self, end_ms: int) -> bytes:
        return await self._books_job(shard_books.purse_totals_job, end_ms)

    async def clearing_credits(self, start_ms: int, end_ms: int) -> bytes:
        return await self._books_job(shard_books.credits_job, start_ms, end_ms)

    async def close_day(self, day_iso: str, closed_by: str) -> bytes:
        """Close the shard's part of a day, on the primary, through the log."""
        await self._ensure_started()
        if not self._is_serving_primary or self._silent:
            raise ConnectionResetError(f"wallet shard {self._shard}: not its primary")
        reply = await shard_books.close_day(
            self.books.store,
            self._shard,
            date.fromisoformat(day_iso),
            closed_by,
            clock_step_max_ms=self._wallet.books_clock_step_max_ms,
            day_sums=self._day_sums,
            read_closing=self._read_closing,
            keep=self._keep_through_log,
        )
        return msgspec.msgpack.encode(reply)

    async def _keep_through_log(self, closing: ShardClosing) -> tuple[ShardClosing, bool]:
        reply = await self._through_log(ClosingPayload(closing))
        if not isinstance(reply, ClosingReply) or reply.closing is None:
            raise InvariantViolation("a kept closing answered without the closing")
        return reply.closing, reply.created

    async def _through_log(
        self, payload: ClosingPayload | SealPayload
    ) -> ClosingReply | SealRecord:
        """A record every replica keeps (a closed day, a day's seal): a log entry of its
        own, answered once a quorum holds it and the books kept it."""
        host = self._host
        if host is None or not self._is_serving_primary or self._silent:
            raise ConnectionResetError(f"wallet shard {self._shard}: not its primary")
        self._next_key += 1
        key = self._next_key
        future: asyncio.Future[ClosingReply | SealRecord]
        future = asyncio.get_running_loop().create_future()
        self._in_flight[key] = _Group(batches=[], started_s=time.perf_counter(), closing=future)
        self.books.want(key)
        encoded = encode_payload(payload)
        request = Request(client_id=self._client_id, request_key=key, payload=encoded)
        self._drive(host.deliver, request)
        if (self._client_id, key) not in host.replica.request_ops:
            self._in_flight.pop(key, None)
            self.books.take(key)
            raise ConnectionResetError(f"wallet shard {self._shard} is busy; ask again")
        return await future

    # The journal's sealed days (`chain.py`), as a shard of one keeps them; a seal is
    # signed by the primary and kept by every replica through the log.

    async def seal_day(self, day: str) -> bytes:
        await self._ensure_started()
        if not self._is_serving_primary or self._silent:
            raise ConnectionResetError(f"wallet shard {self._shard}: not its primary")
        key = read_journal_key(self._settings.journal_key_path)
        grace_ms = self._wallet.books_clock_step_max_ms
        seal, new = self.books.store.seal_of(day, key, grace_ms=grace_ms)
        if new:
            kept = await self._through_log(SealPayload(seal))
            if not isinstance(kept, SealRecord):
                raise InvariantViolation("a kept seal answered with something else")
            seal = kept
        return msgspec.msgpack.encode(seal)

    async def seals(self) -> bytes:
        return msgspec.msgpack.encode(self.books.store.seals())

    async def verify_chain(self) -> bytes:
        report = await asyncio.get_running_loop().run_in_executor(
            self._long_reads, self.books.store.verify_chain
        )
        return msgspec.msgpack.encode(report)

    async def flush_stalls(self) -> int:
        """How many of this replica's flushes the storage fault stalled."""
        return self.replica_log.stalls
