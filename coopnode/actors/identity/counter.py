"""The counter (窓口) in the identity actor: find a member, read their file, change their
address after the identity check, and mark a withdrawal (脱退).

Every change is written with its audit entry in one transaction, under the clerk who
made it. A search reads, bounded (`domain.counter`); it never changes anything.
"""

from __future__ import annotations

import msgspec

from coopnode.actors.identity.answers import answer, refused
from coopnode.actors.identity.context import IdentityContext
from coopnode.actors.identity.messages import (
    Answer,
    CounterChangeMail,
    CounterFind,
    CounterFound,
    CounterMember,
    CounterWithdrawn,
    Done,
    IdentityReason,
    MemberCard,
    MemberFile,
)
from coopnode.actors.identity.store import Tx
from coopnode.domain.counter import (
    COUNTER_KANA_SCAN_MAX,
    COUNTER_RESULTS_MAX,
    FindBy,
    kana_matches,
)
from coopnode.domain.errors import InvalidInput
from coopnode.domain.identity import Account, mask_mail, normalise_mail


def _card(account: Account) -> MemberCard:
    return MemberCard(
        member_no=account.member_no,
        coop=account.coop,
        name=account.name,
        kana=account.kana,
        mail=account.mail,
        withdrawn=account.withdrawn_at_s > 0,
    )


def _by_kana(tx: Tx, query: str) -> CounterFound:
    found: list[MemberCard] = []
    read = 0
    for account in tx.accounts(COUNTER_KANA_SCAN_MAX):
        read += 1
        if kana_matches(query, account.kana):
            if len(found) == COUNTER_RESULTS_MAX:
                return CounterFound(members=found, more=True)
            found.append(_card(account))
    return CounterFound(members=found, more=read == COUNTER_KANA_SCAN_MAX)


class Counter:
    def __init__(self, context: IdentityContext) -> None:
        self.context = context

    def find(self, request: CounterFind) -> CounterFound:
        with self.context.store.read() as tx:
            match request.by:
                case FindBy.KANA:
                    return _by_kana(tx, request.query)
                case FindBy.MEMBER_NO:
                    account = tx.account(request.query) if request.query.isdigit() else None
                case FindBy.MAIL:
                    try:
                        account = tx.account_by_mail(normalise_mail(request.query))
                    except InvalidInput:
                        account = None
                case FindBy.CARD:
                    raise InvalidInput("invalid_input", "a card is found by the front's registry")
        members = [] if account is None else [_card(account)]
        return CounterFound(members=members, more=False)

    def member(self, request: CounterMember) -> Answer:
        with self.context.store.read() as tx:
            account = tx.account(request.member_no)
        if account is None:
            return answer(refused(IdentityReason.NOT_FOUND, "no such member"))
        return answer(
            MemberFile(
                member_no=account.member_no,
                coop=account.coop,
                name=account.name,
                kana=account.kana,
                birth_date=account.birth_date,
                mail=account.mail,
                phone=account.phone,
                enrolled_at_s=account.enrolled_at_s,
                share_units=account.share_units,
                withdrawn_at_s=account.withdrawn_at_s,
                password_set=bool(account.password_hash),
                wallet_registered=account.wallet_registered_at_s > 0,
            )
        )

    def change_mail(self, request: CounterChangeMail) -> Answer:
        """The address change at the counter: the birth date the member states must be the
        account's (as online, FLOWS §1 step 2), and the photo identification the clerk
        checked is recorded; the member's sessions end, as after any address change."""
        mail = normalise_mail(request.mail)
        with self.context.store.write() as tx:
            account = tx.account(request.member_no)
            if account is None:
                return answer(refused(IdentityReason.NOT_FOUND, "no such member"))
            if account.withdrawn_at_s:
                return answer(refused(IdentityReason.CONFLICT, "the member has withdrawn"))
            if account.birth_date != request.birth_date:
                return answer(
                    refused(IdentityReason.NO_MATCH, "the birth date is not the member's")
                )
            if account.mail == mail:
                return answer(refused(IdentityReason.CONFLICT, "this is the address already"))
            if tx.held_by_another("mail_index", mail, account.member_no) is not None:
                return answer(
                    refused(IdentityReason.MAIL_IN_USE, "this address belongs to another member")
                )
            tx.put_account(msgspec.structs.replace(account, mail=mail))
            tx.delete_sessions_of(account.member_no)
            tx.append_audit(
                at_s=self.context.clock(),
                actor=request.actor,
                action="counter.change_mail",
                target=account.member_no,
                detail=(
                    f"{mask_mail(account.mail)} → {mask_mail(mail)}; birth date checked; "
                    f"identification: {request.identification.value}"
                ),
            )
        return answer(Done(message="the mail address is changed"))

    def withdrawn(self, request: CounterWithdrawn) -> Answer:
        """Mark the account withdrawn (once; a second call answers the same) and end its
        sessions. The wallet was closed before, by the front."""
        with self.context.store.write() as tx:
            account = tx.account(request.member_no)
            if account is None:
                return answer(refused(IdentityReason.NOT_FOUND, "no such member"))
            if account.withdrawn_at_s:
                return answer(Done(message="the member has withdrawn"))
            now_s = self.context.clock()
            tx.put_account(msgspec.structs.replace(account, withdrawn_at_s=now_s))
            tx.delete_sessions_of(account.member_no)
            tx.append_audit(
                at_s=now_s,
                actor=request.actor,
                action="counter.withdraw",
                target=account.member_no,
                detail=request.detail,
            )
        return answer(Done(message="the member has withdrawn"))
