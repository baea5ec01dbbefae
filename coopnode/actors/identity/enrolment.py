"""Enrolment (FLOWS §0): staff create the member, the wallet opens with the deposits paid,
and the member is mailed what was paid and how to set a password.

Enrolling the same member again with the same details is one enrolment (the answer says
it was not created twice); with other details it is refused. A wallet opened before (the
demo's, or one opened through the wallet API) is kept.
"""

from __future__ import annotations

import hashlib

import msgspec

from coopnode.actors.identity.answers import answer, refused
from coopnode.actors.identity.context import IdentityContext
from coopnode.actors.identity.messages import (
    Answer,
    Enrol,
    Enrolled,
    Enrolment,
    IdentityReason,
    Refused,
)
from coopnode.actors.identity.store import Tx
from coopnode.actors.notify import mails
from coopnode.actors.notify.messages import MailMessage
from coopnode.domain.identity import Account, normalise_mail, normalise_phone
from coopnode.domain.messages import Booked, Declined, OpenWallet, Result
from coopnode.domain.money import Purse, Reason


def _conflict(tx: Tx, member_no: str, mail: str, phone: str, fingerprint: bytes) -> Refused | None:
    existing = tx.account(member_no)
    if existing is not None and existing.enrolment_fingerprint != fingerprint:
        message = f"member {member_no} is enrolled with other details"
        return refused(IdentityReason.CONFLICT, message)
    for db, value, reason in (
        ("mail_index", mail, IdentityReason.MAIL_IN_USE),
        ("phone_index", phone, IdentityReason.PHONE_IN_USE),
    ):
        if tx.held_by_another(db, value, member_no) is not None:
            return refused(reason, f"this {db.split('_')[0]} belongs to another member")
    return None


class Enrolments:
    def __init__(self, context: IdentityContext) -> None:
        self.context = context

    def _paid_items(self, request: Enrol) -> list[mails.PaidItem]:
        enrolment = request.enrolment
        return mails.enrolment_items(
            share_units=enrolment.share_units,
            share_unit_yen=self.context.bounds.share_unit_yen,
            insurance=[mails.PaidItem(item.label, item.amount_yen) for item in enrolment.insurance],
            emoney_yen=enrolment.emoney_yen,
            meal_yen=enrolment.meal_yen,
        )

    async def _open_wallet(self, enrolment: Enrolment) -> Result:
        """Open the member's wallet with the deposits paid at enrolment (none of zero)."""
        deposits = {Purse.BASE: enrolment.emoney_yen, Purse.MEAL: enrolment.meal_yen}
        return await self.context.wallet.submit(
            OpenWallet(
                key=f"enrol-{enrolment.member_no}",
                member_no=enrolment.member_no,
                coop=enrolment.coop,
                meal_plan=enrolment.meal_plan,
                deposits={purse: yen for purse, yen in deposits.items() if yen},
            )
        )

    async def enrol(self, request: Enrol) -> Answer:
        """Create the member, open the wallet with the deposits, send the §0 mail."""
        context = self.context
        enrolment = request.enrolment
        mail, phone = normalise_mail(enrolment.mail), normalise_phone(enrolment.phone)
        coop = context.settings.coops.get(enrolment.coop)
        if coop is None:
            return answer(refused(Reason.UNKNOWN_COOP, f"unknown co-op {enrolment.coop!r}"))
        fingerprint = hashlib.sha256(msgspec.msgpack.encode(enrolment)).digest()[:16]
        with context.store.read() as tx:
            conflict = _conflict(tx, enrolment.member_no, mail, phone, fingerprint)
        if conflict is not None:
            return answer(conflict)
        items = self._paid_items(request)
        total_yen = mails.enrolment_total_yen(items)
        opened = await self._open_wallet(enrolment)
        # A wallet opened before (the demo's, or one opened through the wallet API) is kept.
        # Any other decline is passed on with the wallet's reason, and the edge answers it
        # as the wallet's routes do.
        if isinstance(opened, Declined) and opened.reason is not Reason.DUPLICATE:
            return answer(refused(opened.reason, opened.message))
        with context.store.write() as tx:
            conflict = _conflict(tx, enrolment.member_no, mail, phone, fingerprint)
            if conflict is not None:
                return answer(conflict)
            if tx.account(enrolment.member_no) is not None:
                return answer(
                    Enrolled(member_no=enrolment.member_no, created=False, total_yen=total_yen)
                )
            tx.put_account(
                Account(
                    member_no=enrolment.member_no,
                    coop=enrolment.coop,
                    name=enrolment.name,
                    kana=enrolment.kana,
                    birth_date=enrolment.birth_date,
                    mail=mail,
                    phone=phone,
                    enrolled_at_s=context.clock(),
                    enrolment_fingerprint=fingerprint,
                    share_units=enrolment.share_units,
                )
            )
            tx.append_audit(
                at_s=context.clock(),
                actor=request.actor,
                action="member.enrol",
                target=enrolment.member_no,
                detail=f"total {total_yen} yen",
            )
        text = mails.enrolment_completed_mail(
            coop_name=coop.name,
            member_name=enrolment.name,
            member_no=enrolment.member_no,
            items=items,
            password_guide_url=f"{context.bounds.portal_base_url}/portal/password",
        )
        notice = MailMessage(to=mail, subject=text.subject, body=text.body, kind="enrolment")
        wallet = opened if isinstance(opened, Booked) else None
        reply = Enrolled(
            member_no=enrolment.member_no, created=True, total_yen=total_yen, wallet=wallet
        )
        return answer(reply, [notice])
