"""The member changes their mail address on the portal (FLOWS §1).

    member_found → current_code_sent → current_verified → new_code_sent → done
                                                          (cancel from any live state)

The member is found by member number and birth date (wrong pairs lock the number typed,
as wrong passwords do), proves the current address with a code, then the new one with
another. A member who has used e-money changes the address only at the co-op counter
(`staff`), so the wallet is asked at the start and again at the end.
"""

from __future__ import annotations

import hmac

import msgspec

from coopnode.actors.identity.answers import answer, busy, invalid, refused, unknown_step
from coopnode.actors.identity.context import IdentityContext
from coopnode.actors.identity.flows import Flows
from coopnode.actors.identity.messages import (
    Answer,
    FlowStep,
    IdentityReason,
    MailChangeStart,
    Refused,
)
from coopnode.actors.identity.store import Tx
from coopnode.actors.notify import mails
from coopnode.actors.notify.messages import MailMessage
from coopnode.domain.errors import InvalidInput
from coopnode.domain.identity import (
    Account,
    FlowKind,
    FlowRecord,
    FlowState,
    Throttle,
    mask_mail,
    normalise_mail,
    throttle_wait_s,
)
from coopnode.domain.messages import GetWallet, WalletView
from coopnode.domain.passcodes import PasscodePurpose


def _emoney_refusal() -> Refused:
    return refused(
        IdentityReason.EMONEY_IN_USE,
        "e-money has been used, so the address can only be changed at the co-op counter",
    )


def _gone() -> Answer:
    return answer(refused(IdentityReason.NOT_FOUND, "the member no longer exists"))


