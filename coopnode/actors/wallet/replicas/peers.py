"""The network between one shard's replicas: a socket to each peer, a frame a message.

    replica i (Peers.send)                     replica j (Peers.serve)
    ── TLS handshake (cluster TLS only) ──▶    requires i's certificate
    ── PeerHello(token, i) ───────────────▶    checks the token
    ── message frame ─────────────────────▶    deliver(message), in order

Each replica dials each peer once and keeps the connection; messages travel one way on
it (the peer's answers come on the connection it dialled). Delivery is best effort, as
the protocol expects: a message for a peer that is not connected, or whose socket buffer
is past its bound (a stalled peer), is dropped, and the protocol sends again what
matters. The peer's address comes from its actor (a Ray call), looked up again after a
break, so a restarted peer is found.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ssl
from collections.abc import Awaitable, Callable

import msgspec

from coopnode.actors.wallet.link import read_frame
from coopnode.logs import get_logger
from coopnode.replication.messages import Message, decode_message, encode_message

log = get_logger(__name__)

# A peer whose socket holds this much unsent is not reading: later messages are dropped
# until it drains, so that a stalled peer cannot grow this replica's memory without end.
PEER_BUFFER_MAX_BYTES = 64 * 1024 * 1024
_HEADER_BYTES = 4


class PeerHello(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    token: str
    replica: int


_hello_decoder = msgspec.msgpack.Decoder(PeerHello)

Lookup = Callable[[int], Awaitable[str]]
Deliver = Callable[[Message], None]


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(_HEADER_BYTES, "big") + payload


class Peers:
    """This replica's connections to the other replicas of its shard."""

    def __init__(
        self,
        *,
        me: int,
        token: str,
        frame_max_bytes: int,
        lookup: Lookup,
        server_tls: ssl.SSLContext | None = None,
        client_tls: ssl.SSLContext | None = None,
    ) -> None:
        self._me = me
        self._token = token
        self._frame_max_bytes = frame_max_bytes
        self._lookup = lookup
        self._server_tls = server_tls
        self._client_tls = client_tls
        self._writers: dict[int, asyncio.StreamWriter] = {}
        self._dialling: dict[int, asyncio.Task[None]] = {}
        self._server: asyncio.Server | None = None
        self._readers: set[asyncio.Task[None]] = set()
        self.dropped = 0

    async def serve(self, host: str, deliver: Deliver) -> int:
        """Listen for peers on `host`; each message they send goes to `deliver`."""

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._readers.add(task)
            try:
                await self._receive(reader, writer, deliver)
            finally:
                if task is not None:
                    self._readers.discard(task)
                writer.close()

        self._server = await asyncio.start_server(accept, host, 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _receive(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, deliver: Deliver
    ) -> None:
        try:
            if self._server_tls is not None:
                await writer.start_tls(self._server_tls)
            async with asyncio.timeout(10):
                hello = _hello_decoder.decode(await read_frame(reader, self._frame_max_bytes))
            if not hmac.compare_digest(hello.token.encode(), self._token.encode()):
                log.warning("replica link refused: wrong token")
                return
            while True:
                deliver(decode_message(await read_frame(reader, self._frame_max_bytes)))
        except (asyncio.IncompleteReadError, OSError, TimeoutError, msgspec.DecodeError):
            pass  # The peer went away or spoke nonsense; it dials again.

    def send(self, target: int, message: Message) -> None:
        writer = self._writers.get(target)
        if writer is None or writer.is_closing():
            self._writers.pop(target, None)
            self._dial(target)
            self.dropped += 1
            return
        if writer.transport.get_write_buffer_size() > PEER_BUFFER_MAX_BYTES:
            self.dropped += 1
            return
        writer.write(_frame(encode_message(message)))

    def _dial(self, target: int) -> None:
        if target in self._dialling:
            return
        task = asyncio.get_running_loop().create_task(self._connect(target))
        self._dialling[target] = task
        task.add_done_callback(lambda _: self._dialling.pop(target, None))

    async def _connect(self, target: int) -> None:
        try:
            host, _, port = (await self._lookup(target)).rpartition(":")
            reader, writer = await asyncio.open_connection(
                host,
                int(port),
                ssl=self._client_tls,
                server_hostname=None if self._client_tls is None else host,
            )
        except Exception as error:  # Not there (yet): the next send dials again.
            log.debug("replica peer not reachable", peer=target, error=repr(error))
            await asyncio.sleep(0.05)  # Not more than twenty dials a second per peer.
            return
        writer.write(_frame(msgspec.msgpack.encode(PeerHello(self._token, self._me))))
        self._writers[target] = writer
        # Nothing comes back on this connection; reading notices that the peer closed it.
        watcher = asyncio.get_running_loop().create_task(self._watch(target, reader, writer))
        self._readers.add(watcher)
        watcher.add_done_callback(self._readers.discard)

    async def _watch(
        self, target: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(OSError):
            await reader.read()
        if self._writers.get(target) is writer:
            del self._writers[target]
        writer.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers.values():
            writer.close()
        for task in [*self._readers, *self._dialling.values()]:
            task.cancel()
