"""Password sign-ins with a second factor: the portal (§3), the my-page (§4), staff, and
a guardian's.

    password → second_factor ─ send_code → code_sent ─ verify → done (a session)
                             └ verify_totp (portal and staff) ──────→ done

A guardian who is not a member signs in with the address a member granted family access
to and a mailed code (as §4), into a session of its own kind that only the family view
accepts.

A wrong password and an unknown address get the same answer after the same work: the
unknown address is checked against a dummy argon2id hash. Failures lock the identifier
typed (known or not) after `signin_failures_max`, for `lockout_s`.

A double submit of the my-page login is one login: the same password again within
`double_submit_window_s` returns the same flow, and the same code again returns the same
session (its id is kept sealed with the node's key for that window only).
"""

from __future__ import annotations

import hmac

import msgspec

from coopnode.actors.identity.answers import (
    answer,
    busy,
    passcode_refusal,
    refused,
    totp_refusal,
    unknown_step,
)
from coopnode.actors.identity.context import IdentityContext
from coopnode.actors.identity.flows import Flows
from coopnode.actors.identity.messages import (
    Answer,
    FlowAnswer,
    FlowStep,
    IdentityReason,
    Refused,
    SessionIssued,
    SignIn,
)
from coopnode.actors.identity.passwords import HasherBusy
from coopnode.actors.identity.sessions import Sessions
from coopnode.actors.identity.store import Tx
from coopnode.actors.notify import mails
from coopnode.actors.notify.messages import Notification, SmsMessage, VoiceMessage
from coopnode.domain import passcodes
from coopnode.domain.errors import InvalidInput
from coopnode.domain.identity import (
    FlowKind,
    FlowRecord,
    FlowState,
    PendingLogin,
    SessionKind,
    Throttle,
    check_staff_id,
    digest,
    mask_mail,
    mask_phone,
    normalise_mail,
    normalise_phone,
    password_bytes,
    throttle_wait_s,
)
from coopnode.domain.passcodes import PasscodePurpose, PasscodeReason, TotpState

FLOW_OF: dict[SessionKind, FlowKind] = {
    SessionKind.PORTAL: FlowKind.PORTAL_SIGN_IN,
    SessionKind.MYPAGE: FlowKind.MYPAGE_LOGIN,
    SessionKind.STAFF: FlowKind.STAFF_SIGN_IN,
    SessionKind.GUARDIAN: FlowKind.GUARDIAN_SIGN_IN,
}
"""The second-factor flow each kind of password sign-in opens; the wallet has none."""

_SESSION_OF: dict[FlowKind, SessionKind] = {flow: session for session, flow in FLOW_OF.items()}
_totp_decoder = msgspec.msgpack.Decoder(TotpState)
_SECOND_FACTOR_STEPS = frozenset({"send_code", "verify", "verify_totp", "cancel"})
_SECOND_FACTOR_PURPOSE: dict[FlowKind, PasscodePurpose] = {
    FlowKind.PORTAL_SIGN_IN: PasscodePurpose.SIGN_IN,
    FlowKind.MYPAGE_LOGIN: PasscodePurpose.MYPAGE_LOGIN,
    FlowKind.GUARDIAN_SIGN_IN: PasscodePurpose.GUARDIAN_SIGN_IN,
    FlowKind.STAFF_SIGN_IN: PasscodePurpose.SIGN_IN,
}


def _bad_credentials() -> Refused:
    return refused(IdentityReason.INVALID_CREDENTIALS, "the sign-in id or the password is wrong")


