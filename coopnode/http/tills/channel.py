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
`offline_tap_clock_skew_max_s` ahead of the node's clock and no further behind it than
the age cut-off it was sold under: it skips the balance and suspension checks, so it
must stay evidence of what the till decided, and a till cannot date it back past a
card's block without limit. The hot path of a tap stays in this process:

    check the MAC → replay window → IDm → card and member (in-memory copy) →
    deny check → `WalletClient.submit(Pay)` (micro-batched to the shard) → `Decision`

so a tap costs no Ray call of its own. Frames of one connection are decided concurrently
(at most `in_flight_max` at once) and answered as they are decided; each `Decision`
names its sequence number.

An offline tap is judged by the limits it states it was sold under, if the node sent
this till those limits and they were in force when the tap is dated (the till's history
of limits, kept in the registry: `TillHub.offline_refusal`), not by the node's limits of
the day it is forwarded. An offline tap the node refuses for any reason below (the card
unknown, blocked before the tap, a date or limits out of bounds, a bad signature, a
number used before) is a sale the till has made and nobody paid for: before the till is
answered it is kept for staff in the registry (GET /api/v1/offline-refusals) and counted
(coopnode_till_offline_refused_total); when it cannot be kept, the till is told to try again,
so it stays in the till's queue.

Refusals, none of which changes anything:
  * a frame that is not MessagePack of a known kind, or not signed by this till nor
    sealed with this connection's key, or names another till, or an offline tap that is
    sealed rather than signed: `Refused` (reason malformed_frame, bad_signature,
    wrong_till, offline_not_signed); after `bad_frames_max` of them the connection is
    closed;
  * an offline tap dated too far ahead or too long ago, or stating limits the node had
    not given this till when it is dated: a declined `Decision` (invalid_input); above
    the limits it states: above_maximum;
  * any frame of a till retired meanwhile: none is decided, and the connection is
    closed (4003);
  * a frame larger than `frame_max_bytes`: the connection is closed (1009, too big);
  * a sequence number seen before with other content: a declined `Decision` with
    idempotency_conflict; the same content again: the first decision, from the replay
    window (recent frames) or from the wallet's idempotency records (older ones, and
    frames another front decided: a till moves between the fronts of a cluster). A tap
    refused for a card blocked or an account suspended is first looked up in the
    wallet's records (`Recall`): booked before, by a front that never answered, it is
    answered as booked;
  * a void names the tap by this till's own id, so a till can only void its own taps;
    the wallet allows voids of today's payments only.

Pacing: each till's frames take tokens from a bucket (`frames_per_s_max`, burst
`frames_burst_max`); when it is empty the node stops reading that till's socket until a
token is due, so a flooding till is slowed down by TCP itself and other tills are not.

Long, and kept whole: the till protocol's one connection, from the challenge to the
last decision, reads as one conversation.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Coroutine
from typing import Any, TypeGuard

import msgspec
from aiohttp import WSMsgType, web
from nacl.signing import VerifyKey

from coopnode.actors.kernel.clock import system_ms
from coopnode.actors.registry.messages import CardStatus, RefusedOfflineTap, TillRecord
from coopnode.actors.wallet.client import WalletClient
from coopnode.domain.messages import (
    Booked,
    Declined,
    OfflinePay,
    Operation,
    Pay,
    Recall,
    Refund,
    Result,
    VoidPayment,
)
from coopnode.domain.money import TRY_AGAIN_REASONS, Reason
from coopnode.domain.till_frames import (
    Auth,
    Challenge,
    CloseCode,
    Decision,
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
    signed_body_decoder,
    tap_key,
    till_frame_decoder,
)
from coopnode.http.api.wallet import wallet_client_key
from coopnode.http.tills.hub import (
    RefusalsFull,
    RegistryUnavailable,
    ReplayWindow,
    Seen,
    TillHub,
    TokenBucket,
)
from coopnode.logs import get_logger
from coopnode.till_keys import seal_session_key, verify_auth

log = get_logger(__name__)

till_hub_key = web.AppKey("till_hub", TillHub)


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
        try:
            welcome = await connection.welcome()
        except RegistryUnavailable as error:
            log.warning("till not welcomed", till_id=till.till_id, error=str(error))
            await ws.close(code=CloseCode.TRY_AGAIN, message=b"the registry did not answer")
            return ws
        await ws.send_bytes(welcome)
        await connection.serve()
    finally:
        hub.detach(connection)
        log.info("till disconnected", till_id=till.till_id, close_code=ws.close_code)
    return ws


