"""The wallet's data plane: batches travel from the front to a shard over one socket.

Ray places the shard actors, restarts them and answers their health and audit calls, but
a Ray actor call costs about a millisecond and a few hundred microseconds of CPU on each
side, which is most of a payment's time here (measured: a call of 3.9 ms around a group
commit of 1.5 ms at 1,000 payments/s). So each shard also listens on a socket and the
front keeps one pipelined connection per shard: a batch is one length-prefixed
MessagePack frame each way, answered out of order by batch id.

    front (ShardLink)                         shard actor (serve_link)
    ── TLS handshake (cluster TLS only) ──▶   requires the front's certificate
    ── Hello(token) ──────────────────────▶   checks the token, else hangs up
    ── BatchRequest(id, ops) ─────────────▶   joins the mailbox (group commit)
    ◀───────────────── BatchAnswer(id, reply)  after the commit is durable

Each operation travels as its own MessagePack value (`msgspec.Raw`), encoded by the front
when it is submitted and decoded by the shard one by one, so that an operation that
cannot be encoded or decoded is refused alone and never fails its batch-mates.

On one host the link stays on loopback and plain, and the token (a secret file of the
data directory) keeps other local processes off it. Between hosts (`cluster.tls`) the
link is mutual TLS under the cluster's CA (`kernel.link_tls`): the shard serves its
host's certificate and requires the front's, the front checks the shard's against the
address it dialled, and the token still follows inside, so that a certificate alone,
from a CA that signed it for something else, is not enough. A peer refused at either
step has sent no batch: nothing it sent was decoded.

The link's address comes from the actor itself (`data_endpoint`, a Ray call), so a
restarted shard is found again. A broken link fails the batches in flight with
`ConnectionError`; the front sends them again with the same idempotency keys.
"""

from __future__ import annotations

import asyncio
import hmac
import ssl
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from coopnode.domain.messages import Result
from coopnode.logs import get_logger

log = get_logger(__name__)

_HEADER = struct.Struct(">I")


class BatchReply(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    results: list[Result]
    # The group commit this batch was part of: how many operations, and how long the
    # transaction and its fsync took.
    commit_ops: int
    commit_s: float


class Hello(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="hello"):
    token: str


class BatchRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="batch"):
    batch_id: int
    ops: list[msgspec.Raw]  # Each an encoded `Operation`, decoded by the shard alone.


class BatchAnswer(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="answer"):
    batch_id: int
    reply: BatchReply


class FrameTooLarge(ConnectionError):
    """The peer announced a frame above the bound: the link is closed."""


_encoder = msgspec.msgpack.Encoder()
_hello_decoder = msgspec.msgpack.Decoder(Hello)
_request_decoder = msgspec.msgpack.Decoder(BatchRequest)
_answer_decoder = msgspec.msgpack.Decoder(BatchAnswer)


def frame(message: Any) -> bytes:
    payload = _encoder.encode(message)
    return _HEADER.pack(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader, max_bytes: int) -> bytes:
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if size > max_bytes:
        raise FrameTooLarge(f"a frame of {size} bytes is above the bound of {max_bytes}")
    return await reader.readexactly(size)


Submit = Callable[[list[msgspec.Raw]], Awaitable[BatchReply]]


async def _admit(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    token: str,
    tls: ssl.SSLContext | None,
    frame_max_bytes: int,
) -> bool:
    """The TLS handshake (requiring the peer's certificate) and the hello's token."""
    peer = writer.get_extra_info("peername")
    if tls is not None:
        try:
            await writer.start_tls(tls)
        except (ssl.SSLError, ConnectionError) as error:
            reason = getattr(error, "reason", None) or type(error).__name__
            log.warning("wallet link refused: TLS handshake failed", peer=str(peer), error=reason)
            return False
    hello = _hello_decoder.decode(await read_frame(reader, frame_max_bytes))
    if not hmac.compare_digest(hello.token.encode(), token.encode()):
        log.warning("wallet link refused: wrong token", peer=str(peer))
        return False
    return True


