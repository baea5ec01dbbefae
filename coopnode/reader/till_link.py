"""The till's end of the till channel: connect, prove its key, keep the link, reconnect.

`TillLink.run()` connects to `<node>/till/ws`, answers the node's challenge with the till's
signature, takes the `Welcome` (store, offline limits, deny list) and then reads frames
until the link drops, and connects again, forever.

A till may be given several node URLs, the fronts of one cluster. Each round of
connecting tries them in the list's order, the next at once when one fails (refused, no
answer within `agent_connect_timeout_s`, a failed check of its certificate, or the node
refusing the till), and waits `agent_reconnect_backoff_ms` (doubled after each round
that found none, up to the maximum) before the next round. So a till whose front is lost
moves to the next front at once; it stays there while the link lives, and goes back to
the first at its next reconnection: a working link is never dropped to move, since that
would cut the frames in flight and move the till twice for one outage. Whichever front
it reaches, its frames are decided there as at any other (a frame sent again is answered
from the wallet's records). `request()` seals a body with the connection's
session key (from the `Welcome`), sends it and waits for the `Decision` with its sequence
number; `forward()` does the same for a frame signed earlier (a tap queued offline). Both
answer None when the link is down or the node does not answer in time, and the caller then
decides what a till does offline. On an https:// node URL the link is WSS and the node's
certificate is verified as `coopnode.reader.till_tls` says; a node that fails the check
is never sent a frame.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
import msgspec
from nacl.signing import SigningKey

from coopnode.domain.till_frames import (
    Challenge,
    Decision,
    DenyUpdate,
    Refused,
    SignedBody,
    Welcome,
    frame_encoder,
    node_frame_decoder,
    seal_body,
)
from coopnode.logs import get_logger
from coopnode.reader.till_tls import node_ssl
from coopnode.settings import TillSettings
from coopnode.till_keys import open_session_key, sign_auth

log = get_logger(__name__)

# The node's frames are small, but a `Welcome` carries the whole deny list: a few hundred
# thousand IDms at most, under this size.
NODE_FRAME_MAX_BYTES = 16 * 1024 * 1024


class LinkRefused(Exception):
    """The node closed the link while it was opening (unknown till, bad key, retired)."""


def node_list(node_urls: str | Sequence[str]) -> list[str]:
    """The node URLs a till sells to, first to last: one URL, or several."""
    urls = [node_urls] if isinstance(node_urls, str) else list(node_urls)
    if not urls:
        raise ValueError("a till needs at least one node URL")
    return [url.rstrip("/") for url in urls]


class TillLink:
    def __init__(
        self,
        node_urls: str | Sequence[str],
        till_id: str,
        signing_key: SigningKey,
        settings: TillSettings,
        on_welcome: Callable[[Welcome], Awaitable[None]],
        on_deny_update: Callable[[DenyUpdate], None],
    ) -> None:
        self.node_urls = node_list(node_urls)
        # Raises TillTlsError when the TLS settings do not fit a URL.
        self._ssl = [node_ssl(url, settings) for url in self.node_urls]
        # The URL of the node the link is open to ("" while it is down).
        self.node_url = ""
        self._till_id = till_id
        self._key = signing_key
        self._settings = settings
        self._on_welcome = on_welcome
        self._on_deny_update = on_deny_update
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._session_key = b""
        self._pending: dict[int, asyncio.Future[Decision | Refused | None]] = {}
        self.connected = asyncio.Event()
        self.last_refusal = ""

    @property
    def online(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def run(self) -> None:
        """Keep the link up until cancelled."""
        settings = self._settings
        first_backoff_s = settings.agent_reconnect_backoff_ms / 1000
        backoff_s = first_backoff_s
        # A connection's opening (TCP and TLS) is bounded; an open link is not.
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=settings.agent_connect_timeout_s,
            sock_connect=settings.agent_connect_timeout_s,
        )
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                if await self._round(session):
                    backoff_s = first_backoff_s  # Was up, then dropped: not a failure.
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, settings.agent_reconnect_backoff_max_ms / 1000)

    async def _round(self, session: aiohttp.ClientSession) -> bool:
        """Try the nodes in order until one takes the till, and serve the link until it
        drops: True; or False when none took it."""
        for index, url in enumerate(self.node_urls):
            if index:
                log.info("trying the next node", till_id=self._till_id, node=url)
            try:
                await self._connect_once(session, url, self._ssl[index])
                return True
            except LinkRefused as error:
                self.last_refusal = str(error)
                log.error("the node refused this till", till_id=self._till_id, error=str(error))
            except (aiohttp.ServerFingerprintMismatch, aiohttp.ClientSSLError) as error:
                # Not the node, or not provably: nothing is sent to it, and the till
                # sells offline as if the node were out of reach.
                self.last_refusal = f"the node's certificate failed verification: {error}"
                log.error(
                    "the node's certificate failed verification; selling offline",
                    till_id=self._till_id,
                    node=url,
                    error=str(error),
                )
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                log.info("node unreachable", node=url, error=type(error).__name__)
        return False

    async def _connect_once(
        self,
        session: aiohttp.ClientSession,
        url: str,
        ssl: ssl_module.SSLContext | aiohttp.Fingerprint | bool,
    ) -> None:
        timeout_s = self._settings.auth_timeout_s
        # The connection and the WebSocket upgrade are bounded too: a front that accepts
        # the connection and never answers must not keep the till from the next one.
        opened = await asyncio.wait_for(
            session.ws_connect(
                url + "/till/ws",
                heartbeat=self._settings.heartbeat_s,
                max_msg_size=NODE_FRAME_MAX_BYTES,
                compress=0,
                ssl=ssl,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=timeout_s),
            ),
            self._settings.agent_connect_timeout_s + timeout_s,
        )
        async with opened as ws:
            challenge = await self._receive(ws, timeout_s)
            if not isinstance(challenge, Challenge):
                raise LinkRefused("the node did not send a challenge")
            await ws.send_bytes(
                frame_encoder.encode(sign_auth(self._key, challenge.nonce, self._till_id))
            )
            welcome = await self._receive(ws, timeout_s)
            if not isinstance(welcome, Welcome):
                raise LinkRefused("the node did not welcome this till")
            try:
                self._session_key = open_session_key(self._key, welcome.session_key_box)
            except ValueError as error:
                raise LinkRefused(str(error)) from None
            await self._on_welcome(welcome)
            self._ws = ws
            self.node_url = url
            self.connected.set()
            log.info(
                "connected to the node",
                till_id=self._till_id,
                node=url,
                deny=len(welcome.deny_idms),
            )
            try:
                await self._read(ws)
            finally:
                self._ws = None
                self.node_url = ""
                self.connected.clear()
                for future in self._pending.values():
                    if not future.done():
                        future.set_result(None)
                self._pending.clear()

    async def _receive(
        self, ws: aiohttp.ClientWebSocketResponse, timeout_s: float
    ) -> Challenge | Welcome | DenyUpdate | Decision | Refused:
        message = await ws.receive(timeout=timeout_s)
        if message.type is not aiohttp.WSMsgType.BINARY:
            raise LinkRefused(f"closed by the node: {message.data} {message.extra or ''}".strip())
        return node_frame_decoder.decode(message.data)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.BINARY:
                continue
            try:
                frame = node_frame_decoder.decode(message.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                log.warning("unreadable frame from the node", error=str(error))
                continue
            match frame:
                case Decision():
                    future = self._pending.pop(frame.seq, None)
                    if future is not None and not future.done():
                        future.set_result(frame)
                case DenyUpdate():
                    self._on_deny_update(frame)
                case Refused():
                    log.error("the node refused a frame", reason=frame.reason, seq=frame.seq)
                    future = self._pending.pop(frame.seq, None)
                    if future is not None and not future.done():
                        future.set_result(frame)
                case _:
                    log.warning("unexpected frame from the node", kind=type(frame).__name__)

    async def request(self, body: SignedBody, timeout_s: float) -> Decision | None:
        """Send `body` sealed; its decision, or None (link down, refused, no answer): the
        caller then sells as offline, and the signed copy it queues is judged later."""
        ws = self._ws
        if ws is None or ws.closed:
            return None
        frame = frame_encoder.encode(seal_body(self._session_key, body))
        answer = await self._exchange(ws, body.seq, frame, timeout_s)
        return answer if isinstance(answer, Decision) else None

    async def forward(self, seq: int, frame: bytes, timeout_s: float) -> Decision | Refused | None:
        """Send a frame signed earlier: its decision; the node's refusal of it (it will
        never be booked: sending it again is pointless); or None (link down, no answer)."""
        ws = self._ws
        if ws is None or ws.closed:
            return None
        return await self._exchange(ws, seq, frame, timeout_s)

    async def _exchange(
        self, ws: aiohttp.ClientWebSocketResponse, seq: int, frame: bytes, timeout_s: float
    ) -> Decision | Refused | None:
        future: asyncio.Future[Decision | Refused | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[seq] = future
        try:
            await ws.send_bytes(frame)
            return await asyncio.wait_for(future, timeout_s)
        except (TimeoutError, ConnectionError, aiohttp.ClientError):
            return None
        finally:
            self._pending.pop(seq, None)