async def _authenticate(ws: web.WebSocketResponse, hub: TillHub) -> TillRecord | None:
    """Challenge the till; return its record, or close the connection and return None."""
    nonce = secrets.token_bytes(32)
    await ws.send_bytes(frame_encoder.encode(Challenge(nonce=nonce, node_time_ms=system_ms())))
    try:
        message = await ws.receive(timeout=hub.settings.auth_timeout_s)
    except TimeoutError:
        await ws.close(code=CloseCode.AUTH_TIMEOUT, message=b"no answer to the challenge")
        return None
    if message.type is not WSMsgType.BINARY:
        await ws.close(code=CloseCode.BAD_AUTH, message=b"expected an auth frame")
        return None
    try:
        auth = till_frame_decoder.decode(message.data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        auth = None
    if not isinstance(auth, Auth):
        await ws.close(code=CloseCode.BAD_AUTH, message=b"expected an auth frame")
        return None
    till = hub.tills.get(auth.till_id)
    if till is None:
        await ws.close(code=CloseCode.UNKNOWN_TILL, message=b"unknown till")
        return None
    if till.retired:
        await ws.close(code=CloseCode.RETIRED, message=b"the till is retired")
        return None
    if not verify_auth(till.public_key, nonce, auth):
        log.warning("till failed the challenge", till_id=auth.till_id)
        await ws.close(code=CloseCode.BAD_AUTH, message=b"bad signature")
        return None
    return till


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

    async def welcome(self) -> bytes:
        now_ms = system_ms()
        return frame_encoder.encode(
            Welcome(
                till_id=self.till.till_id,
                store=self.till.store,
                kind=self.till.kind,
                node_time_ms=now_ms,
                limits=await self.hub.limits_to_send(self.till_id, now_ms),
                session_key_box=seal_session_key(self.till.public_key, self._session_key),
                deny_version=self.hub.version,
                deny_idms=sorted(self.hub.deny),
                seq_seen=await self.hub.welcome_seq(self.till_id),
            )
        )

    # Pushing -------------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def push(self, frame: bytes) -> None:
        if len(self._tasks) >= self.hub.settings.push_queue_max + self.hub.settings.in_flight_max:
            self.close_soon(CloseCode.PUSH_BACKLOG, "the till does not keep up with the deny list")
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
                await self._bad_frame(0, b"", "malformed_frame", "frames are binary MessagePack")
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
            self._spawn(self._bad_frame(0, b"", "malformed_frame", f"malformed frame: {error}"))
            return
        self._spawn(self._handle(frame, started_s))

    async def _handle(self, frame: Sealed | Signed, started_s: float) -> None:
        try:
            if self.hub.till_retired(self.till_id):
                # Retired while connected: the hub closes the connection, and until it is
                # closed no frame is decided.
                await self._close(CloseCode.RETIRED, "the till is retired")
                return
            # The body is read before its proof is checked, so that a refusal names the
            # frame's number and the till can tell which of its frames was refused; nothing
            # else of an unproven body is used.
            try:
                body = signed_body_decoder.decode(frame.body)
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                await self._bad_frame(0, b"", "malformed_frame", f"malformed frame: {error}")
                return
            digest = hashlib.blake2b(frame.body, digest_size=16).digest()
            unproven = self._unproven(frame, body)
            # A signature is checked on the verifier's thread: the loop reads on.
            if (
                unproven is None
                and isinstance(frame, Signed)
                and not await self.hub.signatures.check(self._verify_key, frame)
            ):
                unproven = ("bad_signature", "the frame is not signed by this till")
            if unproven is None and body.till_id != self.till_id:
                unproven = ("wrong_till", "the frame names another till")
            if unproven is not None:
                await self._bad_frame(body, digest, *unproven)
                return
            await self._once(body, digest, started_s)
        finally:
            self._slots.release()

    def _unproven(self, frame: Sealed | Signed, body: SignedBody) -> tuple[str, str] | None:
        """Why a frame's envelope is not proof of its body, as far as it can be told
        without checking a signature."""
        if not isinstance(frame, Sealed):
            return None
        if not check_sealed(self._session_key, frame):
            return "bad_signature", "the frame is not sealed with this connection's key"
        if isinstance(body, TapBody) and body.offline:
            # An offline tap skips the balance and suspension checks on the till's word
            # alone; that word must be the till's signature, made when it sold.
            return "offline_not_signed", "an offline tap must be signed by the till"
        return None

    async def _once(self, body: SignedBody, digest: bytes, started_s: float) -> None:
        """Decide a new sequence number; answer a repeat from the replay window."""
        seen = self._window.get(body.seq)
        if seen is None:
            seen = Seen(digest, asyncio.get_running_loop().create_future())
            self._window.put(body.seq, seen)
            await self._decide(body, seen, started_s)
        elif (seen[: len(digest)] if isinstance(seen, bytes) else seen.digest) != digest:
            conflict = _declined(body, Reason.IDEMPOTENCY_CONFLICT, "the seq was used before")
            conflict = await self._kept_for_staff(body, digest, conflict)
            await self._send(frame_encoder.encode(conflict))
            self.hub.record_decision(conflict, started_s, self.till, body.at_ms)
        elif isinstance(seen, bytes):
            await self._send(seen[len(digest) :])  # Answered before: the same decision.
        else:
            try:
                await self._send(await asyncio.shield(seen.decision))
            except asyncio.CancelledError:
                if not seen.decision.cancelled():
                    raise  # The first frame's task failed; the till will send it again.

    async def _bad_frame(
        self, body: SignedBody | int, digest: bytes, reason: str, message: str
    ) -> None:
        """Refuse a frame whose body cannot be taken (`body` is its number when it could
        not even be read); after `bad_frames_max` of them the connection is closed."""
        self._bad_frames += 1
        self.hub.metrics.till_refused.labels(reason=reason).inc()
        seq = body if isinstance(body, int) else body.seq
        log.warning("till frame refused", till_id=self.till_id, reason=reason, seq=seq)
        answer: Refused | Decision = Refused(seq=seq, reason=reason, message=message)
        if _offline_tap(body) and not await self._keep_refusal(body, digest, reason, message):
            answer = _not_kept(body)
        await self._send(frame_encoder.encode(answer))
        if self._bad_frames >= self.hub.settings.bad_frames_max:
            await self._close(CloseCode.BAD_FRAMES, "too many bad frames")

    async def _kept_for_staff(
        self, body: SignedBody, digest: bytes, decision: Decision
    ) -> Decision:
        """An offline tap declined for good is kept for staff before the till hears it;
        when it cannot be kept, the till is told to try again and keeps it queued."""
        if not _offline_tap(body) or decision.approved or decision.reason in TRY_AGAIN_REASONS:
            return decision
        reason = "" if decision.reason is None else decision.reason.value
        if await self._keep_refusal(body, digest, reason, decision.message):
            return decision
        return _not_kept(body)

    async def _keep_refusal(self, body: TapBody, digest: bytes, reason: str, message: str) -> bool:
        card = self.hub.cards.get(body.idm)
        refused = RefusedOfflineTap(
            till_id=self.till_id,
            seq=body.seq,
            frame_digest_hex=digest.hex(),
            idm=body.idm,
            member_no="" if card is None else card.member_no,
            amount_yen=body.amount_yen,
            tapped_at_ms=body.at_ms,
            limits=body.limits,
            reason=reason,
            message=message,
            refused_at_ms=system_ms(),
        )
        try:
            await self.hub.note_refused(refused)
        except (RegistryUnavailable, RefusalsFull) as error:
            log.error(
                "a refused offline tap could not be kept; the till keeps it queued",
                till_id=self.till_id,
                seq=body.seq,
                error=str(error),
            )
            return False
        return True

    async def _decide(self, body: SignedBody, seen: Seen, started_s: float) -> None:
        try:
            decision = await self._kept_for_staff(body, seen.digest, await self._decision(body))
            frame = frame_encoder.encode(decision)
            seen.decision.set_result(frame)
            if decision.reason in TRY_AGAIN_REASONS:
                self._window.forget(body.seq, seen)
            else:
                self._window.answer(body.seq, seen, frame)
            await self._send(frame)
            self.hub.record_decision(decision, started_s, self.till, body.at_ms)
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
                refused = await self._refuse_tap(
                    body, card.status, card.blocked_at_ms, card.member_no
                )
                if refused is not None:
                    return await self._unless_decided_before(body, card.member_no, refused)
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

    async def _unless_decided_before(
        self, body: TapBody, member_no: str, refused: Decision
    ) -> Decision:
        """A tap refused on what this front knows now (the card blocked, the account
        suspended) may have been decided before, by another front that never answered
        (it was lost) or by this one before it restarted, when the card was still good:
        then the wallet's record is the decision, or the till would sell it again as a
        new sale, and the member would pay twice."""
        if refused.reason not in (Reason.CARD_BLOCKED, Reason.SUSPENDED):
            return refused  # Judged on the frame alone: the same at every front.
        recalled = await self.wallet.submit(
            Recall(member_no=member_no, payment=self._pay(body, member_no))
        )
        if isinstance(recalled, Declined) and recalled.reason is Reason.UNKNOWN_PAYMENT:
            return refused
        return _decided(body, recalled)

    async def _refuse_tap(
        self, body: TapBody, status: CardStatus, blocked_at_ms: int, member_no: str
    ) -> Decision | None:
        if body.offline:
            # The till approved it alone: it stands unless the till went beyond the limits
            # it was given, or the card was already blocked when it was tapped. Its date
            # is the till's word, so it must fall within bounds of the node's clock.
            try:
                refusal = await self.hub.offline_refusal(self.till_id, body, system_ms())
            except RegistryUnavailable:
                return _declined(body, Reason.UNAVAILABLE, "the registry did not answer; retry")
            if refusal is not None:
                return _declined(body, *refusal)
            if status is not CardStatus.ACTIVE and blocked_at_ms <= body.at_ms:
                return _declined(body, Reason.CARD_BLOCKED, "the card was blocked before")
            return None
        if status is not CardStatus.ACTIVE:
            return _declined(body, Reason.CARD_BLOCKED, "the card is blocked")
        if member_no in self.hub.suspended:
            return _declined(body, Reason.SUSPENDED, "the account is suspended")
        return None

    def _pay(self, body: TapBody, member_no: str) -> Pay | OfflinePay:
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


def _offline_tap(body: SignedBody | int) -> TypeGuard[TapBody]:
    return isinstance(body, TapBody) and body.offline


def _not_kept(body: SignedBody) -> Decision:
    return _declined(
        body, Reason.UNAVAILABLE, "the node could not keep the refused tap for staff; retry"
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