class MailChange:
    def __init__(self, context: IdentityContext, flows: Flows) -> None:
        self.context = context
        self.flows = flows

    async def _emoney_used(self, member_no: str) -> bool | None:
        """Whether the member has used e-money; None when the wallet cannot say."""
        result = await self.context.wallet.submit(GetWallet(member_no=member_no))
        return result.emoney_used if isinstance(result, WalletView) else None

    def _mail(self, to: str, code: str) -> MailMessage:
        text = mails.mail_change_passcode_mail(
            passcode=code,
            passcode_entry_url=f"{self.context.bounds.portal_base_url}/portal/mail-change/passcode",
            valid_minutes=self.flows.valid_minutes(),
        )
        return self.flows.mail(to, text, "mail_change")

    async def start(self, request: MailChangeStart) -> Answer:
        """Member number and birth date → the masked current address, if they match."""
        context = self.context
        member_no = request.member_no.strip()
        throttle_key = f"lookup:{member_no}"
        with context.store.read() as tx:
            wait_s = throttle_wait_s(tx.throttle(throttle_key), context.clock())
            account = (
                tx.account(member_no) if len(member_no) == 12 and member_no.isdigit() else None
            )
        if wait_s:
            return answer(
                refused(
                    IdentityReason.LOCKED, "too many tries; try again later", retry_after_s=wait_s
                )
            )
        matches = account is not None and hmac.compare_digest(
            account.birth_date.encode(), request.birth_date.strip().encode()
        )
        if account is None or not matches:
            with context.store.write() as tx:
                tx.put_throttle(throttle_key, context.failed(tx.throttle(throttle_key)))
            return answer(
                refused(
                    IdentityReason.NO_MATCH, "no member matches this member number and birth date"
                )
            )
        used = await self._emoney_used(account.member_no)
        if used is None:
            return busy()
        if used:
            return answer(_emoney_refusal())
        with context.store.write() as tx:
            tx.put_throttle(throttle_key, Throttle())
            flow_id, flow = self.flows.new_flow(
                tx,
                FlowKind.MAIL_CHANGE,
                FlowState.MEMBER_FOUND,
                subject=account.member_no,
                passcode_key=f"{FlowKind.MAIL_CHANGE.value}:{account.member_no}",
                destination=account.mail,
            )
        return answer(self.flows.flow_answer(flow_id, flow, masked_mail=mask_mail(account.mail)))

    async def step(self, step: FlowStep) -> Answer:
        if step.step == "verify_new":
            return await self._finish(step)
        flows = self.flows
        with self.context.store.write() as tx:
            flow = flows.load_flow(tx, step)
            if not isinstance(flow, FlowRecord):
                return answer(flow)
            account = tx.account(flow.subject)
            if account is None:
                return _gone()
            match step.step:
                case "send_current":
                    return self._send(tx, step, flow, account.mail, FlowState.CURRENT_CODE_SENT)
                case "verify_current":
                    problem = flows.check_code(
                        tx, flow, PasscodePurpose.MAIL_CHANGE, account.mail, step.code
                    )
                    if problem is not None:
                        return answer(problem)
                    flow = flows.save_flow(tx, step.flow_id, flow, state=FlowState.CURRENT_VERIFIED)
                    return answer(flows.flow_answer(step.flow_id, flow))
                case "new_address":
                    return self._new_address(tx, step, flow, account)
                case "resend":
                    return self._send(tx, step, flow, flow.new_mail, FlowState.NEW_CODE_SENT)
                case "cancel":
                    return flows.cancel(tx, step, flow)
        return unknown_step(step.step)

    def _new_address(self, tx: Tx, step: FlowStep, flow: FlowRecord, account: Account) -> Answer:
        try:
            new_mail = normalise_mail(step.mail)
        except InvalidInput as error:
            return invalid(error)
        if new_mail == account.mail:
            return answer(refused(IdentityReason.INVALID_INPUT, "this is the current address"))
        # The new address has a cool-down and an hourly cap of its own: its code follows the
        # first one by seconds, as FLOWS §1 has it.
        flow = msgspec.structs.replace(
            flow, new_mail=new_mail, passcode_key=f"mail_change_new:{account.member_no}"
        )
        return self._send(tx, step, flow, new_mail, FlowState.NEW_CODE_SENT)

    def _send(self, tx: Tx, step: FlowStep, flow: FlowRecord, to: str, state: FlowState) -> Answer:
        context, flows = self.context, self.flows
        double = context.clock() - flow.last_sent_at_s < context.bounds.double_submit_window_s
        if double and flow.state is state and flow.destination == to:
            # The same send pressed twice: the code is on its way, send no second one.
            resend_after_s = flows.resend_after_s(tx, flow.passcode_key)
            return answer(flows.flow_answer(step.flow_id, flow, resend_after_s=resend_after_s))
        sent = flows.send_code(tx, flow, PasscodePurpose.MAIL_CHANGE, to)
        if isinstance(sent, Answer):
            return sent
        code, cooldown_s = sent
        flow = flows.save_flow(
            tx, step.flow_id, flow, state=state, destination=to, last_sent_at_s=context.clock()
        )
        reply = flows.flow_answer(
            step.flow_id, flow, masked_mail=mask_mail(to), resend_after_s=cooldown_s
        )
        return answer(reply, [self._mail(to, code)])

    async def _finish(self, step: FlowStep) -> Answer:
        flows = self.flows
        with self.context.store.write() as tx:
            flow = flows.load_flow(tx, step)
            if not isinstance(flow, FlowRecord):
                return answer(flow)
            problem = flows.check_code(
                tx, flow, PasscodePurpose.MAIL_CHANGE, flow.new_mail, step.code
            )
            if problem is not None:
                return answer(problem)
            flow = flows.save_flow(tx, step.flow_id, flow, state=FlowState.VERIFIED)
        # The member may have paid with e-money since the flow started: ask again.
        used = await self._emoney_used(flow.subject)
        with self.context.store.write() as tx:
            if used:
                flows.save_flow(tx, step.flow_id, flow, state=FlowState.CANCELLED)
                return answer(_emoney_refusal())
            if used is None:
                flows.save_flow(tx, step.flow_id, flow, state=FlowState.NEW_CODE_SENT)
                return busy()
            return self._change_mail(tx, step.flow_id, flow)

    def _change_mail(self, tx: Tx, flow_id: str, flow: FlowRecord) -> Answer:
        account = tx.account(flow.subject)
        if account is None:
            return _gone()
        if tx.held_by_another("mail_index", flow.new_mail, account.member_no) is not None:
            self.flows.save_flow(tx, flow_id, flow, state=FlowState.CANCELLED)
            return answer(refused(IdentityReason.MAIL_IN_USE, "this address is already registered"))
        tx.put_account(msgspec.structs.replace(account, mail=flow.new_mail))
        # Sessions opened with the old address end with it.
        tx.delete_sessions_of(account.member_no)
        done = self.flows.save_flow(tx, flow_id, flow, state=FlowState.DONE)
        return answer(self.flows.flow_answer(flow_id, done, masked_mail=mask_mail(flow.new_mail)))
