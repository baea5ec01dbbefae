"""The front's way to the wallet shards: micro-batches, bounded queues, safe retries.

A Ray call costs about a millisecond and one caller reaches only a few thousand calls a
second, so operations for a shard are gathered into micro-batches: a batch leaves when it
holds `front_batch_max_ops` operations or `front_batch_window_us` after its first one,
whichever comes first, with at most `front_batches_in_flight_max` batches in flight per
shard. Under load, operations queue while batches are in flight and leave together.

A batch whose shard died is sent again with the same operations. Every money operation
carries an idempotency key, so a batch that was committed before the shard died is
answered from the stored results and never applied twice.

Each operation is encoded when it is submitted, on its own: one that cannot be encoded
(an integer past MessagePack's range, say, which the HTTP layer's bounds should have
refused) is answered `operation_failed` at once, with an alert, and never joins a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from typing import Any

import msgspec
import ray
from ray.exceptions import ActorUnavailableError, RayActorError, RayTaskError

from coopnode.actors.kernel.ray_calls import RAY_NAMESPACE
from coopnode.actors.wallet.link import BatchReply, EndpointLookup, ShardLink
from coopnode.actors.wallet.messages import (
    AuditReport,
    ChainReport,
    ReplicaRole,
    SealRecord,
    SealRefused,
)
from coopnode.actors.wallet.replicas.actor import replica_name
from coopnode.actors.wallet.shard import (
    ShardHealth,
    batch_encoder,
    reply_decoder,
    shard_name,
)
from coopnode.domain.errors import InvariantViolation
from coopnode.domain.messages import (
    OPERATION_FAILED,
    Declined,
    GetHistory,
    GetWallet,
    Operation,
    OverdraftRecord,
    Recall,
    Result,
    decline,
)
from coopnode.domain.money import Reason
from coopnode.domain.sharding import shard_of
from coopnode.logs import get_logger
from coopnode.metrics import Metrics
from coopnode.settings import Settings, WalletSettings

log = get_logger(__name__)


def _retryable(error: BaseException) -> bool:
    # ConnectionError and OSError: the shard's link broke or its port is gone (restarted).
    if isinstance(error, (RayActorError, ActorUnavailableError, TimeoutError, OSError)):
        return True
    # A shard that found broken books exits on purpose; its callers may see the cause. A
    # replica that is not (or no longer) the primary refuses with a ConnectionError.
    return isinstance(error, RayTaskError) and isinstance(
        error.cause, (InvariantViolation, ConnectionError)
    )


# What a caller hears when its batch got no answer: a read changed nothing; a change may
# have been committed before the shard (or the link) failed.
_READ_FAILED = decline(Reason.UNAVAILABLE, "the wallet shard is unavailable; try again")
_CHANGE_UNKNOWN = decline(
    Reason.OUTCOME_UNKNOWN,
    "the wallet shard did not confirm this: it may have been booked or not; "
    "send it again with the same key to learn which (it is never booked twice)",
)


class _Pending:
    __slots__ = ("future", "raw", "unanswered")

    def __init__(self, raw: msgspec.Raw, op: Operation, future: asyncio.Future[Result]) -> None:
        self.raw = raw  # The operation, encoded.
        self.unanswered = (
            _READ_FAILED if isinstance(op, GetWallet | GetHistory | Recall) else _CHANGE_UNKNOWN
        )
        self.future = future


class ReplicaSet:
    """A replicated shard's replica actors, in replica order (issue 16). Batches go to
    whichever is the primary now; the front asks them all which that is."""

    def __init__(self, replicas: list[Any], primary_lookup_s: float) -> None:
        self.replicas = replicas
        self.primary_lookup_s = primary_lookup_s


# How long one replica has to say whether it is the primary, before the front asks the
# others without it (a replica on a lost host never answers).
_ROLE_ANSWER_S = 1.0
# The pause between two rounds of questions while no replica is the primary (a view
# change in progress takes a few hundred milliseconds).
_PRIMARY_LOOKUP_PAUSE_S = 0.05


class ShardBatcher:
    """Gathers the operations for one shard into micro-batches."""

    def __init__(
        self,
        index: int,
        actor: Any,
        settings: WalletSettings,
        metrics: Metrics,
        link_token: str | None = None,
        endpoint: EndpointLookup | None = None,
        link_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.index = index
        self.replicas = actor if isinstance(actor, ReplicaSet) else None
        # The actor health, audit and overdraft calls go to: a replicated shard's primary.
        self.actor = actor.replicas[0] if isinstance(actor, ReplicaSet) else actor
        # Batches sent as Ray calls to a replicated shard go to `actor` once it is known
        # to be the primary.
        self._primary_known = False
        self._settings = settings
        self._metrics = metrics
        # With a token and the "link" transport, batches go over the shard's socket, at
        # the address the actor gives (or `endpoint`, a shard served without Ray), with
        # mutual TLS when `link_tls` is given (cluster TLS).
        self._link = (
            ShardLink(
                endpoint or self._endpoint, link_token, settings.link_frame_max_bytes, link_tls
            )
            if link_token is not None and settings.transport == "link"
            else None
        )
        self._queue: deque[_Pending] = deque()
        self._in_flight = 0
        self._timer: asyncio.Handle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, op: Operation) -> asyncio.Future[Result]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        if len(self._queue) >= self._settings.front_queue_max_ops:
            future.set_result(decline(Reason.OVERLOADED, "the node is busy; try again shortly"))
            return future
        try:
            raw = msgspec.Raw(batch_encoder.encode(op))
        except Exception as error:  # Whatever it is, it is this operation's alone.
            log.critical(
                "wallet operation refused: it cannot be encoded",
                shard=self.index,
                kind=str(op.__struct_config__.tag),
                error=repr(error),
            )
            future.set_result(OPERATION_FAILED)
            return future
        self._queue.append(_Pending(raw, op, future))
        if len(self._queue) >= self._settings.front_batch_max_ops:
            self._flush()
        elif self._timer is None:
            window_us = self._settings.front_batch_window_us
            # A window of zero gathers what arrives in the same turn of the event loop.
            self._timer = (
                loop.call_soon(self._flush)
                if window_us == 0
                else loop.call_later(window_us / 1_000_000, self._flush)
            )
        return future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._queue and self._in_flight < self._settings.front_batches_in_flight_max:
            size = min(len(self._queue), self._settings.front_batch_max_ops)
            batch = [self._queue.popleft() for _ in range(size)]
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Pending]) -> None:
        try:
            reply = await self._call([pending.raw for pending in batch])
        except Exception as error:  # Every caller must hear back, whatever happened.
            log.error("wallet shard unavailable", shard=self.index, error=repr(error))
            results: list[Result] = [pending.unanswered for pending in batch]
        else:
            results = reply.results
            self._metrics.commit_ops.observe(reply.commit_ops)
            self._metrics.commit_seconds.observe(reply.commit_s)
        finally:
            self._in_flight -= 1
        self._metrics.front_batch_ops.observe(len(batch))
        for pending, result in zip(batch, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)
        if self._queue:
            self._flush()

    async def _call(self, ops: list[msgspec.Raw]) -> BatchReply:
        """One batch to the shard, sent again (same keys) while Ray restarts a dead shard."""
        backoff_s = self._settings.retry_backoff_ms / 1000
        for attempt in range(self._settings.call_retry_max + 1):
            started = time.perf_counter()
            try:
                # A deadline on this task, not wait_for's task of its own per batch.
                async with asyncio.timeout(self._settings.call_timeout_s):
                    reply = await self._send_once(ops)
            except Exception as error:
                if not _retryable(error) or attempt == self._settings.call_retry_max:
                    raise
                if isinstance(error, RayActorError):
                    await self.refind()
                self._metrics.call_retries.labels(shard=str(self.index)).inc()
                log.warning(
                    "wallet shard call failed; retrying", shard=self.index, error=repr(error)
                )
                await asyncio.sleep(backoff_s)
                backoff_s *= 2
                continue
            self._metrics.call_seconds.observe(time.perf_counter() - started)
            if len(reply.results) != len(ops):
                raise InvariantViolation(
                    "a shard answered a batch with the wrong number of results"
                )
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send_once(self, ops: list[msgspec.Raw]) -> BatchReply:
        if self._link is not None:
            return await self._link.call(ops)
        if self.replicas is not None and not self._primary_known:
            await self._primary_endpoint(self.replicas)
            self._primary_known = True
        try:
            raw = await asyncio.wrap_future(
                self.actor.apply.remote(batch_encoder.encode(ops)).future()
            )
        except Exception:
            self._primary_known = False  # Ask the replicas again before the next try.
            raise
        reply: BatchReply = reply_decoder.decode(raw)
        return reply

    async def primary_actor(self) -> Any:
        """The shard's actor; of a replicated shard, the replica that is its primary now."""
        if self.replicas is not None:
            await self._primary_endpoint(self.replicas)
        return self.actor

    async def refind(self) -> None:
        """Find the shard again by name: one moved to another disk is a new actor, and the
        handle to the old one stays dead (Ray restarts a crashed one behind the handle)."""
        if self.replicas is not None:
            return  # Replicas stay where they are; the primary is looked up per link.
        # Not there (yet): the next retry looks again.
        with contextlib.suppress(ValueError):
            self.actor = await asyncio.to_thread(
                ray.get_actor, shard_name(self.index), namespace=RAY_NAMESPACE
            )

    async def _endpoint(self) -> str:
        if self.replicas is not None:
            return await self._primary_endpoint(self.replicas)
        endpoint: str = await asyncio.wrap_future(self.actor.data_endpoint.remote().future())
        return endpoint

    async def _primary_endpoint(self, replicas: ReplicaSet) -> str:
        """The link of the replica that is the primary of the latest view, asked of every
        replica at once; while none is (a failover), asked again until the bound."""
        deadline = time.monotonic() + replicas.primary_lookup_s
        while True:
            roles = await asyncio.gather(
                *(_role_of(actor) for actor in replicas.replicas), return_exceptions=True
            )
            serving = [
                (role.view, position)
                for position, role in enumerate(roles)
                if isinstance(role, ReplicaRole) and role.endpoint
            ]
            if serving:
                _view, position = max(serving)
                self.actor = replicas.replicas[position]
                role = roles[position]
                if isinstance(role, ReplicaRole):
                    return role.endpoint
            if time.monotonic() > deadline:
                raise ConnectionError(
                    f"wallet shard {self.index}: no replica is its primary "
                    f"after {replicas.primary_lookup_s:.0f} s"
                )
            await asyncio.sleep(_PRIMARY_LOOKUP_PAUSE_S)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._queue:
            self._flush()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._link is not None:
            await self._link.close()