class SignInFlows:
    def __init__(self, context: IdentityContext, flows: Flows, sessions: Sessions) -> None:
        self.context = context
        self.flows = flows
        self.sessions = sessions

    # The password -----------------------------------------------------------------------

    async def sign_in(self, request: SignIn) -> Answer:
        if request.kind is SessionKind.WALLET:
            return answer(refused(IdentityReason.INVALID_INPUT, "the wallet signs in with a code"))
        try:
            if request.kind is SessionKind.STAFF:
                identifier = check_staff_id(request.identifier.strip())
            else:
                identifier = normalise_mail(request.identifier)
        except InvalidInput:
            return answer(_bad_credentials())
        context = self.context
        throttle_key = f"signin:{identifier}"
        with context.store.read() as tx:
            wait_s = throttle_wait_s(tx.throttle(throttle_key), context.clock())
            subject, hashed = self._credentials_of(tx, request.kind, identifier)
        if wait_s:
            return answer(
                refused(
                    IdentityReason.LOCKED,
                    "too many wrong passwords; try again later",
                    retry_after_s=wait_s,
                )
            )
        try:
            ok = await context.hasher.verify(hashed, password_bytes(request.password))
        except HasherBusy:
            return busy()
        with context.store.write() as tx:
            if not ok or not subject:
                tx.put_throttle(throttle_key, context.failed(tx.throttle(throttle_key)))
                return answer(_bad_credentials())
            tx.put_throttle(throttle_key, Throttle())
            return answer(self._second_factor_flow(tx, request.kind, subject))

    @staticmethod
    def _credentials_of(tx: Tx, kind: SessionKind, identifier: str) -> tuple[str, bytes | None]:
        """The subject and the stored hash for an identifier; ("", None) when unknown."""
        if kind is SessionKind.STAFF:
            staff = tx.staff(identifier)
            # A disabled account is as unknown: the same answer after the same work.
            if staff is None or staff.disabled_at_s:
                return "", None
            return staff.staff_id, staff.password_hash
        if kind is SessionKind.GUARDIAN:
            guardian = tx.guardian(identifier)
            return (guardian.mail, guardian.password_hash) if guardian is not None else ("", None)
        account = tx.account_by_mail(identifier)
        if account is None or not account.password_hash:
            return "", None
        return account.member_no, account.password_hash

    def _second_factor_flow(self, tx: Tx, kind: SessionKind, subject: str) -> FlowAnswer | Refused:
        """The flow that waits for the second factor; the same one again for a password
        sent twice within `double_submit_window_s`."""
        keys = self.context.keys
        flow_kind = FLOW_OF[kind]
        pending_key = f"{flow_kind.value}:{subject}"
        pending = tx.pending(pending_key)
        now_s = self.context.clock()
        if pending is not None and now_s < pending.until_s:
            flow_id = keys.unseal(pending.flow_sealed).decode()
            flow = tx.flow(digest(flow_id))
            if flow is not None and flow.state in (FlowState.SECOND_FACTOR, FlowState.CODE_SENT):
                return self._second_factor_answer(tx, flow_id, flow)
        flow_id, flow = self.flows.new_flow(
            tx,
            flow_kind,
            FlowState.SECOND_FACTOR,
            subject=subject,
            passcode_key=f"{flow_kind.value}:{subject}",
        )
        until_s = now_s + self.context.bounds.double_submit_window_s
        tx.put_pending(
            pending_key, PendingLogin(flow_sealed=keys.seal(flow_id.encode()), until_s=until_s)
        )
        return self._second_factor_answer(tx, flow_id, flow)

    def _second_factor_answer(self, tx: Tx, flow_id: str, flow: FlowRecord) -> FlowAnswer | Refused:
        flow_answer = self.flows.flow_answer
        if flow.kind is FlowKind.STAFF_SIGN_IN:
            return flow_answer(flow_id, flow, methods=["totp"])
        if flow.kind is FlowKind.GUARDIAN_SIGN_IN:
            return flow_answer(flow_id, flow, methods=["mail"], masked_mail=mask_mail(flow.subject))
        account = tx.account(flow.subject)
        if account is None:
            return _bad_credentials()
        if flow.kind is FlowKind.MYPAGE_LOGIN:
            return flow_answer(flow_id, flow, methods=["mail"], masked_mail=mask_mail(account.mail))
        methods = ["sms", "voice", *(["totp"] if account.totp_sealed else [])]
        return flow_answer(flow_id, flow, methods=methods, masked_phone=mask_phone(account.phone))

    # The second factor ------------------------------------------------------------------

    def second_factor_step(self, step: FlowStep) -> Answer:
        if step.step not in _SECOND_FACTOR_STEPS:
            return unknown_step(step.step)
        flows = self.flows
        with self.context.store.write() as tx:
            flow = flows.load_flow(tx, step)
            if isinstance(flow, Refused):
                replayed = self._replay(tx, step)
                return answer(replayed if replayed is not None else flow)
            match step.step:
                case "send_code":
                    return self._send_second_factor(tx, step, flow)
                case "verify":
                    purpose = _SECOND_FACTOR_PURPOSE[flow.kind]
                    problem = flows.check_code(tx, flow, purpose, flow.destination, step.code)
                    return answer(problem if problem is not None else self._finish(tx, step, flow))
                case "verify_totp":
                    problem = self._check_totp(tx, flow, step.code)
                    return answer(problem if problem is not None else self._finish(tx, step, flow))
            return flows.cancel(tx, step, flow)

    @staticmethod
    def _mail_destination(tx: Tx, flow: FlowRecord) -> str:
        """Where a mailed second factor goes: the member's or the guardian's address."""
        if flow.kind is FlowKind.GUARDIAN_SIGN_IN:
            guardian = tx.guardian(flow.subject)
            return guardian.mail if guardian is not None else ""
        account = tx.account(flow.subject)
        return account.mail if account is not None else ""

    def _second_factor_channel(
        self, tx: Tx, step: FlowStep, flow: FlowRecord
    ) -> tuple[str, str] | Refused:
        """The channel and the destination of a code: the address on file for the my-page
        and a guardian, the phone number typed (if it is the one on file) for the portal."""
        if flow.kind in (FlowKind.MYPAGE_LOGIN, FlowKind.GUARDIAN_SIGN_IN):
            destination = self._mail_destination(tx, flow)
            if not destination:
                return refused(IdentityReason.NOT_FOUND, "the account no longer exists")
            return "mail", destination
        account = tx.account(flow.subject)
        if account is None:
            return refused(IdentityReason.NOT_FOUND, "the member no longer exists")
        if step.method not in ("sms", "voice"):
            return refused(IdentityReason.INVALID_INPUT, "method must be sms or voice")
        destination = normalise_phone(step.phone, step.country_code)
        if not hmac.compare_digest(destination.encode(), account.phone.encode()):
            return refused(IdentityReason.PHONE_MISMATCH, "this is not the phone number registered")
        return step.method, destination

    def _send_second_factor(self, tx: Tx, step: FlowStep, flow: FlowRecord) -> Answer:
        context, flows = self.context, self.flows
        chosen = self._second_factor_channel(tx, step, flow)
        if isinstance(chosen, Refused):
            return answer(chosen)
        channel, destination = chosen
        # The code page says where the code went, masked as the sign-in step showed it.
        shown = (
            {"masked_mail": mask_mail(destination)}
            if channel == "mail"
            else {"masked_phone": mask_phone(destination)}
        )
        double = context.clock() - flow.last_sent_at_s < context.bounds.double_submit_window_s
        if double and flow.state is FlowState.CODE_SENT and flow.channel == channel:
            # The send button pressed twice: one code is on its way.
            resend_after_s = flows.resend_after_s(tx, flow.passcode_key)
            return answer(
                flows.flow_answer(step.flow_id, flow, resend_after_s=resend_after_s, **shown)
            )
        purpose = _SECOND_FACTOR_PURPOSE[flow.kind]
        issued = flows.issue_code(tx, flow.passcode_key, purpose, destination)
        if issued.reason is not PasscodeReason.OK:
            return answer(passcode_refusal(issued.reason, retry_after_s=issued.retry_after_s))
        flow = flows.save_flow(
            tx,
            step.flow_id,
            flow,
            state=FlowState.CODE_SENT,
            destination=destination,
            channel=channel,
            last_sent_at_s=context.clock(),
        )
        reply = flows.flow_answer(
            step.flow_id, flow, resend_after_s=context.policy.passcode_resend_cooldown_s, **shown
        )
        message = self._second_factor_message(channel, destination, issued.code, flow.kind)
        return answer(reply, [message])

    def _second_factor_message(
        self, channel: str, to: str, code: str, kind: FlowKind
    ) -> Notification:
        minutes = self.flows.valid_minutes()
        if channel == "sms":
            return SmsMessage(
                to=to,
                body=mails.sms_passcode_text(code=code, valid_minutes=minutes),
                kind="sign_in",
            )
        if channel == "voice":
            return VoiceMessage(to=to, speech=mails.voice_passcode_text(code=code), kind="sign_in")
        return self.flows.verification_mail(to, code, kind.value)

    def _check_totp(self, tx: Tx, flow: FlowRecord, code: str) -> Refused | None:
        keys = self.context.keys
        if flow.kind is FlowKind.STAFF_SIGN_IN:
            staff = tx.staff(flow.subject)
            sealed = staff.totp_sealed if staff is not None else b""
        else:
            account = tx.account(flow.subject)
            sealed = account.totp_sealed if account is not None else b""
        if not sealed:
            return refused(IdentityReason.OUT_OF_ORDER, "no authenticator app is enrolled")
        state = _totp_decoder.decode(keys.unseal(sealed))
        state, result = passcodes.totp_verify(
            state, code=code, now_s=self.context.clock(), policy=self.context.policy
        )
        resealed = keys.seal(msgspec.msgpack.encode(state))
        if flow.kind is FlowKind.STAFF_SIGN_IN and staff is not None:
            tx.put_staff(msgspec.structs.replace(staff, totp_sealed=resealed))
        elif account is not None:
            tx.put_account(msgspec.structs.replace(account, totp_sealed=resealed))
        if result.reason is PasscodeReason.OK:
            return None
        return totp_refusal(result.reason, retry_after_s=result.retry_after_s)

    def _finish(self, tx: Tx, step: FlowStep, flow: FlowRecord) -> SessionIssued:
        keys = self.context.keys
        issued, session_id = self.sessions.open(
            tx, _SESSION_OF[flow.kind], flow.subject, step.old_session_id
        )
        self.flows.save_flow(
            tx,
            step.flow_id,
            flow,
            state=FlowState.DONE,
            result_sealed=keys.seal(session_id.encode()),
            result_until_s=self.context.clock() + self.context.bounds.double_submit_window_s,
            finished_by=keys.keyed("finish", step.code),
        )
        tx.put_pending(
            f"{flow.kind.value}:{flow.subject}", PendingLogin(flow_sealed=b"", until_s=0.0)
        )
        return issued

    def _replay(self, tx: Tx, step: FlowStep) -> SessionIssued | None:
        """The finishing step sent twice answers with the session the first one opened."""
        keys = self.context.keys
        flow = tx.flow(digest(step.flow_id))
        if flow is None or flow.state is not FlowState.DONE or not flow.result_sealed:
            return None
        if step.step not in ("verify", "verify_totp"):
            return None
        if self.context.clock() >= flow.result_until_s:
            return None
        if not hmac.compare_digest(flow.finished_by, keys.keyed("finish", step.code)):
            return None
        session_id = keys.unseal(flow.result_sealed).decode()
        if tx.session(digest(session_id)) is None:
            return None
        return self.sessions.issued(_SESSION_OF[flow.kind], session_id, flow.subject)
