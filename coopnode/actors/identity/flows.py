"""Flows and their one-time codes, as every part that runs a flow uses them.

A flow is a `FlowRecord` under the digest of a random flow id that the client holds. A
step names the flow and what it wants to do; `domain.identity.STEP_FROM` says from which
states it may be taken, and anything else is refused as out of order without touching the
flow. The parts that run flows (`mail_change`, `password`, `guardian`, `wallet_signin`,
`signin`) each hold the one `Flows` the service makes.

An address, phone or member number that matches nobody starts a flow all the same
(`open_code_flow`): a code is minted and throttled exactly as for a member but sent
nowhere, so every answer and every later step reads the same whether or not the account
exists.
"""

from __future__ import annotations

import secrets

import msgspec

from coopnode.actors.identity.answers import answer, passcode_refusal, refused
from coopnode.actors.identity.context import IdentityContext
from coopnode.actors.identity.messages import Answer, FlowAnswer, FlowStep, IdentityReason, Refused
from coopnode.actors.identity.store import Tx
from coopnode.actors.notify import mails
from coopnode.actors.notify.messages import MailMessage
from coopnode.domain import passcodes
from coopnode.domain.identity import (
    FlowKind,
    FlowRecord,
    FlowState,
    digest,
    flow_expired,
    step_allowed,
)
from coopnode.domain.passcodes import PasscodePurpose, PasscodeReason

# 128 bits, as OWASP's session guidance asks for sessions; flows are bearer handles too.
FLOW_ID_BYTES = 16


class Flows:
    def __init__(self, context: IdentityContext) -> None:
        self.context = context

    # Flow records -------------------------------------------------------------------------

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
        now_s = self.context.clock()
        flow = FlowRecord(
            kind=kind,
            state=state,
            subject=subject,
            passcode_key=passcode_key,
            created_at_s=now_s,
            expires_at_s=now_s + self.context.bounds.flow_ttl_s,
            **fields,  # type: ignore[arg-type]
        )
        tx.put_flow(digest(flow_id), flow)
        return flow_id, flow

    def load_flow(self, tx: Tx, step: FlowStep) -> FlowRecord | Refused:
        """The flow a step belongs to, if it is live and the step comes in order."""
        flow = tx.flow(digest(step.flow_id))
        if flow is None or flow.kind is not step.kind:
            return refused(IdentityReason.NOT_FOUND, "this flow does not exist; start again")
        if flow_expired(flow, self.context.clock()):
            return refused(IdentityReason.FLOW_EXPIRED, "this flow has expired; start again")
        if not step_allowed(flow.kind, step.step, flow.state):
            return refused(
                IdentityReason.OUT_OF_ORDER,
                f"step {step.step!r} cannot be taken now (the flow is at {flow.state.value!r})",
            )
        return flow

    @staticmethod
    def save_flow(tx: Tx, flow_id: str, flow: FlowRecord, **changes: object) -> FlowRecord:
        updated = msgspec.structs.replace(flow, **changes)
        tx.put_flow(digest(flow_id), updated)
        return updated

    @staticmethod
    def flow_answer(flow_id: str, flow: FlowRecord, **extra: object) -> FlowAnswer:
        return FlowAnswer(flow_id=flow_id, kind=flow.kind, state=flow.state, **extra)  # type: ignore[arg-type]

    def cancel(self, tx: Tx, step: FlowStep, flow: FlowRecord) -> Answer:
        """The "cancel" step every flow has."""
        flow = self.save_flow(tx, step.flow_id, flow, state=FlowState.CANCELLED)
        return answer(self.flow_answer(step.flow_id, flow))

    # Codes --------------------------------------------------------------------------------

    def issue_code(
        self, tx: Tx, passcode_key: str, purpose: PasscodePurpose, destination: str
    ) -> passcodes.IssueResult:
        state = tx.passcode(passcode_key)
        state, result = passcodes.issue(
            state,
            key=self.context.keys.passcode_key,
            purpose=purpose,
            destination=destination,
            now_s=self.context.clock(),
            policy=self.context.policy,
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
            key=self.context.keys.passcode_key,
            purpose=purpose,
            code=code,
            now_s=self.context.clock(),
            policy=self.context.policy,
        )
        tx.put_passcode(state)
        if result.reason is PasscodeReason.OK:
            return None
        return passcode_refusal(result.reason, attempts_left=result.attempts_left)

    def resend_after_s(self, tx: Tx, passcode_key: str) -> int:
        state = tx.passcode(passcode_key)
        if not state.sent_at_s:
            return 0
        elapsed_s = self.context.clock() - state.sent_at_s[-1]
        return max(0, int(self.context.policy.passcode_resend_cooldown_s - elapsed_s + 0.999))

    def send_code(
        self, tx: Tx, flow: FlowRecord, purpose: PasscodePurpose, destination: str
    ) -> tuple[str, int] | Answer:
        """Mint a code for the flow's passcode record: the code and the seconds before
        another may be sent, or a refusal."""
        issued = self.issue_code(tx, flow.passcode_key, purpose, destination)
        if issued.reason is not PasscodeReason.OK:
            return answer(passcode_refusal(issued.reason, retry_after_s=issued.retry_after_s))
        return issued.code, self.context.policy.passcode_resend_cooldown_s

    def open_code_flow(
        self,
        tx: Tx,
        kind: FlowKind,
        purpose: PasscodePurpose,
        subject: str,
        destination: str,
        **fields: str,
    ) -> tuple[FlowAnswer, FlowRecord, str] | Answer:
        """Mint a code and open a flow that waits for it, known account (`subject`) or not.

        An unknown destination gets a flow and a code like a known one (only nothing is
        sent), so the answers cannot tell them apart; its passcode record is keyed by the
        destination itself.
        """
        passcode_key = f"{kind.value}:{subject or destination}"
        issued = self.issue_code(tx, passcode_key, purpose, destination)
        if issued.reason is not PasscodeReason.OK:
            return answer(passcode_refusal(issued.reason, retry_after_s=issued.retry_after_s))
        flow_id, flow = self.new_flow(
            tx,
            kind,
            FlowState.CODE_SENT,
            subject=subject,
            passcode_key=passcode_key,
            destination=destination,
            **fields,
        )
        reply = self.flow_answer(
            flow_id, flow, resend_after_s=self.context.policy.passcode_resend_cooldown_s
        )
        return reply, flow, issued.code

    # The mails that carry codes -----------------------------------------------------------

    def valid_minutes(self) -> int:
        return max(1, self.context.policy.passcode_ttl_s // 60)

    @staticmethod
    def mail(to: str, text: mails.MailText, kind: str) -> MailMessage:
        return MailMessage(to=to, subject=text.subject, body=text.body, kind=kind)

    def verification_mail(self, to: str, code: str, kind: str) -> MailMessage:
        text = mails.verification_code_mail(code=code, valid_minutes=self.valid_minutes())
        return self.mail(to, text, kind)
