"""The till channel's frames, and what a till signs.

A till talks to the node over one WebSocket; every frame is a tagged msgspec Struct in
MessagePack. The node opens with a `Challenge`; the till proves it holds its Ed25519 key
with `Auth` (a signature over the nonce and its id); the node answers `Welcome` with the
offline limits and the whole deny list, then pushes `DenyUpdate`s as cards are blocked.

Every frame that moves money (a tap, a void, a refund) carries the body's MessagePack bytes
and a proof that this till made them, in one of two envelopes:

  * `Sealed`, online: a 128-bit keyed BLAKE2b MAC under the connection's session key. The
    node draws the key when the till connects and sends it in `Welcome` inside a sealed box
    (X25519, from the till's Ed25519 key): only the holder of the till's private key can
    open it, so only that till can seal frames the node accepts, and a frame sealed on one
    connection is worthless on the next. Checking a MAC costs about 1 µs; checking an
    Ed25519 signature costs about 55 µs and a hand-over to a worker thread, which at
    thousands of taps a second was a third of the front's work on a tap.
  * `Signed`, for what must stay verifiable apart from any connection: a tap the till
    approved offline is signed with the till's Ed25519 key when it is made, queued on the
    till's disk, and forwarded days later as it was signed.

    till → node   Auth, Sealed(TapBody | VoidBody | RefundBody), Signed(…the same)
    node → till   Challenge, Welcome, DenyUpdate, Decision, Refused

Signatures are made over a context string followed by the signed bytes, and MACs with a
personalisation of their own, so that no proof can pass for another kind. This module
holds the frames and the MACs (the standard library's BLAKE2b); the Ed25519 signatures and
the sealed session key, which need PyNaCl, are `coopnode.till_keys`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import IntEnum
from typing import Annotated

import msgspec

from coopnode.domain.bounds import SAFE_INTEGER_MAX, EpochMs, RecordNo
from coopnode.domain.messages import AmountYen, Label
from coopnode.domain.money import Purses, Reason, TillKind

TillId = Annotated[str, msgspec.Meta(pattern=r"^till-[0-9]{4,8}$", description="till-0001")]
Idm = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{16}$", description="16 hex digits")]
# A till numbers its frames from 1; the number is the idempotency key of what it asks.
Seq = RecordNo
# A limit as a till states it in a signed tap: the node compares it with what it sent,
# so here it needs only to be a number the node can hold.
LimitValue = Annotated[int, msgspec.Meta(ge=0, le=SAFE_INTEGER_MAX)]
Nonce = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Signature = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
PublicKey = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
# A signed body is about 80 bytes; the envelope refuses anything far larger.
SignedBytes = Annotated[bytes, msgspec.Meta(min_length=1, max_length=1024)]
SESSION_KEY_BYTES = 32
MAC_BYTES = 16
Mac = Annotated[bytes, msgspec.Meta(min_length=MAC_BYTES, max_length=MAC_BYTES)]
# A sealed box adds an ephemeral public key (32 bytes) and a tag (16) to what it hides.
SessionKeyBox = Annotated[
    bytes, msgspec.Meta(min_length=SESSION_KEY_BYTES + 48, max_length=SESSION_KEY_BYTES + 48)
]

AUTH_CONTEXT = b"coopnode-till-auth-v1\x00"
FRAME_CONTEXT = b"coopnode-till-frame-v1\x00"
MAC_PERSON = b"coopnode-seal-v1"


class _Frame(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


# Till → node -------------------------------------------------------------------------


class Auth(_Frame, frozen=True, tag="auth"):
    till_id: TillId
    signature: Signature


class Signed(_Frame, frozen=True, tag="signed"):
    body: SignedBytes
    signature: Signature


class Sealed(_Frame, frozen=True, tag="sealed"):
    body: SignedBytes
    mac: Mac


class OfflineLimits(_Frame, frozen=True):
    """What a till may approve on its own while it cannot reach the node, and for how long
    after a sale the node still takes it."""

    tap_max_yen: LimitValue
    card_day_max_yen: LimitValue
    queue_max_taps: LimitValue
    # A till's files from before the node sent this limit hold limits without it; they
    # were sent when the node's cut-off was its default, a week.
    tap_age_max_ms: LimitValue = 604_800_000


class TapBody(_Frame, frozen=True, tag="tap"):
    till_id: TillId
    seq: Seq
    idm: Idm
    amount_yen: AmountYen
    at_ms: EpochMs
    # Approved by the till while it could not reach the node, and forwarded later.
    offline: bool = False
    # For an offline tap: the limits the till approved it under, from the node's last
    # `Welcome` before the sale. The node takes them only if it sent them to this till
    # and they were in force when the tap is dated (`offline.node_offline_refusal`).
    limits: OfflineLimits | None = None


class VoidBody(_Frame, frozen=True, tag="void"):
    """Void a tap this till made today; the node looks the tap up by this till's id."""

    till_id: TillId
    seq: Seq
    idm: Idm
    tap_seq: Seq
    at_ms: EpochMs


