"""A relay between a till and the node that can withhold the node's answers.

Tests that need a till to give up on a decision the node did make (and book) hold the
answer here instead of betting that the node answers slower than a tiny timeout: the till
sends its frame, the node decides and books it, and the decision waits in the relay until
the test lets it go, so the till's own timeout fires whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import aiohttp
from aiohttp import web

from tests.tillclient import TIMEOUT_S

# The node's first two frames on a link are its challenge and its welcome: they always pass,
# or the till could not connect at all.
HANDSHAKE_FRAMES = 2


class AnswerHold:
    """Listens on loopback; `url` is the node URL to give a till agent."""

    def __init__(self, node_url: str, port: int = 0) -> None:
        self._node_ws_url = node_url.rstrip("/") + "/till/ws"
        # 0 takes a free port; a given one lets a test name the relay before it listens.
        self._port = port
        self._holding = False
        self._held: list[tuple[web.WebSocketResponse, bytes]] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.held_count = 0
        self.url = ""

    async def __aenter__(self) -> AnswerHold:
        app = web.Application()
        app.router.add_get("/till/ws", self._relay)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def hold(self) -> None:
        """From now on the node's answers wait here."""
        self._holding = True

    async def release(self) -> None:
        """Send every held answer on to its till (if it is still connected), then relay."""
        self._holding = False
        held, self._held = self._held, []
        for till_ws, frame in held:
            if not till_ws.closed:
                await till_ws.send_bytes(frame)

    async def _relay(self, request: web.Request) -> web.WebSocketResponse:
        till_ws = web.WebSocketResponse(max_msg_size=16 << 20)
        await till_ws.prepare(request)
        if self._session is None:
            raise RuntimeError("the relay is not started")
        async with self._session.ws_connect(
            self._node_ws_url, max_msg_size=16 << 20, timeout=aiohttp.ClientWSTimeout(TIMEOUT_S)
        ) as node_ws:
            upstream = asyncio.create_task(self._till_to_node(till_ws, node_ws))
            try:
                await self._node_to_till(node_ws, till_ws)
            finally:
                upstream.cancel()
                await asyncio.gather(upstream, return_exceptions=True)
        await till_ws.close()
        return till_ws

    async def _till_to_node(
        self, till_ws: web.WebSocketResponse, node_ws: aiohttp.ClientWebSocketResponse
    ) -> None:
        async for message in till_ws:
            if message.type is aiohttp.WSMsgType.BINARY:
                await node_ws.send_bytes(message.data)
        await node_ws.close()

    async def _node_to_till(
        self, node_ws: aiohttp.ClientWebSocketResponse, till_ws: web.WebSocketResponse
    ) -> None:
        passed = 0
        async for message in node_ws:
            if message.type is not aiohttp.WSMsgType.BINARY:
                break
            if self._holding and passed >= HANDSHAKE_FRAMES:
                self._held.append((till_ws, message.data))
                self.held_count += 1
                continue
            passed += 1
            if till_ws.closed:
                break
            await till_ws.send_bytes(message.data)
