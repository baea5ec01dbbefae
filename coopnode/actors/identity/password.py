"""Setting a password, and the forgotten password (FLOWS §2); a guardian's password too.

    password         code_sent → verified → done   (a member's address)
    guardian setup   code_sent → verified → done   (an address a member invited, §3 step 5)

Both prove the address with a mailed code, then take a new password twice. Setting it ends
the holder's sessions and lifts their sign-in lock-out.
"""

from __future__ import annotations

import hmac

import msgspec

from coopnode.actors.identity.answers import (
    answer,
    busy,
    invalid,
    password_refusal,
    refused,
    unknown_step,
)
from coopnode.actors.identity.context import IdentityContext
from coopnode.actors.identity.flows import Flows
from coopnode.actors.identity.guardian import invited
from coopnode.actors.identity.messages import (
    Answer,
    FlowStep,
    IdentityReason,
    PasswordStart,
    Refused,
)
from coopnode.actors.identity.passwords import HasherBusy
from coopnode.actors.identity.store import Tx
from coopnode.actors.notify.messages import Notification
from coopnode.domain.errors import InvalidInput
from coopnode.domain.identity import (
    FlowKind,
    FlowRecord,
    FlowState,
    GuardianAccount,
    PasswordProblem,
    Throttle,
    check_password,
    mask_mail,
    normalise_mail,
    password_bytes,
)
from coopnode.domain.passcodes import PasscodePurpose

# The code each flow that sets a password sends, for members (§2) and guardians.
_SETUP_PURPOSE: dict[FlowKind, PasscodePurpose] = {
    FlowKind.PASSWORD: PasscodePurpose.PASSWORD_SETUP,
    FlowKind.GUARDIAN_SETUP: PasscodePurpose.GUARDIAN_SETUP,
}


class PasswordSetting:
    def __init__(self, context: IdentityContext, flows: Flows) -> None:
        self.context = context
        self.flows = flows

    async def start(self, request: PasswordStart) -> Answer:
        try:
            mail = normalise_mail(request.mail)
        except InvalidInput as error:
            return invalid(error)
        with self.context.store.write() as tx:
            account = tx.account_by_mail(mail)
            subject = account.member_no if account is not None else ""
            opened = self.flows.open_code_flow(
                tx, FlowKind.PASSWORD, PasscodePurpose.PASSWORD_SETUP, subject, mail
            )
        if isinstance(opened, Answer):
            return opened
        reply, _, code = opened
        # Nobody is written to for an unknown address; the answer is the same.
        outgoing: list[Notification] = (
            [self.flows.verification_mail(mail, code, "password")] if account is not None else []
        )
        return answer(reply, outgoing)

    async def step(self, step: FlowStep) -> Answer:
        """A step of the member's password setting (§2) or of a guardian's invitation."""
        if step.step == "set":
            return await self._set(step)
        flows = self.flows
        purpose = _SETUP_PURPOSE[step.kind]
        with self.context.store.write() as tx:
            flow = flows.load_flow(tx, step)
            if not isinstance(flow, FlowRecord):
                return answer(flow)
            match step.step:
                case "verify":
                    problem = flows.check_code(tx, flow, purpose, flow.destination, step.code)
                    if problem is not None:
                        return answer(problem)
                    flow = flows.save_flow(tx, step.flow_id, flow, state=FlowState.VERIFIED)
                    return answer(flows.flow_answer(step.flow_id, flow))
                case "resend":
                    sent = flows.send_code(tx, flow, purpose, flow.destination)
                    if isinstance(sent, Answer):
                        return sent
                    outgoing: list[Notification] = (
                        [flows.verification_mail(flow.destination, sent[0], step.kind.value)]
                        if flow.subject
                        else []
                    )
                    return answer(
                        flows.flow_answer(step.flow_id, flow, resend_after_s=sent[1]), outgoing
                    )
                case "cancel":
                    return flows.cancel(tx, step, flow)
        return unknown_step(step.step)

    def _problem(self, step: FlowStep, context: tuple[str, ...]) -> PasswordProblem | None:
        if not hmac.compare_digest(step.password.encode(), step.password_confirm.encode()):
            return PasswordProblem.MISMATCH
        return check_password(
            step.password,
            min_chars=self.context.bounds.password_min_chars,
            max_chars=self.context.bounds.password_max_chars,
            context=context,
        )

    @staticmethod
    def _holder(tx: Tx, flow: FlowRecord) -> tuple[str, ...] | Refused:
        """What a new password must not contain; a refusal when the flow leads nowhere."""
        if flow.kind is FlowKind.GUARDIAN_SETUP:
            if not flow.subject or not invited(tx, flow.subject):
                return refused(IdentityReason.NOT_FOUND, "this address has no family access")
            return (flow.subject.partition("@")[0],)
        account = tx.account(flow.subject)
        if account is None:
            return refused(IdentityReason.NOT_FOUND, "the member no longer exists")
        return account.mail.partition("@")[0], account.member_no

    def _store(self, tx: Tx, flow: FlowRecord, hashed: bytes) -> None:
        """Keep the new hash, end the holder's sessions and lift their sign-in lock-out."""
        now_s = self.context.clock()
        if flow.kind is FlowKind.GUARDIAN_SETUP:
            mail = flow.subject
            existing = tx.guardian(mail)
            created_at_s = existing.created_at_s if existing is not None else now_s
            tx.put_guardian(
                GuardianAccount(
                    mail=mail,
                    password_hash=hashed,
                    password_set_at_s=now_s,
                    created_at_s=created_at_s,
                )
            )
            tx.append_audit(
                at_s=now_s,
                actor="guardian",
                action="guardian.password" if existing is not None else "guardian.create",
                target=mask_mail(mail),
            )
        else:
            account = tx.account(flow.subject)
            if account is None:
                raise TypeError("a member's password is stored only after its holder was read")
            tx.put_account(
                msgspec.structs.replace(account, password_hash=hashed, password_set_at_s=now_s)
            )
            mail = account.mail
        tx.delete_sessions_of(flow.subject)
        tx.put_throttle(f"signin:{mail}", Throttle())

    async def _set(self, step: FlowStep) -> Answer:
        flows = self.flows
        with self.context.store.read() as tx:
            flow = flows.load_flow(tx, step)
            if not isinstance(flow, FlowRecord):
                return answer(flow)
            holder = self._holder(tx, flow)
        if isinstance(holder, Refused):
            return answer(holder)
        problem = self._problem(step, holder)
        if problem is not None:
            return password_refusal(problem)
        try:
            hashed = await self.context.hasher.hash(password_bytes(step.password))
        except HasherBusy:
            return busy()
        with self.context.store.write() as tx:
            # The flow is read again: it may have been finished or cancelled meanwhile (or,
            # for a guardian, every grant revoked).
            flow = flows.load_flow(tx, step)
            if not isinstance(flow, FlowRecord) or isinstance(self._holder(tx, flow), Refused):
                return answer(
                    refused(IdentityReason.OUT_OF_ORDER, "this flow was finished meanwhile")
                )
            self._store(tx, flow, hashed)
            flow = flows.save_flow(tx, step.flow_id, flow, state=FlowState.DONE)
        return answer(flows.flow_answer(step.flow_id, flow))
