"""What every identity flow shares: the clock, the keys, flows, passcodes and sessions.

`IdentityCore` holds the store and the rules' bounds; the flows (`identity_flows`) and the
service (`identity_service`) build on it. Every method that touches the store runs on the
identity actor's event loop without awaiting inside a transaction, so each step reads and
writes its records atomically without locks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Protocol

import msgspec
import nacl.exceptions
import nacl.secret

from coopnode.actors.identity.messages import (
    Answer,
    ErrorCode,
    FlowAnswer,
    FlowStep,
    IdentityReply,
    Refused,
    SessionIssued,
)
from coopnode.actors.identity.store import IdentityStore, Tx
from coopnode.actors.notify.messages import Notification
from coopnode.domain import passcodes
from coopnode.domain.errors import InvariantViolation
from coopnode.domain.identity import (
    FlowKind,
    FlowRecord,
    FlowState,
    SessionKind,
    SessionRecord,
    digest,
    flow_expired,
    step_allowed,
)
from coopnode.domain.messages import Operation, Result
from coopnode.domain.passcodes import PasscodePurpose, PasscodeReason
from coopnode.settings import Settings

# 128 bits, as OWASP's session guidance asks; flows are bearer handles of the same kind.
SESSION_ID_BYTES = 16
FLOW_ID_BYTES = 16
# A session's last-seen time is written at most this often, so reading pages does not
# cost an fsync each; the idle timeout is minutes, so seconds of slack do not matter.
SESSION_TOUCH_INTERVAL_S = 15.0

_PASSCODE_STATUS: dict[PasscodeReason, int] = {
    PasscodeReason.WRONG: 400,
    PasscodeReason.EXPIRED: 410,
    PasscodeReason.USED: 409,
    PasscodeReason.LOCKED: 429,
    PasscodeReason.COOLDOWN: 429,
    PasscodeReason.RATE_LIMITED: 429,
}
_PASSCODE_MESSAGES: dict[PasscodeReason, str] = {
    PasscodeReason.WRONG: "the code is not correct",
    PasscodeReason.EXPIRED: "the code has expired; send a new code",
    PasscodeReason.USED: "the code was used already; send a new code",
    PasscodeReason.LOCKED: "too many wrong codes; send a new code",
    PasscodeReason.COOLDOWN: "a code was sent a moment ago; wait before asking for another",
    PasscodeReason.RATE_LIMITED: "too many codes were sent this hour; try again later",
}


class WalletPort(Protocol):
    """The wallet as identity uses it: `WalletClient`, or a store in tests."""

    async def submit(self, op: Operation) -> Result: ...


def refused(
    status: int,
    reason: str,
    message: str,
    *,
    retry_after_s: int = 0,
    attempts_left: int | None = None,
) -> Refused:
    return Refused(
        status=status,
        reason=reason,
        message=message,
        retry_after_s=retry_after_s,
        attempts_left=attempts_left,
    )


def passcode_refusal(
    reason: PasscodeReason, retry_after_s: int = 0, attempts_left: int = 0
) -> Refused:
    return refused(
        _PASSCODE_STATUS[reason],
        f"passcode_{reason.value}",
        _PASSCODE_MESSAGES[reason],
        retry_after_s=retry_after_s,
        attempts_left=attempts_left if reason is PasscodeReason.WRONG else None,
    )


def answer(reply: IdentityReply, notifications: list[Notification] | None = None) -> Answer:
    return Answer(reply=reply, notifications=notifications or [])


class IdentityCore:
    def __init__(
        self,
        settings: Settings,
        store: IdentityStore,
        *,
        passcode_key: bytes,
        identity_key: bytes,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.bounds = settings.identity
        self.policy = settings.verification.passcode_policy()
        self.store = store
        self.clock = clock
        if len(identity_key) != nacl.secret.SecretBox.KEY_SIZE:
            raise InvariantViolation("the identity key must be 32 bytes")
        self._passcode_key = passcode_key
        self._identity_key = identity_key
        self._box = nacl.secret.SecretBox(identity_key)

    # Keys -------------------------------------------------------------------------------

    def seal(self, plain: bytes) -> bytes:
        return bytes(self._box.encrypt(plain))

    def unseal(self, sealed: bytes) -> bytes:
        try:
            return bytes(self._box.decrypt(sealed))
        except nacl.exceptions.CryptoError as error:
            raise InvariantViolation("a sealed record does not open with the node's key") from error

    def keyed(self, label: str, value: str) -> bytes:
        return hmac.new(self._identity_key, f"{label}\0{value}".encode(), hashlib.sha256).digest()

    def csrf_token(self, session_id: str) -> str:
        """Derived from the session id, so it needs no storage and dies with the session."""
        return base64.urlsafe_b64encode(self.keyed("csrf", session_id)).decode().rstrip("=")

    def valid_minutes(self) -> int:
        return max(1, self.policy.passcode_ttl_s // 60)

    # Flows ------------------------------------------------------------------------------

    def new_flow(
        self,
        tx: Tx,
        kind: FlowKind,
        state: FlowState,
        *,
        subject: str,
        passcode_key: str,
        **fields: str,
    ) -> tuple[str, FlowRecord]:
        flow_id = secrets.token_urlsafe(FLOW_ID_BYTES)
        now_s = self.clock()
        flow = FlowRecord(
            kind=kind,
            state=state,
            subject=subject,
            passcode_key=passcode_key,
            created_at_s=now_s,
            expires_at_s=now_s + self.bounds.flow_ttl_s,
            **fields,  # type: ignore[arg-type]
        )
        tx.put_flow(digest(flow_id), flow)
        return flow_id, flow

    def load_flow(self, tx: Tx, step: FlowStep) -> FlowRecord | Refused:
        """The flow a step belongs to, if it is live and the step comes in order."""
        flow = tx.flow(digest(step.flow_id))
        if flow is None or flow.kind is not step.kind:
            return refused(404, ErrorCode.NOT_FOUND, "this flow does not exist; start again")
        if flow_expired(flow, self.clock()):
            return refused(410, ErrorCode.FLOW_EXPIRED, "this flow has expired; start again")
        if not step_allowed(flow.kind, step.step, flow.state):
            return refused(
                409,
                ErrorCode.OUT_OF_ORDER,
                f"step {step.step!r} cannot be taken now (the flow is at {flow.state.value!r})",
            )
        return flow

    def save_flow(self, tx: Tx, flow_id: str, flow: FlowRecord, **changes: object) -> FlowRecord:
        updated = msgspec.structs.replace(flow, **changes)
        tx.put_flow(digest(flow_id), updated)
        return updated

    def flow_answer(self, flow_id: str, flow: FlowRecord, **extra: object) -> FlowAnswer:
        return FlowAnswer(flow_id=flow_id, kind=flow.kind, state=flow.state, **extra)  # type: ignore[arg-type]

    # Passcodes --------------------------------------------------------------------------

    def issue_code(
        self, tx: Tx, passcode_key: str, purpose: PasscodePurpose, destination: str
    ) -> passcodes.IssueResult:
        state = tx.passcode(passcode_key)
        state, result = passcodes.issue(
            state,
            key=self._passcode_key,
            purpose=purpose,
            destination=destination,
            now_s=self.clock(),
            policy=self.policy,
        )
        if result.reason is PasscodeReason.OK:
            tx.put_passcode(state)
        return result

    def check_code(
        self, tx: Tx, flow: FlowRecord, purpose: PasscodePurpose, destination: str, code: str
    ) -> Refused | None:
        """Verify a code for a flow; None when it is right. Every try is recorded."""
        state = tx.passcode(flow.passcode_key)
        if state.destination != destination or state.purpose is not purpose:
            # The live code was sent for something else since: this flow's code is gone.
            return passcode_refusal(PasscodeReason.EXPIRED)
        state, result = passcodes.verify(
            state,
            key=self._passcode_key,
            purpose=purpose,
            code=code,
            now_s=self.clock(),
            policy=self.policy,
        )
        tx.put_passcode(state)
        if result.reason is PasscodeReason.OK:
            return None
        return passcode_refusal(result.reason, attempts_left=result.attempts_left)

    def resend_after_s(self, tx: Tx, passcode_key: str) -> int:
        state = tx.passcode(passcode_key)
        if not state.sent_at_s:
            return 0
        elapsed_s = self.clock() - state.sent_at_s[-1]
        return max(0, int(self.policy.passcode_resend_cooldown_s - elapsed_s + 0.999))

    # Sessions ---------------------------------------------------------------------------

    def timeouts(self, kind: SessionKind) -> tuple[int, int]:
        if kind is SessionKind.STAFF:
            return (
                self.bounds.staff_session_idle_timeout_s,
                self.bounds.staff_session_absolute_timeout_s,
            )
        return self.bounds.session_idle_timeout_s, self.bounds.session_absolute_timeout_s

    def issue_session(
        self,
        tx: Tx,
        kind: SessionKind,
        subject: str,
        old_session_id: str,
        *,
        registered_now: bool = False,
    ) -> tuple[SessionIssued, str]:
        """A fresh session id at every sign-in; the one the browser held is revoked."""
        if old_session_id:
            tx.delete_session(digest(old_session_id))
        session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
        now_s = self.clock()
        tx.put_session(
            digest(session_id),
            SessionRecord(kind=kind, subject=subject, created_at_s=now_s, last_seen_s=now_s),
        )
        issued = SessionIssued(
            kind=kind,
            session_id=session_id,
            csrf_token=self.csrf_token(session_id),
            subject=subject,
            idle_timeout_s=self.timeouts(kind)[0],
            registered_now=registered_now,
        )
        return issued, session_id
