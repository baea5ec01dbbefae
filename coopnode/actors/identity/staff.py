"""What co-op staff do to accounts: create staff accounts, resume a suspended member,
change a member's address at the counter, and read and write the audit log.

Staff sign in through `signin` (a password, then their authenticator app); every change
here is written to the audit log in the same transaction as the change itself.
"""

from __future__ import annotations

import msgspec

from coopnode.actors.identity.answers import answer, busy, password_refusal, refused
from coopnode.actors.identity.context import IdentityContext
from coopnode.actors.identity.messages import (
    Answer,
    AuditEntryView,
    AuditList,
    AuditPage,
    AuditRecord,
    CreateStaff,
    Done,
    IdentityReason,
    StaffChangeMail,
    StaffCreated,
    StaffResume,
)
from coopnode.actors.identity.passwords import HasherBusy
from coopnode.domain import passcodes
from coopnode.domain.identity import (
    StaffAccount,
    check_password,
    check_staff_id,
    mask_mail,
    normalise_mail,
    password_bytes,
)
from coopnode.domain.messages import Declined, Resume, StatusChanged
from coopnode.domain.passcodes import TotpState

# Staff passwords are at least this long whatever the members' minimum is: a staff
# account reaches every member.
STAFF_PASSWORD_MIN_CHARS = 12


class Staff:
    def __init__(self, context: IdentityContext) -> None:
        self.context = context

    async def create(self, request: CreateStaff) -> Answer:
        context = self.context
        staff_id = check_staff_id(request.staff_id.strip())
        problem = check_password(
            request.password,
            min_chars=max(STAFF_PASSWORD_MIN_CHARS, context.bounds.password_min_chars),
            max_chars=context.bounds.password_max_chars,
            context=(staff_id,),
        )
        if problem is not None:
            return password_refusal(problem)
        with context.store.read() as tx:
            if tx.staff(staff_id) is not None:
                return answer(refused(IdentityReason.CONFLICT, f"staff {staff_id} exists already"))
        try:
            hashed = await context.hasher.hash(password_bytes(request.password))
        except HasherBusy:
            return busy()
        secret = passcodes.totp_secret_new()
        with context.store.write() as tx:
            if tx.staff(staff_id) is not None:
                return answer(refused(IdentityReason.CONFLICT, f"staff {staff_id} exists already"))
            tx.put_staff(
                StaffAccount(
                    staff_id=staff_id,
                    name=request.name,
                    password_hash=hashed,
                    totp_sealed=context.keys.seal(msgspec.msgpack.encode(TotpState(secret=secret))),
                    created_at_s=context.clock(),
                    role=request.role,
                )
            )
            tx.append_audit(
                at_s=context.clock(),
                actor=request.actor,
                action="staff.create",
                target=staff_id,
                detail=request.role.value,
            )
        uri = passcodes.totp_uri(secret, staff_id, context.settings.verification.totp_issuer)
        return answer(StaffCreated(staff_id=staff_id, otpauth_uri=uri, secret=secret))

    async def resume(self, request: StaffResume) -> Answer:
        """Resume a suspended account: the wallet, and every lock-out of the member. The
        front that asked then takes the member's card off the tills' deny list (this actor
        does not hold the front's copy of the registry)."""
        context = self.context
        with context.store.read() as tx:
            account = tx.account(request.member_no)
        if account is None:
            return answer(refused(IdentityReason.NOT_FOUND, "no such member"))
        result = await context.wallet.submit(Resume(member_no=request.member_no))
        if not isinstance(result, StatusChanged):
            message = (
                result.message if isinstance(result, Declined) else "the wallet did not answer"
            )
            return answer(refused(IdentityReason.WALLET, message))
        with context.store.write() as tx:
            lifted = tx.clear_throttles(f":{account.mail}") + tx.clear_throttles(
                f":{account.member_no}"
            )
            tx.append_audit(
                at_s=context.clock(),
                actor=request.actor,
                action="member.resume",
                target=request.member_no,
                detail=f"wallet {result.status.value}; {lifted} lock-outs lifted",
            )
        return answer(Done(message="the account is active again"))

    def change_mail(self, request: StaffChangeMail) -> Answer:
        """The counter's address change, for members who have used e-money (FLOWS §1)."""
        mail = normalise_mail(request.mail)
        with self.context.store.write() as tx:
            account = tx.account(request.member_no)
            if account is None:
                return answer(refused(IdentityReason.NOT_FOUND, "no such member"))
            if tx.held_by_another("mail_index", mail, account.member_no) is not None:
                return answer(
                    refused(IdentityReason.MAIL_IN_USE, "this address belongs to another member")
                )
            tx.put_account(msgspec.structs.replace(account, mail=mail))
            tx.delete_sessions_of(account.member_no)
            tx.append_audit(
                at_s=self.context.clock(),
                actor=request.actor,
                action="member.change_mail",
                target=account.member_no,
                detail=f"{mask_mail(account.mail)} → {mask_mail(mail)}",
            )
        return answer(Done(message="the mail address is changed"))

    def audit_list(self, request: AuditList) -> AuditPage:
        limit = max(1, min(request.limit, self.context.bounds.audit_page_max))
        with self.context.store.read() as tx:
            entries = tx.audit_page(max(0, request.before_seq), limit)
        views = [AuditEntryView(**msgspec.structs.asdict(entry)) for entry in entries]
        next_before = entries[-1].seq if len(entries) == limit and entries[-1].seq > 1 else 0
        return AuditPage(entries=views, next_before_seq=next_before)

    def audit_record(self, request: AuditRecord) -> Done:
        """A staff action the front carried out (a wallet change), for the audit log."""
        with self.context.store.write() as tx:
            tx.append_audit(
                at_s=self.context.clock(),
                actor=request.actor,
                action=request.action,
                target=request.target,
                detail=request.detail,
            )
        return Done(message="recorded")
