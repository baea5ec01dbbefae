"""The till channel: one WebSocket per till at `/till/ws`, MessagePack frames both ways.

Opening: the node sends a `Challenge` with a fresh 32-byte nonce; the till answers `Auth`
with its id and an Ed25519 signature over the nonce and its id. An unknown or retired
till, a bad signature or no answer within `auth_timeout_s` closes the connection with a
4xxx close code and a reason. Then the node sends `Welcome` (the till's store and kind,
the offline limits and the whole deny list) and from then on pushes `DenyUpdate`s.

`Welcome` also carries the connection's session key, sealed to the till's key. A tap, a
void or a refund arrives `Sealed` with that key (online) or `Signed` with the till's
Ed25519 key (an offline tap forwarded later; checked on the verifier's thread). A tap
the till approved offline is taken only `Signed`, and only when it is dated within
`offline_tap_clock_skew_max_s` ahead of the node's clock and `offline_tap_age_max_s`
behind it: it skips the balance and suspension checks, so it must stay evidence of what
the till decided, and a till cannot date it back past a card's block without limit. The
hot path of a tap stays in this process:

    check the MAC → replay window → IDm → card and member (in-memory copy) →
    deny check → `WalletClient.submit(Pay)` (micro-batched to the shard) → `Decision`

so a tap costs no Ray call of its own. Frames of one connection are decided concurrently
(at most `in_flight_max` at once) and answered as they are decided; each `Decision`
names its sequence number.

Refusals, none of which changes anything:
  * a frame that is not MessagePack of a known kind, or not signed by this till nor
    sealed with this connection's key, or names another till, or an offline tap that is
    sealed rather than signed: `Refused` (reason malformed_frame, bad_signature,
    wrong_till, offline_not_signed); after `bad_frames_max` of them the connection is
    closed;
  * an offline tap dated too far ahead or too long ago: a declined `Decision`
    (invalid_input);
  * any frame of a till retired meanwhile: none is decided, and the connection is
    closed (4003);
  * a frame larger than `frame_max_bytes`: the connection is closed (1009, too big);
  * a sequence number seen before with other content: a declined `Decision` with
    idempotency_conflict; the same content again: the first decision, from the replay
    window (recent frames) or from the wallet's idempotency records (older ones);
  * a void names the tap by this till's own id, so a till can only void its own taps;
    the wallet allows voids of today's payments only.

Pacing: each till's frames take tokens from a bucket (`frames_per_s_max`, burst
`frames_burst_max`); when it is empty the node stops reading that till's socket until a
token is due, so a flooding till is slowed down by TCP itself and other tills are not.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Coroutine
from typing import Any

import msgspec
from aiohttp import WSMsgType, web
from nacl.signing import VerifyKey

from coopnode.actors.registry_store import CardStatus, TillRecord
from coopnode.actors.wallet_client import WalletClient
from coopnode.domain.messages import (
    Booked,
    Declined,
    OfflinePay,
    Operation,
    Pay,
    Refund,
    Result,
    VoidPayment,
)
from coopnode.domain.money import TRY_AGAIN_REASONS, Reason
from coopnode.domain.till_frames import (
    Auth,
    Challenge,
    Decision,
    OfflineLimits,
    RefundBody,
    Refused,
    Sealed,
    Signed,
    SignedBody,
    TapBody,
    VoidBody,
    Welcome,
    check_sealed,
    frame_encoder,
    frame_key,
    new_session_key,
    seal_session_key,
    signed_body_decoder,
    tap_key,
    till_frame_decoder,
    verify_auth,
)
from coopnode.http.till_hub import ReplayWindow, Seen, TillHub, TokenBucket
from coopnode.http.wallet_api import wallet_client_key
from coopnode.logs import get_logger

log = get_logger(__name__)

till_hub_key = web.AppKey("till_hub", TillHub)

CLOSE_UNKNOWN_TILL = 4001
CLOSE_BAD_AUTH = 4002
CLOSE_RETIRED = 4003
CLOSE_AUTH_TIMEOUT = 4004
CLOSE_BAD_FRAMES = 4008
CLOSE_PUSH_BACKLOG = 4009


async def till_websocket(request: web.Request) -> web.WebSocketResponse:
    hub = request.app[till_hub_key]
    settings = hub.settings
    ws = web.WebSocketResponse(
        max_msg_size=settings.frame_max_bytes, heartbeat=settings.heartbeat_s, compress=False
    )
    await ws.prepare(request)
    till = await _authenticate(ws, hub)
    if till is None:
        return ws
    connection = TillConnection(ws, till, hub, request.app[wallet_client_key])
    hub.attach(connection)
    log.info("till connected", till_id=till.till_id, store=till.store)
    try:
        await ws.send_bytes(connection.welcome())
        await connection.serve()
    finally:
        hub.detach(connection)
        log.info("till disconnected", till_id=till.till_id, close_code=ws.close_code)
    return ws


async def _authenticate(ws: web.WebSocketResponse, hub: TillHub) -> TillRecord | None:
    """Challenge the till; return its record, or close the connection and return None."""
    nonce = secrets.token_bytes(32)
    await ws.send_bytes(frame_encoder.encode(Challenge(nonce=nonce, node_time_ms=_now_ms())))
    try:
        message = await ws.receive(timeout=hub.settings.auth_timeout_s)
    except TimeoutError:
        await ws.close(code=CLOSE_AUTH_TIMEOUT, message=b"no answer to the challenge")
        return None
    if message.type is not WSMsgType.BINARY:
        await ws.close(code=CLOSE_BAD_AUTH, message=b"expected an auth frame")
        return None
    try:
        auth = till_frame_decoder.decode(message.data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        auth = None
    if not isinstance(auth, Auth):
        await ws.close(code=CLOSE_BAD_AUTH, message=b"expected an auth frame")
        return None
    till = hub.tills.get(auth.till_id)
    if till is None:
        await ws.close(code=CLOSE_UNKNOWN_TILL, message=b"unknown till")
        return None
    if till.retired:
        await ws.close(code=CLOSE_RETIRED, message=b"the till is retired")
        return None
    if not verify_auth(till.public_key, nonce, auth):
        log.warning("till failed the challenge", till_id=auth.till_id)
        await ws.close(code=CLOSE_BAD_AUTH, message=b"bad signature")
        return None
    return till


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class TillConnection:
    """One authenticated till: reads its frames, decides them, pushes the deny list."""

    def __init__(
        self, ws: web.WebSocketResponse, till: TillRecord, hub: TillHub, wallet: WalletClient
    ) -> None:
        self.ws = ws
        self.till = till
        self.till_id = till.till_id
        self.hub = hub
        self.wallet = wallet
        settings = hub.settings
        self._verify_key: VerifyKey = hub.verify_keys[till.till_id]
        self._session_key = new_session_key()
        self._bucket = hub.buckets.setdefault(
            till.till_id, TokenBucket(settings.frames_per_s_max, settings.frames_burst_max)
        )
        self._window = hub.windows.setdefault(
            till.till_id, ReplayWindow(settings.replay_window_taps)
        )
        self._slots = asyncio.Semaphore(settings.in_flight_max)
        self._tasks: set[asyncio.Task[None]] = set()
        self._bad_frames = 0

    def welcome(self) -> bytes:
        settings = self.hub.settings
        return frame_encoder.encode(
            Welcome(
                till_id=self.till.till_id,
                store=self.till.store,
                kind=self.till.kind,
                node_time_ms=_now_ms(),
                limits=OfflineLimits(
                    tap_max_yen=settings.offline_tap_max_yen,
                    card_day_max_yen=settings.offline_card_day_max_yen,
                    queue_max_taps=settings.offline_queue_max_taps,
                ),
                session_key_box=seal_session_key(self.till.public_key, self._session_key),
                deny_version=self.hub.version,
                deny_idms=sorted(self.hub.deny),
                seq_seen=self.hub.seq_seen(self.till_id),
            )
        )

    # Pushing -------------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def push(self, frame: bytes) -> None:
        if len(self._tasks) >= self.hub.settings.push_queue_max + self.hub.settings.in_flight_max:
            self.close_soon(CLOSE_PUSH_BACKLOG, "the till does not keep up with the deny list")
            return
        self._spawn(self._send(frame))

    def close_soon(self, code: int, reason: str) -> None:
        self._spawn(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        await self.ws.close(code=code, message=reason.encode())

    async def _send(self, frame: bytes) -> None:
        try:
            await self.ws.send_bytes(frame)
        except (ConnectionError, RuntimeError):
            return  # The till went away; it learns the outcome by sending the frame again.

    # Reading -------------------------------------------------------------------------

    async def serve(self) -> None:
        """Read frames until the till goes away; decide each in its own task."""
        while True:
            message = await self.ws.receive()
            if message.type is WSMsgType.BINARY:
                started_s = time.perf_counter()
                delay_s = self._bucket.take()
                if delay_s:
                    self.hub.metrics.till_throttled.inc()
                    await asyncio.sleep(delay_s)
                await self._slots.acquire()
                self._take(message.data, started_s)
            elif message.type is WSMsgType.TEXT:
                await self._bad_frame(0, "malformed_frame", "frames are binary MessagePack")
            else:
                return  # CLOSE, CLOSING, CLOSED or ERROR (e.g. a frame too large).

    def _take(self, data: bytes, started_s: float) -> None:
        """Start handling one frame; it holds one slot until it is answered."""
        try:
            frame = till_frame_decoder.decode(data)
            if isinstance(frame, Auth):
                raise msgspec.ValidationError("expected a sealed or signed frame")
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            self._slots.release()
            self._spawn(self._bad_frame(0, "malformed_frame", f"malformed frame: {error}"))
            return
        self._spawn(self._handle(frame, started_s))

    async def _handle(self, frame: Sealed | Signed, started_s: float) -> None:
        try:
            if self.hub.till_retired(self.till_id):
                # Retired while connected: the hub closes the connection, and until it is
                # closed no frame is decided.
                await self._close(CLOSE_RETIRED, "the till is retired")
                return
            # The body is read before its proof is checked, so that a refusal names the
            # frame's number and the till can tell which of its frames was refused; nothing
            # else of an unproven body is used.
            try:
                body = signed_body_decoder.decode(frame.body)
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                await self._bad_frame(0, "malformed_frame", f"malformed frame: {error}")
                return
            if isinstance(frame, Sealed):
                if not check_sealed(self._session_key, frame):
                    await self._bad_frame(
                        body.seq,
                        "bad_signature",
                        "the frame is not sealed with this connection's key",
                    )
                    return
            # A signature is checked on the verifier's thread: the loop reads other frames.
            elif not await self.hub.signatures.check(self._verify_key, frame):
                await self._bad_frame(
                    body.seq, "bad_signature", "the frame is not signed by this till"
                )
                return
            if body.till_id != self.till_id:
                await self._bad_frame(body.seq, "wrong_till", "the frame names another till")
                return
            if isinstance(body, TapBody) and body.offline and isinstance(frame, Sealed):
                # An offline tap skips the balance and suspension checks on the till's word
                # alone; that word must be the till's signature, made when it sold.
                await self._bad_frame(
                    body.seq, "offline_not_signed", "an offline tap must be signed by the till"
                )
                return
            digest = hashlib.blake2b(frame.body, digest_size=16).digest()
            await self._once(body, digest, started_s)
        finally:
            self._slots.release()

    async def _once(self, body: SignedBody, digest: bytes, started_s: float) -> None:
        """Decide a new sequence number; answer a repeat from the replay window."""
        seen = self._window.get(body.seq)
        if seen is None:
            seen = Seen(digest, asyncio.get_running_loop().create_future())
            self._window.put(body.seq, seen)
            await self._decide(body, seen, started_s)
        elif (seen[: len(digest)] if isinstance(seen, bytes) else seen.digest) != digest:
            conflict = _declined(body, Reason.IDEMPOTENCY_CONFLICT, "the seq was used before")
            await self._send(frame_encoder.encode(conflict))
            self.hub.record_decision(conflict, started_s)
        elif isinstance(seen, bytes):
            await self._send(seen[len(digest) :])  # Answered before: the same decision.
        else:
            try:
                await self._send(await asyncio.shield(seen.decision))
            except asyncio.CancelledError:
                if not seen.decision.cancelled():
                    raise  # The first frame's task failed; the till will send it again.

    async def _bad_frame(self, seq: int, reason: str, message: str) -> None:
        self._bad_frames += 1
        self.hub.metrics.till_refused.labels(reason=reason).inc()
        log.warning("till frame refused", till_id=self.till_id, reason=reason, seq=seq)
        await self._send(frame_encoder.encode(Refused(seq=seq, reason=reason, message=message)))
        if self._bad_frames >= self.hub.settings.bad_frames_max:
            await self._close(CLOSE_BAD_FRAMES, "too many bad frames")

    async def _decide(self, body: SignedBody, seen: Seen, started_s: float) -> None:
        try:
            decision = await self._decision(body)
            frame = frame_encoder.encode(decision)
            seen.decision.set_result(frame)
            if decision.reason in TRY_AGAIN_REASONS:
                self._window.forget(body.seq, seen)
            else:
                self._window.answer(body.seq, seen, frame)
            await self._send(frame)
            self.hub.record_decision(decision, started_s)
        except Exception:
            # A bug, not an outcome: the till hears nothing and sends the frame again.
            log.exception("till frame failed", till_id=self.till_id, seq=body.seq)
            self._window.forget(body.seq, seen)
            seen.decision.cancel()
        except asyncio.CancelledError:
            self._window.forget(body.seq, seen)
            seen.decision.cancel()
            raise

    # Deciding ------------------------------------------------------------------------

    async def _decision(self, body: SignedBody) -> Decision:
        card = self.hub.cards.get(body.idm)
        if card is None:
            return _declined(body, Reason.UNKNOWN_CARD, "the card is not registered")
        op: Operation
        match body:
            case TapBody():
                refused = self._refuse_tap(body, card.status, card.blocked_at_ms, card.member_no)
                if refused is not None:
                    return refused
                op = self._pay(body, card.member_no)
            case VoidBody():
                op = VoidPayment(
                    key=frame_key(body),
                    member_no=card.member_no,
                    payment_key=tap_key(self.till_id, body.tap_seq),
                )
            case RefundBody():
                sale_till = self.hub.tills.get(body.tap_till_id)
                if sale_till is None or sale_till.store != self.till.store:
                    return _declined(body, Reason.UNKNOWN_PAYMENT, "no such sale in this store")
                op = Refund(
                    key=frame_key(body),
                    member_no=card.member_no,
                    payment_key=tap_key(body.tap_till_id, body.tap_seq),
                    amount_yen=body.amount_yen,
                )
        return _decided(body, await self.wallet.submit(op))

    def _refuse_tap(
        self, body: TapBody, status: CardStatus, blocked_at_ms: int, member_no: str
    ) -> Decision | None:
        if body.offline:
            # The till approved it alone: it stands unless the card was already blocked
            # when it was tapped, or the till went beyond the limits it was given. Its
            # date is the till's word, so it must fall within bounds of the node's clock.
            dated = self._refuse_offline_date(body)
            if dated is not None:
                return dated
            if status is not CardStatus.ACTIVE and blocked_at_ms <= body.at_ms:
                return _declined(body, Reason.CARD_BLOCKED, "the card was blocked before")
            if body.amount_yen > self.hub.settings.offline_tap_max_yen:
                return _declined(body, Reason.ABOVE_MAXIMUM, "above the offline tap limit")
            return None
        if status is not CardStatus.ACTIVE:
            return _declined(body, Reason.CARD_BLOCKED, "the card is blocked")
        if member_no in self.hub.suspended:
            return _declined(body, Reason.SUSPENDED, "the account is suspended")
        return None

    def _refuse_offline_date(self, body: TapBody) -> Decision | None:
        settings = self.hub.settings
        now_ms = _now_ms()
        if body.at_ms > now_ms + int(settings.offline_tap_clock_skew_max_s * 1_000):
            return _declined(
                body, Reason.INVALID_INPUT, "the offline tap is dated ahead of the node's clock"
            )
        if body.at_ms < now_ms - int(settings.offline_tap_age_max_s * 1_000):
            return _declined(
                body, Reason.INVALID_INPUT, "the offline tap is older than the node accepts"
            )
        return None

    def _pay(self, body: TapBody, member_no: str) -> Operation:
        till = self.till
        key = tap_key(till.till_id, body.seq)
        if body.offline:
            return OfflinePay(
                key=key,
                member_no=member_no,
                amount_yen=body.amount_yen,
                till_kind=till.kind,
                store=till.store,
                till_id=till.till_id,
                tapped_at_ms=body.at_ms,
            )
        return Pay(
            key=key,
            member_no=member_no,
            amount_yen=body.amount_yen,
            till_kind=till.kind,
            store=till.store,
            till_id=till.till_id,
        )


def _kind(body: SignedBody) -> str:
    tag = type(body).__struct_config__.tag
    return str(tag)


def _declined(body: SignedBody, reason: Reason, message: str) -> Decision:
    return Decision(
        seq=body.seq,
        kind=_kind(body),
        approved=False,
        reason=reason,
        message=message,
        amount_yen=getattr(body, "amount_yen", 0),
        offline=isinstance(body, TapBody) and body.offline,
    )


def _decided(body: SignedBody, result: Result) -> Decision:
    if isinstance(result, Declined):
        return _declined(body, result.reason, result.message)
    if not isinstance(result, Booked):
        return _declined(body, Reason.INVALID_INPUT, "unexpected answer from the wallet")
    tap = isinstance(body, TapBody)
    return Decision(
        seq=body.seq,
        kind=_kind(body),
        approved=True,
        amount_yen=result.amount_yen,
        paid=result.changes.negate() if tap else result.changes,
        balances=result.balances,
        meal_remaining_today_yen=result.meal_remaining_today_yen,
        points_earned=result.points_earned,
        overdraft_yen=result.overdraft_yen,
        offline=isinstance(body, TapBody) and body.offline,
    )
