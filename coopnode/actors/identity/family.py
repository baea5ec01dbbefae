"""Family access (FLOWS §3 step 5): a member lets the holder of a mail address read their
history, and takes it back.

The grant is kept under the address, whether or not an account has it yet. A new grant
mails the address an invitation, within two daily bounds (from one member, and to one
address), so a loop of grants and revokes cannot mail an inbox the member's name without
end. What the guardian does with the invitation is in `guardian`.
"""

from __future__ import annotations

from coopnode.actors.identity.answers import answer, refused
from coopnode.actors.identity.context import IdentityContext
from coopnode.actors.identity.messages import (
    Answer,
    Done,
    Family,
    FamilyGrant,
    FamilyList,
    FamilyPerson,
    FamilyRevoke,
    IdentityReason,
    Refused,
)
from coopnode.actors.identity.store import Tx
from coopnode.actors.notify import mails
from coopnode.actors.notify.messages import MailMessage
from coopnode.domain.identity import admit_send, mask_mail, normalise_mail

# The most guardians one member may name (parents and perhaps a grandparent); a constant
# rather than a setting, since it bounds a page's list and not any co-op's policy.
FAMILY_GUARDIANS_MAX = 4
# The window of the family invitations' daily bounds (identity.family_invitations_*).
_DAY_S = 86_400


class FamilyAccess:
    def __init__(self, context: IdentityContext) -> None:
        self.context = context

    def grant(self, request: FamilyGrant) -> Answer:
        """Let the holder of a mail address read the member's history, and invite them.

        The answer is the same whether or not an account has the address, so the form
        cannot tell a member who else has an account. A member holding the address signs
        in to the portal as usual; anyone else confirms the address with a code and sets a
        password at `/portal/guardian` (`guardian`), then signs in as a guardian.
        """
        context = self.context
        mail = normalise_mail(request.guardian_mail)
        with context.store.write() as tx:
            member = tx.account(request.member_no)
            if member is None:
                return answer(refused(IdentityReason.NOT_FOUND, "no such member"))
            if member.mail == mail:
                return answer(
                    refused(IdentityReason.FAMILY_SELF, "a member is not their own guardian")
                )
            guardians = tx.guardians_of(request.member_no)
            if mail in guardians:
                return answer(Done(message="family access granted"))
            if len(guardians) >= FAMILY_GUARDIANS_MAX:
                return answer(refused(IdentityReason.FAMILY_TOO_MANY, "too many guardians"))
            wait_s = self._admit_invitation(tx, request.member_no, mail)
            if wait_s:
                return answer(
                    refused(
                        IdentityReason.FAMILY_INVITATIONS_EXHAUSTED,
                        "too many family invitations today; try again later",
                        retry_after_s=wait_s,
                    )
                )
            tx.put_family(request.member_no, mail)
            tx.append_audit(
                at_s=context.clock(),
                actor=request.member_no,
                action="family.grant",
                target=mask_mail(mail),
            )
            member_account = tx.account_by_mail(mail) is not None
        path = "/portal/sign-in" if member_account else "/portal/guardian"
        text = mails.family_invitation_mail(
            member_name=member.name,
            url=f"{context.bounds.portal_base_url}{path}",
            member_account=member_account,
        )
        invitation = MailMessage(to=mail, subject=text.subject, body=text.body, kind="family")
        return answer(Done(message="family access granted"), [invitation])

    def _admit_invitation(self, tx: Tx, member_no: str, mail: str) -> int:
        """Count an invitation from `member_no` to `mail` against both daily bounds; the
        seconds until one may be sent when either is spent (nothing counted then)."""
        bounds = self.context.bounds
        now_s = self.context.clock()
        by_member, by_address = f"family:{member_no}", f"family-to:{mail}"
        member_window, member_wait_s = admit_send(
            tx.send_window(by_member),
            now_s,
            window_s=_DAY_S,
            sends_max=bounds.family_invitations_per_member_per_day_max,
        )
        address_window, address_wait_s = admit_send(
            tx.send_window(by_address),
            now_s,
            window_s=_DAY_S,
            sends_max=bounds.family_invitations_per_address_per_day_max,
        )
        if member_wait_s or address_wait_s:
            return max(member_wait_s, address_wait_s)
        tx.put_send_window(by_member, member_window)
        tx.put_send_window(by_address, address_window)
        return 0

    def revoke(self, request: FamilyRevoke) -> Done | Refused:
        mail = normalise_mail(request.guardian_mail)
        with self.context.store.write() as tx:
            if not tx.delete_family(request.member_no, mail):
                return refused(IdentityReason.NOT_FOUND, "no such family access")
            tx.append_audit(
                at_s=self.context.clock(),
                actor=request.member_no,
                action="family.revoke",
                target=mask_mail(mail),
            )
        return Done(message="family access revoked")

    def listing(self, request: FamilyList) -> Family:
        """Both ends of one account's family access: its guardians and its wards."""
        with self.context.store.read() as tx:
            account = tx.account(request.member_no)
            guardian_mails = tx.guardians_of(request.member_no)
            numbers = tx.wards_of(account.mail) if account is not None else []
            wards = [tx.account(number) for number in numbers]
        return Family(
            guardians=[
                FamilyPerson(member_no="", name="", masked_mail=mask_mail(mail), mail=mail)
                for mail in guardian_mails
            ],
            wards=[
                FamilyPerson(member_no=a.member_no, name=a.name, masked_mail=mask_mail(a.mail))
                for a in wards
                if a is not None
            ],
        )