async def serve_link(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    token: str,
    submit: Submit,
    frame_max_bytes: int,
    tls: ssl.SSLContext | None = None,
    handshake_timeout_s: float = 10.0,
) -> None:
    """The shard's side of one link: the TLS handshake with `tls` (a server context that
    requires the peer's certificate), the hello, then batches answered as they commit.
    A peer that has not finished both within `handshake_timeout_s` is dropped."""
    answering: set[asyncio.Task[None]] = set()

    async def answer(request: BatchRequest) -> None:
        reply = await submit(request.ops)
        if not writer.is_closing():
            writer.write(frame(BatchAnswer(batch_id=request.batch_id, reply=reply)))

    try:
        async with asyncio.timeout(handshake_timeout_s):
            if not await _admit(reader, writer, token, tls, frame_max_bytes):
                return
        while True:
            request = _request_decoder.decode(await read_frame(reader, frame_max_bytes))
            task = asyncio.get_running_loop().create_task(answer(request))
            answering.add(task)
            task.add_done_callback(answering.discard)
    except TimeoutError:
        log.warning(
            "wallet link refused: no hello in time", peer=str(writer.get_extra_info("peername"))
        )
    except (asyncio.IncompleteReadError, OSError, msgspec.DecodeError):
        # OSError: ConnectionError, and ssl.SSLError from a TLS link that broke.
        pass  # The front went away or spoke nonsense: drop the link; it reconnects.
    finally:
        if answering:
            await asyncio.gather(*answering, return_exceptions=True)
        writer.close()


EndpointLookup = Callable[[], Awaitable[str]]


class ShardLink:
    """The front's pipelined connection to one shard, opened on first use and after a break."""

    def __init__(
        self,
        lookup: EndpointLookup,
        token: str,
        frame_max_bytes: int,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._lookup = lookup
        self._token = token
        # A client context (`kernel.link_tls.link_client_context`): mutual TLS, the shard
        # checked against the address the lookup gave. None: a plain loopback link.
        self._tls = tls
        self._frame_max_bytes = frame_max_bytes
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[BatchReply]] = {}
        self._next_id = 0
        self._opening = asyncio.Lock()

    async def call(self, ops: list[msgspec.Raw]) -> BatchReply:
        writer = await self._open()
        self._next_id += 1
        batch_id = self._next_id
        future: asyncio.Future[BatchReply] = asyncio.get_running_loop().create_future()
        self._pending[batch_id] = future
        try:
            writer.write(frame(BatchRequest(batch_id=batch_id, ops=ops)))
            return await future
        finally:
            self._pending.pop(batch_id, None)

    async def _open(self) -> asyncio.StreamWriter:
        async with self._opening:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer
            host, _, port = (await self._lookup()).rpartition(":")
            try:
                reader, writer = await asyncio.open_connection(
                    host,
                    int(port),
                    ssl=self._tls,
                    server_hostname=None if self._tls is None else host,
                )
            except ssl.SSLError as error:
                # A ConnectionError, so that the batch is retried (the shard may have moved).
                raise ConnectionError(
                    f"TLS with the wallet shard at {host}:{port} failed: {error}"
                ) from error
            writer.write(frame(Hello(token=self._token)))
            self._writer = writer
            self._reading = asyncio.get_running_loop().create_task(self._read_answers(reader))
            return writer

    async def _read_answers(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                answer = _answer_decoder.decode(await read_frame(reader, self._frame_max_bytes))
                future = self._pending.get(answer.batch_id)
                if future is not None and not future.done():
                    future.set_result(answer.reply)
        except (asyncio.IncompleteReadError, OSError, msgspec.DecodeError) as error:
            # OSError: ConnectionError, and ssl.SSLError, such as the shard's refusal of
            # this host's certificate, which TLS 1.3 delivers after the handshake.
            self._break(ConnectionError(f"the wallet shard's link broke: {error!r}"))

    def _break(self, error: ConnectionError) -> None:
        """Fail every batch in flight; the next call opens a new link."""
        if self._writer is not None:
            self._writer.close()
        self._writer = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
        self._break(ConnectionError("the wallet client is closing"))
