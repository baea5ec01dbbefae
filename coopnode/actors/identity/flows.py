"""The member flows of FLOWS §1, §2 and §5 as server-side state machines.

Each flow is a `FlowRecord` under the digest of a random flow id that the client holds.
A step names the flow and what it wants to do; `domain.identity.STEP_FROM` says from
which states it may be taken, and anything else is refused as out of order without
touching the flow.

    mail change (§1)   member_found → current_code_sent → current_verified
                       → new_code_sent → done             (cancel from any live state)
    password (§2)      code_sent → verified → done        (also the forgotten password)
    guardian setup     code_sent → verified → done        (the same steps, for a guardian
                                                           invited by a member, §3 step 5)
    wallet login (§5)  code_sent → done (a wallet session)

An address, phone or member number that matches nobody starts a flow all the same: a code
is minted and throttled exactly as for a member but sent nowhere, so every answer and
every later step reads the same whether or not the account exists.
"""

from __future__ import annotations

import hmac

import msgspec

from coopnode.actors.identity.core import (
    IdentityCore,
    WalletPort,
    answer,
    passcode_refusal,
    refused,
)
from coopnode.actors.identity.messages import (
    Answer,
    ErrorCode,
    FlowAnswer,
    FlowStep,
    GuardianStart,
    MailChangeStart,
    PasswordStart,
    Refused,
    WalletLoginStart,
)
from coopnode.actors.identity.passwords import HasherBusy, PasswordHasher
from coopnode.actors.identity.store import Tx
from coopnode.actors.notify import mails
from coopnode.actors.notify.messages import MailMessage, Notification, SmsMessage
from coopnode.domain.errors import InvalidInput
from coopnode.domain.identity import (
    PASSWORD_MESSAGES,
    FlowKind,
    FlowRecord,
    FlowState,
    GuardianAccount,
    PasswordProblem,
    SessionKind,
    Throttle,
    check_password,
    is_phone_like,
    mask_mail,
    normalise_mail,
    normalise_phone,
    password_bytes,
    throttle_failed,
    throttle_wait_s,
)
from coopnode.domain.messages import GetWallet, WalletView
from coopnode.domain.passcodes import PasscodePurpose, PasscodeReason
from coopnode.settings import Settings

# The code each flow that sets a password sends, for members (§2) and guardians.
_SETUP_PURPOSE: dict[FlowKind, PasscodePurpose] = {
    FlowKind.PASSWORD: PasscodePurpose.PASSWORD_SETUP,
    FlowKind.GUARDIAN_SETUP: PasscodePurpose.GUARDIAN_SETUP,
}


def busy() -> Answer:
    return answer(
        refused(503, ErrorCode.BUSY, "the node is busy; try again in a moment", retry_after_s=1)
    )


def invalid(error: InvalidInput) -> Answer:
    return answer(refused(400, error.reason, error.message))