class RefundBody(_Frame, frozen=True, tag="refund"):
    """Refund part of a tap made by a till of the same store."""

    till_id: TillId
    seq: Seq
    idm: Idm
    tap_till_id: TillId
    tap_seq: Seq
    amount_yen: AmountYen
    at_ms: EpochMs


TillFrame = Auth | Signed | Sealed
SignedBody = TapBody | VoidBody | RefundBody

# Node → till -------------------------------------------------------------------------


class Challenge(_Frame, frozen=True, tag="challenge"):
    nonce: Nonce
    node_time_ms: EpochMs


class Welcome(_Frame, frozen=True, tag="welcome"):
    till_id: TillId
    store: Label
    kind: TillKind
    node_time_ms: EpochMs
    limits: OfflineLimits
    # This connection's session key, sealed to the till's key: see `open_session_key`.
    session_key_box: SessionKeyBox
    # The whole deny list: cards reported lost or replaced, and cards of suspended
    # accounts. `DenyUpdate`s with higher versions change it from here on.
    deny_version: int
    deny_idms: list[str]
    # The highest sequence number the node has seen from this till: a till whose own
    # counter is not past it (its files restored from a backup) moves the counter past
    # it, because a number used again would be answered with the old frame's decision.
    seq_seen: int = 0


class DenyUpdate(_Frame, frozen=True, tag="deny_update"):
    version: int
    blocked: list[str]
    unblocked: list[str]
    # When the node made the change, so a till can tell how long the news took.
    changed_at_ms: EpochMs


class Decision(_Frame, frozen=True, tag="decision"):
    """The node's answer to one signed frame. Amounts paid are positive yen."""

    seq: int
    kind: str
    approved: bool
    reason: Reason | None = None
    message: str = ""
    amount_yen: int = 0
    paid: Purses = Purses()
    balances: Purses = Purses()
    meal_remaining_today_yen: int = 0
    points_earned: int = 0
    overdraft_yen: int = 0
    offline: bool = False


class Refused(_Frame, frozen=True, tag="refused"):
    """A frame the node could not take at all (malformed, unsigned, not this till's)."""

    seq: int
    reason: str
    message: str


NodeFrame = Challenge | Welcome | DenyUpdate | Decision | Refused


class CloseCode(IntEnum):
    """Why the node closes a till's WebSocket: the till reads the code, a person the text.
    Codes 4000–4999 are the application's own (RFC 6455 §7.4.2); 1001 and 1013 are
    WebSocket's going-away and try-again-later."""

    GOING_AWAY = 1001  # The node is stopping; connect again, to it or another front.
    TRY_AGAIN = 1013  # The node could not record the limits it would send.
    UNKNOWN_TILL = 4001
    BAD_AUTH = 4002
    RETIRED = 4003
    AUTH_TIMEOUT = 4004
    CONNECTED_ELSEWHERE = 4005  # The till connected again; this older link is closed.
    BAD_FRAMES = 4008
    PUSH_BACKLOG = 4009


frame_encoder = msgspec.msgpack.Encoder()
till_frame_decoder: msgspec.msgpack.Decoder[TillFrame] = msgspec.msgpack.Decoder(TillFrame)
signed_body_decoder: msgspec.msgpack.Decoder[SignedBody] = msgspec.msgpack.Decoder(SignedBody)
node_frame_decoder: msgspec.msgpack.Decoder[NodeFrame] = msgspec.msgpack.Decoder(NodeFrame)


def auth_message(nonce: bytes, till_id: str) -> bytes:
    return AUTH_CONTEXT + nonce + till_id.encode("ascii")


def new_session_key() -> bytes:
    return secrets.token_bytes(SESSION_KEY_BYTES)


def frame_mac(session_key: bytes, body: bytes) -> bytes:
    digest = hashlib.blake2b(body, digest_size=MAC_BYTES, key=session_key, person=MAC_PERSON)
    return digest.digest()


def seal_body(session_key: bytes, body: SignedBody) -> Sealed:
    raw = frame_encoder.encode(body)
    return Sealed(body=raw, mac=frame_mac(session_key, raw))


def check_sealed(session_key: bytes, sealed: Sealed) -> bool:
    return hmac.compare_digest(frame_mac(session_key, sealed.body), sealed.mac)


def tap_key(till_id: str, seq: int) -> str:
    """The wallet's idempotency key of a till's tap; voids and refunds name it."""
    return f"tap:{till_id}:{seq}"


def frame_key(body: SignedBody) -> str:
    match body:
        case TapBody():
            return tap_key(body.till_id, body.seq)
        case VoidBody():
            return f"void:{body.till_id}:{body.seq}"
        case RefundBody():
            return f"refund:{body.till_id}:{body.seq}"
    raise AssertionError(f"unhandled body {body!r}")  # pragma: no cover
