"""E-money sign-in and sign-up (FLOWS §5): a code to the address or the phone on file.

    wallet login   code_sent → done (a wallet session)

The first sign-in registers the member's e-money account (the session says so). An
identifier that matches nobody gets a flow and the same answers, and no code is sent.
"""

from __future__ import annotations

import msgspec

from coopnode.actors.identity.answers import answer, invalid, refused, unknown_step
from coopnode.actors.identity.context import IdentityContext
from coopnode.actors.identity.flows import Flows
from coopnode.actors.identity.messages import Answer, FlowStep, IdentityReason, WalletLoginStart
from coopnode.actors.identity.sessions import Sessions
from coopnode.actors.identity.store import Tx
from coopnode.actors.notify import mails
from coopnode.actors.notify.messages import Notification, SmsMessage
from coopnode.domain.errors import InvalidInput
from coopnode.domain.identity import (
    FlowKind,
    FlowRecord,
    FlowState,
    SessionKind,
    is_phone_like,
    normalise_mail,
    normalise_phone,
)
from coopnode.domain.passcodes import PasscodePurpose


class WalletSignIn:
    def __init__(self, context: IdentityContext, flows: Flows, sessions: Sessions) -> None:
        self.context = context
        self.flows = flows
        self.sessions = sessions

    async def start(self, request: WalletLoginStart) -> Answer:
        try:
            if is_phone_like(request.identifier):
                channel, identifier = "sms", normalise_phone(request.identifier)
            else:
                channel, identifier = "mail", normalise_mail(request.identifier)
        except InvalidInput as error:
            return invalid(error)
        with self.context.store.write() as tx:
            by = tx.account_by_phone if channel == "sms" else tx.account_by_mail
            account = by(identifier)
            opened = self.flows.open_code_flow(
                tx,
                FlowKind.WALLET_LOGIN,
                PasscodePurpose.WALLET_LOGIN,
                account.member_no if account is not None else "",
                identifier,
                channel=channel,
            )
        if isinstance(opened, Answer):
            return opened
        reply, flow, code = opened
        return answer(reply, self._code_message(flow, code) if account is not None else [])

    def _code_message(self, flow: FlowRecord, code: str) -> list[Notification]:
        if flow.channel == "sms":
            text = mails.sms_passcode_text(code=code, valid_minutes=self.flows.valid_minutes())
            return [SmsMessage(to=flow.destination, body=text, kind="wallet_login")]
        return [self.flows.verification_mail(flow.destination, code, "wallet_login")]

    async def step(self, step: FlowStep) -> Answer:
        flows = self.flows
        with self.context.store.write() as tx:
            flow = flows.load_flow(tx, step)
            if not isinstance(flow, FlowRecord):
                return answer(flow)
            match step.step:
                case "resend":
                    sent = flows.send_code(tx, flow, PasscodePurpose.WALLET_LOGIN, flow.destination)
                    if isinstance(sent, Answer):
                        return sent
                    notes = self._code_message(flow, sent[0]) if flow.subject else []
                    return answer(
                        flows.flow_answer(step.flow_id, flow, resend_after_s=sent[1]), notes
                    )
                case "cancel":
                    return flows.cancel(tx, step, flow)
                case "verify":
                    return self._verify(tx, step, flow)
        return unknown_step(step.step)

    def _verify(self, tx: Tx, step: FlowStep, flow: FlowRecord) -> Answer:
        problem = self.flows.check_code(
            tx, flow, PasscodePurpose.WALLET_LOGIN, flow.destination, step.code
        )
        if problem is not None:
            return answer(problem)
        account = tx.account(flow.subject) if flow.subject else None
        if account is None:
            return answer(refused(IdentityReason.NOT_FOUND, "the member no longer exists"))
        first = not account.wallet_registered_at_s
        if first:
            tx.put_account(
                msgspec.structs.replace(account, wallet_registered_at_s=self.context.clock())
            )
        self.flows.save_flow(tx, step.flow_id, flow, state=FlowState.DONE)
        issued, _ = self.sessions.open(
            tx, SessionKind.WALLET, account.member_no, step.old_session_id, registered_now=first
        )
        return answer(issued)