class IdentityFlows(IdentityCore):
    def __init__(
        self,
        settings: Settings,
        store: object,
        *,
        hasher: PasswordHasher,
        wallet: WalletPort,
        **keys: object,
    ) -> None:
        super().__init__(settings, store, **keys)  # type: ignore[arg-type]
        self.hasher = hasher
        self.wallet = wallet

    # Helpers ------------------------------------------------------------------------------

    def _mail(self, to: str, text: mails.MailText, kind: str) -> MailMessage:
        return MailMessage(to=to, subject=text.subject, body=text.body, kind=kind)

    def _verification_mail(self, to: str, code: str, kind: str) -> MailMessage:
        text = mails.verification_code_mail(code=code, valid_minutes=self.valid_minutes())
        return self._mail(to, text, kind)

    def _mail_change_mail(self, to: str, code: str) -> MailMessage:
        text = mails.mail_change_passcode_mail(
            passcode=code,
            passcode_entry_url=f"{self.bounds.portal_base_url}/portal/mail-change/passcode",
            valid_minutes=self.valid_minutes(),
        )
        return self._mail(to, text, "mail_change")

    async def emoney_used(self, member_no: str) -> bool | None:
        """Whether the member has used e-money; None when the wallet cannot say."""
        result = await self.wallet.submit(GetWallet(member_no=member_no))
        return result.emoney_used if isinstance(result, WalletView) else None

    def _send(
        self, tx: Tx, flow: FlowRecord, purpose: PasscodePurpose, destination: str
    ) -> tuple[str, int] | Answer:
        """Mint a code for the flow's passcode record; the code, or a refusal."""
        issued = self.issue_code(tx, flow.passcode_key, purpose, destination)
        if issued.reason is not PasscodeReason.OK:
            return answer(passcode_refusal(issued.reason, retry_after_s=issued.retry_after_s))
        return issued.code, self.policy.passcode_resend_cooldown_s

    def _open_code_flow(
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
            flow_id, flow, resend_after_s=self.policy.passcode_resend_cooldown_s
        )
        return reply, flow, issued.code

    # Mail change (FLOWS §1) -------------------------------------------------------------------

    async def mail_change_start(self, request: MailChangeStart) -> Answer:
        """Member number and birth date → the masked current address, if they match."""
        member_no = request.member_no.strip()
        throttle_key = f"lookup:{member_no}"
        with self.store.read() as tx:
            wait_s = throttle_wait_s(tx.throttle(throttle_key), self.clock())
            account = (
                tx.account(member_no) if len(member_no) == 12 and member_no.isdigit() else None
            )
        if wait_s:
            return answer(
                refused(
                    429, ErrorCode.LOCKED, "too many tries; try again later", retry_after_s=wait_s
                )
            )
        matches = account is not None and hmac.compare_digest(
            account.birth_date.encode(), request.birth_date.strip().encode()
        )
        if account is None or not matches:
            with self.store.write() as tx:
                tx.put_throttle(throttle_key, self._failed(tx.throttle(throttle_key)))
            return answer(
                refused(
                    404, ErrorCode.NO_MATCH, "no member matches this member number and birth date"
                )
            )
        used = await self.emoney_used(account.member_no)
        if used is None:
            return busy()
        if used:
            return answer(self._emoney_refusal())
        with self.store.write() as tx:
            tx.put_throttle(throttle_key, Throttle())
            flow_id, flow = self.new_flow(
                tx,
                FlowKind.MAIL_CHANGE,
                FlowState.MEMBER_FOUND,
                subject=account.member_no,
                passcode_key=f"{FlowKind.MAIL_CHANGE.value}:{account.member_no}",
                destination=account.mail,
            )
        return answer(self.flow_answer(flow_id, flow, masked_mail=mask_mail(account.mail)))

    def _failed(self, throttle: Throttle) -> Throttle:
        return throttle_failed(
            throttle,
            self.clock(),
            failures_max=self.bounds.signin_failures_max,
            lockout_s=self.bounds.lockout_s,
        )

    @staticmethod
    def _emoney_refusal() -> Refused:
        return refused(
            409,
            ErrorCode.EMONEY_IN_USE,
            "e-money has been used, so the address can only be changed at the co-op counter",
        )

    async def mail_change_step(self, step: FlowStep) -> Answer:
        if step.step == "verify_new":
            return await self._mail_change_finish(step)
        with self.store.write() as tx:
            flow = self.load_flow(tx, step)
            if not isinstance(flow, FlowRecord):
                return answer(flow)
            account = tx.account(flow.subject)
            if account is None:
                return answer(refused(404, ErrorCode.NOT_FOUND, "the member no longer exists"))
            match step.step:
                case "send_current":
                    return self._mail_change_send(
                        tx, step, flow, account.mail, FlowState.CURRENT_CODE_SENT
                    )
                case "verify_current":
                    problem = self.check_code(
                        tx, flow, PasscodePurpose.MAIL_CHANGE, account.mail, step.code
                    )
                    if problem is not None:
                        return answer(problem)
                    flow = self.save_flow(tx, step.flow_id, flow, state=FlowState.CURRENT_VERIFIED)
                    return answer(self.flow_answer(step.flow_id, flow))
                case "new_address":
                    try:
                        new_mail = normalise_mail(step.mail)
                    except InvalidInput as error:
                        return invalid(error)
                    if new_mail == account.mail:
                        return answer(
                            refused(400, ErrorCode.INVALID_INPUT, "this is the current address")
                        )
                    # The new address has a cool-down and an hourly cap of its own: its code
                    # follows the first one by seconds, as FLOWS §1 has it.
                    flow = msgspec.structs.replace(
                        flow, new_mail=new_mail, passcode_key=f"mail_change_new:{account.member_no}"
                    )
                    return self._mail_change_send(tx, step, flow, new_mail, FlowState.NEW_CODE_SENT)
                case "resend":
                    return self._mail_change_send(
                        tx, step, flow, flow.new_mail, FlowState.NEW_CODE_SENT
                    )
                case "cancel":
                    flow = self.save_flow(tx, step.flow_id, flow, state=FlowState.CANCELLED)
                    return answer(self.flow_answer(step.flow_id, flow))
        return answer(refused(400, ErrorCode.INVALID_INPUT, f"unknown step {step.step!r}"))

    def _mail_change_send(
        self, tx: Tx, step: FlowStep, flow: FlowRecord, to: str, state: FlowState
    ) -> Answer:
        double = self.clock() - flow.last_sent_at_s < self.bounds.double_submit_window_s
        if double and flow.state is state and flow.destination == to:
            # The same send pressed twice: the code is on its way, send no second one.
            return answer(
                self.flow_answer(
                    step.flow_id, flow, resend_after_s=self.resend_after_s(tx, flow.passcode_key)
                )
            )
        sent = self._send(tx, flow, PasscodePurpose.MAIL_CHANGE, to)
        if isinstance(sent, Answer):
            return sent
        code, cooldown_s = sent
        flow = self.save_flow(
            tx, step.flow_id, flow, state=state, destination=to, last_sent_at_s=self.clock()
        )
        reply = self.flow_answer(
            step.flow_id, flow, masked_mail=mask_mail(to), resend_after_s=cooldown_s
        )
        return answer(reply, [self._mail_change_mail(to, code)])

    async def _mail_change_finish(self, step: FlowStep) -> Answer:
        with self.store.write() as tx:
            flow = self.load_flow(tx, step)
            if not isinstance(flow, FlowRecord):
                return answer(flow)
            problem = self.check_code(
                tx, flow, PasscodePurpose.MAIL_CHANGE, flow.new_mail, step.code
            )
            if problem is not None:
                return answer(problem)
            flow = self.save_flow(tx, step.flow_id, flow, state=FlowState.VERIFIED)
        # The member may have paid with e-money since the flow started: ask again.
        used = await self.emoney_used(flow.subject)
        with self.store.write() as tx:
            if used:
                self.save_flow(tx, step.flow_id, flow, state=FlowState.CANCELLED)
                return answer(self._emoney_refusal())
            if used is None:
                self.save_flow(tx, step.flow_id, flow, state=FlowState.NEW_CODE_SENT)
                return busy()
            return self._change_mail(tx, step.flow_id, flow)

    def _change_mail(self, tx: Tx, flow_id: str, flow: FlowRecord) -> Answer:
        account = tx.account(flow.subject)
        owner = tx.index_owner("mail_index", flow.new_mail)
        if account is None:
            return answer(refused(404, ErrorCode.NOT_FOUND, "the member no longer exists"))
        if owner is not None and owner != account.member_no:
            self.save_flow(tx, flow_id, flow, state=FlowState.CANCELLED)
            return answer(refused(409, ErrorCode.MAIL_IN_USE, "this address is already registered"))
        tx.put_account(msgspec.structs.replace(account, mail=flow.new_mail))
        # Sessions opened with the old address end with it.
        tx.delete_sessions_of(account.member_no)
        done = self.save_flow(tx, flow_id, flow, state=FlowState.DONE)
        return answer(self.flow_answer(flow_id, done, masked_mail=mask_mail(flow.new_mail)))

    # Password setting and forgotten password (FLOWS §2) --------------------------------------

    async def password_start(self, request: PasswordStart) -> Answer:
        try:
            mail = normalise_mail(request.mail)
        except InvalidInput as error:
            return invalid(error)
        with self.store.write() as tx:
            account = tx.account_by_mail(mail)
            subject = account.member_no if account is not None else ""
            opened = self._open_code_flow(
                tx, FlowKind.PASSWORD, PasscodePurpose.PASSWORD_SETUP, subject, mail
            )
        if isinstance(opened, Answer):
            return opened
        reply, _, code = opened
        # Nobody is written to for an unknown address; the answer is the same.
        outgoing: list[Notification] = (
            [self._verification_mail(mail, code, "password")] if account is not None else []
        )
        return answer(reply, outgoing)

    async def password_step(self, step: FlowStep) -> Answer:
        """A step of the member's password setting (§2) or of a guardian's invitation."""
        if step.step == "set":
            return await self._password_set(step)
        purpose = _SETUP_PURPOSE[step.kind]
        with self.store.write() as tx:
            flow = self.load_flow(tx, step)
            if not isinstance(flow, FlowRecord):
                return answer(flow)
            match step.step:
                case "verify":
                    problem = self.check_code(tx, flow, purpose, flow.destination, step.code)
                    if problem is not None:
                        return answer(problem)
                    flow = self.save_flow(tx, step.flow_id, flow, state=FlowState.VERIFIED)
                    return answer(self.flow_answer(step.flow_id, flow))
                case "resend":
                    sent = self._send(tx, flow, purpose, flow.destination)
                    if isinstance(sent, Answer):
                        return sent
                    outgoing: list[Notification] = (
                        [self._verification_mail(flow.destination, sent[0], step.kind.value)]
                        if flow.subject
                        else []
                    )
                    return answer(
                        self.flow_answer(step.flow_id, flow, resend_after_s=sent[1]), outgoing
                    )
                case "cancel":
                    flow = self.save_flow(tx, step.flow_id, flow, state=FlowState.CANCELLED)
                    return answer(self.flow_answer(step.flow_id, flow))
        return answer(refused(400, ErrorCode.INVALID_INPUT, f"unknown step {step.step!r}"))

    def _password_problem(self, step: FlowStep, context: tuple[str, ...]) -> PasswordProblem | None:
        if not hmac.compare_digest(step.password.encode(), step.password_confirm.encode()):
            return PasswordProblem.MISMATCH
        return check_password(
            step.password,
            min_chars=self.bounds.password_min_chars,
            max_chars=self.bounds.password_max_chars,
            context=context,
        )

    @staticmethod
    def invited(tx: Tx, mail: str) -> bool:
        """Whether a member granted family access to `mail`, and no member holds it (a
        member signs in to the portal with their own account and sees it there).
        """
        return bool(tx.wards_of(mail)) and tx.account_by_mail(mail) is None

    def _setup_holder(self, tx: Tx, flow: FlowRecord) -> tuple[str, ...] | Refused:
        """What a new password must not contain; a refusal when the flow leads nowhere."""
        if flow.kind is FlowKind.GUARDIAN_SETUP:
            if not flow.subject or not self.invited(tx, flow.subject):
                return refused(404, ErrorCode.NOT_FOUND, "this address has no family access")
            return (flow.subject.partition("@")[0],)
        account = tx.account(flow.subject)
        if account is None:
            return refused(404, ErrorCode.NOT_FOUND, "the member no longer exists")
        return account.mail.partition("@")[0], account.member_no

    def _store_password(self, tx: Tx, flow: FlowRecord, hashed: bytes) -> None:
        """Keep the new hash, end the holder's sessions and lift their sign-in lock-out."""
        now_s = self.clock()
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

    async def _password_set(self, step: FlowStep) -> Answer:
        with self.store.read() as tx:
            flow = self.load_flow(tx, step)
            if not isinstance(flow, FlowRecord):
                return answer(flow)
            holder = self._setup_holder(tx, flow)
        if isinstance(holder, Refused):
            return answer(holder)
        problem = self._password_problem(step, holder)
        if problem is not None:
            return answer(refused(400, f"password_{problem.value}", PASSWORD_MESSAGES[problem]))
        try:
            hashed = await self.hasher.hash(password_bytes(step.password))
        except HasherBusy:
            return busy()
        with self.store.write() as tx:
            # The flow is read again: it may have been finished or cancelled meanwhile (or,
            # for a guardian, every grant revoked).
            flow = self.load_flow(tx, step)
            if not isinstance(flow, FlowRecord) or isinstance(
                self._setup_holder(tx, flow), Refused
            ):
                return answer(
                    refused(409, ErrorCode.OUT_OF_ORDER, "this flow was finished meanwhile")
                )
            self._store_password(tx, flow, hashed)
            flow = self.save_flow(tx, step.flow_id, flow, state=FlowState.DONE)
        return answer(self.flow_answer(step.flow_id, flow))

    # A guardian's invitation (FLOWS §3 step 5) ----------------------------------------------

    async def guardian_start(self, request: GuardianStart) -> Answer:
        """Confirm an invited address with a code, as §2 does for a member's address.

        Any address gets a flow and the same answer; a code is mailed only to an address a
        member invited, so the page tells nobody who was invited and mails nobody else.
        """
        try:
            mail = normalise_mail(request.mail)
        except InvalidInput as error:
            return invalid(error)
        with self.store.write() as tx:
            invited = self.invited(tx, mail)
            opened = self._open_code_flow(
                tx,
                FlowKind.GUARDIAN_SETUP,
                PasscodePurpose.GUARDIAN_SETUP,
                mail if invited else "",
                mail,
            )
        if isinstance(opened, Answer):
            return opened
        reply, _, code = opened
        outgoing: list[Notification] = (
            [self._verification_mail(mail, code, FlowKind.GUARDIAN_SETUP.value)] if invited else []
        )
        return answer(reply, outgoing)

    # E-money sign-in and sign-up (FLOWS §5) ---------------------------------------------------

    async def wallet_login_start(self, request: WalletLoginStart) -> Answer:
        try:
            if is_phone_like(request.identifier):
                channel, identifier = "sms", normalise_phone(request.identifier)
            else:
                channel, identifier = "mail", normalise_mail(request.identifier)
        except InvalidInput as error:
            return invalid(error)
        with self.store.write() as tx:
            by = tx.account_by_phone if channel == "sms" else tx.account_by_mail
            account = by(identifier)
            opened = self._open_code_flow(
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
        return answer(reply, self._wallet_code(flow, code) if account is not None else [])

    def _wallet_code(self, flow: FlowRecord, code: str) -> list[Notification]:
        if flow.channel == "sms":
            text = mails.sms_passcode_text(code=code, valid_minutes=self.valid_minutes())
            return [SmsMessage(to=flow.destination, body=text, kind="wallet_login")]
        return [self._verification_mail(flow.destination, code, "wallet_login")]

    async def wallet_login_step(self, step: FlowStep) -> Answer:
        with self.store.write() as tx:
            flow = self.load_flow(tx, step)
            if not isinstance(flow, FlowRecord):
                return answer(flow)
            match step.step:
                case "resend":
                    sent = self._send(tx, flow, PasscodePurpose.WALLET_LOGIN, flow.destination)
                    if isinstance(sent, Answer):
                        return sent
                    notes = self._wallet_code(flow, sent[0]) if flow.subject else []
                    return answer(
                        self.flow_answer(step.flow_id, flow, resend_after_s=sent[1]), notes
                    )
                case "cancel":
                    flow = self.save_flow(tx, step.flow_id, flow, state=FlowState.CANCELLED)
                    return answer(self.flow_answer(step.flow_id, flow))
                case "verify":
                    problem = self.check_code(
                        tx, flow, PasscodePurpose.WALLET_LOGIN, flow.destination, step.code
                    )
                    if problem is not None:
                        return answer(problem)
                    account = tx.account(flow.subject) if flow.subject else None
                    if account is None:
                        return answer(
                            refused(404, ErrorCode.NOT_FOUND, "the member no longer exists")
                        )
                    first = not account.wallet_registered_at_s
                    if first:
                        tx.put_account(
                            msgspec.structs.replace(account, wallet_registered_at_s=self.clock())
                        )
                    self.save_flow(tx, step.flow_id, flow, state=FlowState.DONE)
                    issued, _ = self.issue_session(
                        tx,
                        SessionKind.WALLET,
                        account.member_no,
                        step.old_session_id,
                        registered_now=first,
                    )
                    return answer(issued)
        return answer(refused(400, ErrorCode.INVALID_INPUT, f"unknown step {step.step!r}"))
