"""Tills at the frame level, for tests: they send what a real agent never would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from nacl.signing import SigningKey

from coopnode.domain.till_frames import (
    Challenge,
    Decision,
    DenyUpdate,
    NodeFrame,
    Refused,
    SignedBody,
    TapBody,
    Welcome,
    frame_encoder,
    node_frame_decoder,
    seal_body,
)
from coopnode.till_keys import open_session_key, sign_auth, sign_body
from tests.nodeproc import NodeProcess

TIMEOUT_S = 60.0


class NoReader:
    """Cards are handed to `TillAgent.charge`; the reader itself is tested elsewhere."""

    def drain(self) -> None:
        return None

    async def next_tap(self, timeout_s: float) -> str | None:
        return None


async def wait_for(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def tap_keys(node: NodeProcess, member_no: str) -> list[str]:
    """The keys of the member's taps the node booked, in order."""
    status, page = node.request("GET", f"/api/v1/wallets/{member_no}/history?limit=100")
    assert status == 200, page
    return sorted(line["key"] for line in page["lines"] if line["key"].startswith("tap:"))


def add_till(node: NodeProcess, store: str, kind: str = "shop") -> tuple[str, SigningKey]:
    key = SigningKey.generate()
    body = {"store": store, "kind": kind, "public_key_hex": bytes(key.verify_key).hex()}
    status, till = node.request("POST", "/api/v1/tills", body)
    assert status == 201, till
    return till["till_id"], key


def enrol_with_card(node: NodeProcess, member_no: str, idm: str, **deposits: int) -> None:
    body = {"key": "enrol", "member_no": member_no, "coop": "demo", "deposits": deposits}
    status, answer = node.request("POST", "/api/v1/wallets", body)
    assert status == 201, answer
    status, card = node.request("POST", "/api/v1/cards", {"idm": idm, "member_no": member_no})
    assert status == 201, card


class RawTill:
    """One till connection; frames from the node are sorted as they arrive."""

    def __init__(self, url: str, till_id: str, key: SigningKey) -> None:
        self.url = url.rstrip("/") + "/till/ws"
        self.till_id = till_id
        self.key = key
        self.seq = 0
        self.welcome: Welcome | None = None
        self.session_key = b""
        self.decisions: dict[int, asyncio.Future[Decision]] = {}
        self.refused: asyncio.Queue[Refused] = asyncio.Queue()
        self.deny_updates: list[tuple[float, DenyUpdate]] = []
        self.deny_changed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self._session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self, auth_key: SigningKey | None = None) -> RawTill:
        """Connect and authenticate; `close_code` is set when the node refuses."""
        self._session = aiohttp.ClientSession()
        self.ws = await self._session.ws_connect(self.url, max_msg_size=16 << 20)
        challenge = await self._frame()
        assert isinstance(challenge, Challenge)
        auth = sign_auth(auth_key or self.key, challenge.nonce, self.till_id)
        await self.ws.send_bytes(frame_encoder.encode(auth))
        message = await self.ws.receive(timeout=TIMEOUT_S)
        if message.type is aiohttp.WSMsgType.CLOSE:
            self.close_code, self.close_reason = message.data, message.extra or ""
            return self
        self.welcome = node_frame_decoder.decode(message.data)  # type: ignore[assignment]
        assert isinstance(self.welcome, Welcome)
        self.session_key = open_session_key(self.key, self.welcome.session_key_box)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _frame(self) -> NodeFrame:
        assert self.ws is not None
        message = await self.ws.receive(timeout=TIMEOUT_S)
        assert message.type is aiohttp.WSMsgType.BINARY, message
        return node_frame_decoder.decode(message.data)

    async def _read(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            if message.type is not aiohttp.WSMsgType.BINARY:
                break
            frame = node_frame_decoder.decode(message.data)
            match frame:
                case Decision():
                    self._future(frame.seq).set_result(frame)
                case Refused():
                    self.refused.put_nowait(frame)
                case DenyUpdate():
                    self.deny_updates.append((time.monotonic(), frame))
                    self.deny_changed.set()
        self.close_code = self.ws.close_code

    def _future(self, seq: int) -> asyncio.Future[Decision]:
        if seq not in self.decisions or self.decisions[seq].done():
            self.decisions.setdefault(seq, asyncio.get_running_loop().create_future())
        return self.decisions[seq]

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def tap(
        self, idm: str, amount: int, seq: int | None = None, at_ms: int | None = None, **extra: Any
    ) -> TapBody:
        return TapBody(
            till_id=self.till_id,
            seq=self.next_seq() if seq is None else seq,
            idm=idm,
            amount_yen=amount,
            at_ms=time.time_ns() // 1_000_000 if at_ms is None else at_ms,
            **extra,
        )

    def signed(self, body: SignedBody, key: SigningKey | None = None) -> bytes:
        """Signed with the till's Ed25519 key, as a tap queued offline is forwarded."""
        return frame_encoder.encode(sign_body(key or self.key, body))

    def sealed(self, body: SignedBody, session_key: bytes | None = None) -> bytes:
        """Sealed with this connection's session key, as a till sends online."""
        return frame_encoder.encode(seal_body(session_key or self.session_key, body))

    async def send(self, frame: bytes) -> None:
        assert self.ws is not None
        await self.ws.send_bytes(frame)

    async def decide(self, body: SignedBody, frame: bytes | None = None) -> Decision:
        """Send a sealed body (or the given frame) and wait for its decision."""
        self.decisions.pop(body.seq, None)
        future = self._future(body.seq)
        await self.send(frame or self.sealed(body))
        return await asyncio.wait_for(future, TIMEOUT_S)

    async def wait_closed(self) -> int | None:
        if self._reader is not None:
            await asyncio.wait_for(self._reader, TIMEOUT_S)
        return self.close_code

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
