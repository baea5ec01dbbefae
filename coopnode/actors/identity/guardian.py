"""A guardian who is not a member: accepting a member's invitation, and the members whose
history the guardian may read (FLOWS §3 step 5).

    guardian setup   code_sent → verified → done   (the steps of `password`, for an
                                                    address a member invited)

The guardian then signs in (`signin`) with the address and the password into a session
of its own kind, which only the family view accepts.
"""

from __future__ import annotations

from coopnode.actors.identity.answers import answer, invalid
from coopnode.actors.identity.context import IdentityContext
from coopnode.actors.identity.flows import Flows
from coopnode.actors.identity.messages import (
    Answer,
    Family,
    FamilyPerson,
    GuardianStart,
    GuardianWards,
)
from coopnode.actors.identity.store import Tx
from coopnode.actors.notify.messages import Notification
from coopnode.domain.errors import InvalidInput
from coopnode.domain.identity import FlowKind, mask_mail, normalise_mail
from coopnode.domain.passcodes import PasscodePurpose


def invited(tx: Tx, mail: str) -> bool:
    """Whether a member granted family access to `mail`, and no member holds it (a member
    signs in to the portal with their own account and sees it there).
    """
    return bool(tx.wards_of(mail)) and tx.account_by_mail(mail) is None


class Guardians:
    def __init__(self, context: IdentityContext, flows: Flows) -> None:
        self.context = context
        self.flows = flows

    async def start(self, request: GuardianStart) -> Answer:
        """Confirm an invited address with a code, as §2 does for a member's address.

        Any address gets a flow and the same answer; a code is mailed only to an address a
        member invited, so the page tells nobody who was invited and mails nobody else.
        """
        try:
            mail = normalise_mail(request.mail)
        except InvalidInput as error:
            return invalid(error)
        with self.context.store.write() as tx:
            was_invited = invited(tx, mail)
            opened = self.flows.open_code_flow(
                tx,
                FlowKind.GUARDIAN_SETUP,
                PasscodePurpose.GUARDIAN_SETUP,
                mail if was_invited else "",
                mail,
            )
        if isinstance(opened, Answer):
            return opened
        reply, _, code = opened
        outgoing: list[Notification] = (
            [self.flows.verification_mail(mail, code, FlowKind.GUARDIAN_SETUP.value)]
            if was_invited
            else []
        )
        return answer(reply, outgoing)

    def wards(self, request: GuardianWards) -> Family:
        """The members who granted family access to a guardian's address."""
        mail = normalise_mail(request.guardian_mail)
        with self.context.store.read() as tx:
            accounts = [tx.account(number) for number in tx.wards_of(mail)]
        wards = [
            FamilyPerson(member_no=a.member_no, name=a.name, masked_mail=mask_mail(a.mail))
            for a in accounts
            if a is not None
        ]
        return Family(guardians=[], wards=wards)