async def _role_of(actor: Any, *, open_link: bool = True) -> ReplicaRole:
    """A replica's role; `open_link` has the primary open its link for batches."""
    method = actor.front_endpoint if open_link else actor.role
    async with asyncio.timeout(_ROLE_ANSWER_S):
        raw = await asyncio.wrap_future(method.remote().future())
    return msgspec.msgpack.decode(raw, type=ReplicaRole)


class WalletClient:
    """Routes each operation to the shard that owns its member."""

    def __init__(
        self,
        actors: list[Any],
        settings: WalletSettings,
        metrics: Metrics,
        link_token: str | None = None,
        link_tls: ssl.SSLContext | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._counters: dict[tuple[str, bool], Any] = {}
        self.batchers = [
            ShardBatcher(index, actor, settings, metrics, link_token, link_tls=link_tls)
            for index, actor in enumerate(actors)
        ]

    @classmethod
    def connect(cls, settings: Settings, metrics: Metrics) -> WalletClient:
        """Find the named shard actors (or replicas) of a running node in the current Ray
        cluster; batches go to them as Ray calls."""
        replication = settings.replication
        actors: list[Any] = []
        for index in range(settings.wallet.shard_count):
            if replication.replica_count == 1:
                actors.append(ray.get_actor(shard_name(index), namespace=RAY_NAMESPACE))
                continue
            replicas = [
                ray.get_actor(replica_name(index, replica), namespace=RAY_NAMESPACE)
                for replica in range(replication.replica_count)
            ]
            actors.append(ReplicaSet(replicas, replication.primary_lookup_s))
        return cls(actors, settings.wallet, metrics)

    async def submit(self, op: Operation) -> Result:
        batcher = self.batchers[shard_of(op.member_no, len(self.batchers))]
        result = await batcher.submit(op)
        declined = isinstance(result, Declined)
        kind = str(op.__struct_config__.tag)
        self._counter(kind, declined).inc()
        if isinstance(result, Declined):
            self._metrics.declines.labels(reason=result.reason.value).inc()
            if result.reason is Reason.OPERATION_FAILED:
                shard = str(batcher.index)
                self._metrics.operations_failed.labels(shard=shard, kind=kind).inc()
        return result

    def _counter(self, kind: str, declined: bool) -> Any:
        """The operations counter's child for a kind and outcome; looked up once, kept."""
        child = self._counters.get((kind, declined))
        if child is None:
            outcome = "declined" if declined else "ok"
            child = self._counters[(kind, declined)] = self._metrics.operations.labels(
                kind=kind, outcome=outcome
            )
        return child

    async def health(self, timeout_s: float = 2.0) -> list[ShardHealth | None]:
        """Ask every shard how it is; None for a shard that did not answer in time."""

        async def ask(batcher: ShardBatcher) -> ShardHealth | None:
            try:
                raw = await asyncio.wait_for(
                    asyncio.wrap_future(batcher.actor.health.remote().future()), timeout_s
                )
            except RayActorError:
                await batcher.refind()
                return None
            except Exception:
                return None
            return msgspec.msgpack.decode(raw, type=ShardHealth)

        answers = await asyncio.gather(*(ask(batcher) for batcher in self.batchers))
        self._metrics.shards_ready.set(sum(answer is not None for answer in answers))
        return list(answers)

    async def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            answers = await self.health()
            if all(answer is not None for answer in answers):
                return
            if time.monotonic() > deadline:
                missing = [i for i, answer in enumerate(answers) if answer is None]
                raise TimeoutError(f"wallet shards {missing} did not start in {timeout_s:.0f} s")
            await asyncio.sleep(0.2)

    async def replica_roles(self) -> list[list[ReplicaRole | None]]:
        """Per shard, each replica's role (None for one that did not answer); an empty
        list for a shard of one replica."""

        async def one(batcher: ShardBatcher) -> list[ReplicaRole | None]:
            replicas = batcher.replicas
            if replicas is None:
                return []
            roles = await asyncio.gather(
                *(_role_of(actor, open_link=False) for actor in replicas.replicas),
                return_exceptions=True,
            )
            return [role if isinstance(role, ReplicaRole) else None for role in roles]

        return list(await asyncio.gather(*(one(batcher) for batcher in self.batchers)))

    async def audit(self) -> list[AuditReport]:
        async def one(batcher: ShardBatcher) -> AuditReport:
            raw = await asyncio.wrap_future(batcher.actor.audit.remote().future())
            return msgspec.msgpack.decode(raw, type=AuditReport)

        return list(await asyncio.gather(*(one(batcher) for batcher in self.batchers)))

    async def overdrafts(self, limit_per_shard: int) -> list[OverdraftRecord]:
        """Every shard's open overdrafts, at most `limit_per_shard` from each."""

        async def one(batcher: ShardBatcher) -> list[OverdraftRecord]:
            raw = await asyncio.wrap_future(
                batcher.actor.overdrafts.remote(limit_per_shard).future()
            )
            return msgspec.msgpack.decode(raw, type=list[OverdraftRecord])

        shards = await asyncio.gather(*(one(batcher) for batcher in self.batchers))
        return [record for shard in shards for record in shard]

    async def seal_day(self, day: str) -> list[SealRecord]:
        """Seal a finished day (ISO date, JST) in every shard; sealing again answers the
        first seals. Raises SealRefused when the day is not over or a shard has no key."""
        answers = await self._journal_calls("seal_day", day)
        return [msgspec.msgpack.decode(raw, type=SealRecord) for raw in answers]

    async def seals(self) -> list[SealRecord]:
        """Every shard's sealed days."""
        answers = await self._journal_calls("seals")
        return [
            seal for raw in answers for seal in msgspec.msgpack.decode(raw, type=list[SealRecord])
        ]

    async def verify_chain(self) -> list[ChainReport]:
        """Every shard's check of its whole chain and its seals."""
        answers = await self._journal_calls("verify_chain")
        return [msgspec.msgpack.decode(raw, type=ChainReport) for raw in answers]

    async def _journal_calls(self, method: str, *args: Any) -> list[bytes]:
        """One journal call (`chain.py`) to every shard actor (of a replicated shard, its
        primary, which sends a seal through the log), answers in shard order."""

        async def one(batcher: ShardBatcher) -> bytes:
            actor = await batcher.primary_actor()
            call = getattr(actor, method).remote(*args)
            try:
                raw: bytes = await asyncio.wrap_future(call.future())
            except RayTaskError as error:
                if isinstance(error.cause, SealRefused):
                    raise SealRefused(str(error.cause)) from None
                raise
            return raw

        return list(await asyncio.gather(*(one(batcher) for batcher in self.batchers)))

    async def close(self) -> None:
        await asyncio.gather(*(batcher.close() for batcher in self.batchers))
