"""The counter's (窓口) JSON API (issue 13 §2): a clerk finds a member, reads their file
and serves them; the console's counter pages call the same functions.

    GET  /api/v1/counter/members?by=kana&q=ヤマダ              find (number, kana, mail, card)
    GET  /api/v1/counter/members/{member_no}                  the member's file
    GET  /api/v1/counter/members/{member_no}/history          the journal, newest first
    POST /api/v1/counter/members/{member_no}/resume           resume a suspended account
    POST /api/v1/counter/members/{member_no}/card             lost card, and a new one
    POST /api/v1/counter/members/{member_no}/mail             address change after first use
    POST /api/v1/counter/members/{member_no}/payments/{key}/refund   refund a tap
    POST /api/v1/counter/members/{member_no}/payments/{key}/settle   settle an overdraft
    POST /api/v1/counter/members/{member_no}/charges/{key}/refund    hand back a counter charge
    GET  /api/v1/counter/members/{member_no}/withdrawal       what a withdrawal pays back
    POST /api/v1/counter/members/{member_no}/withdrawal       withdraw (脱退)

Every route declares its permission (`staff_may`); every change is in the audit log
under the clerk (`staff_actor`): the identity actor writes its own changes' entries,
and the money and card changes made here are recorded once the wallet or the registry
answered. A refusal changes nothing; a money operation takes the clerk's idempotency
`key`, so a double submit books once.
"""

from __future__ import annotations

import datetime
import time
from typing import Annotated

import msgspec
from aiohttp import web

from coopnode.actors.identity.messages import (
    AuditRecord,
    CounterChangeMail,
    CounterFind,
    CounterFound,
    CounterMember,
    CounterWithdrawn,
    DeskPage,
    DeskView,
    MemberFile,
    StaffResume,
)
from coopnode.actors.registry.messages import CardRecord, CardStatus, Reissue, ReportLost
from coopnode.domain import withdrawal
from coopnode.domain.counter import CounterQuery, FindBy, IdDocument
from coopnode.domain.messages import (
    AmountYen,
    Booked,
    Declined,
    GetHistory,
    GetWallet,
    HistoryPage,
    HistoryQuery,
    IdempotencyKey,
    OverdraftRecord,
    Refund,
    RefundCharge,
    Result,
    SettleOverdraft,
    WalletStatus,
    WalletView,
    Withdraw,
    WithdrawalYen,
)
from coopnode.domain.money import Reason
from coopnode.domain.staff import Permission
from coopnode.domain.till_frames import Idm
from coopnode.domain.withdrawal import WithdrawalPlan
from coopnode.http.api.wallet import member_status_changed, wallet_client_key
from coopnode.http.edge import (
    Body,
    Route,
    member_no_of,
    operation,
    read_body,
    read_query,
    staff_actor,
    staff_may,
)
from coopnode.http.errors import ApiError
from coopnode.http.identity_front import ask, json_response
from coopnode.http.portal.wallet import settings_key
from coopnode.http.tills.channel import till_hub_key
from coopnode.http.tills.hub import RegistryUnavailable

# A member's open overdrafts read for their file: a shard lists at most this many for
# the whole co-op (as staff's overdraft list does); a member has a handful at most.
OVERDRAFTS_READ_PER_SHARD_MAX = 1_000


class FindQuery(Body, frozen=True):
    by: FindBy
    q: CounterQuery


class CardView(Body, frozen=True):
    idm: str
    status: CardStatus
    bound_at_ms: int
    blocked_at_ms: int


class MemberFileAnswer(Body, frozen=True):
    """Everything the counter shows of a member at once."""

    account: MemberFile
    wallet: WalletView | None
    cards: list[CardView]
    overdrafts: list[OverdraftRecord]
    desk: DeskPage
    share_capital_yen: int


class CardBody(Body, frozen=True):
    """A lost (or broken) card: the active one is blocked, and `new_idm`, when given, is
    bound in its place. The balance stays with the member's wallet, so it carries over."""

    new_idm: Idm | None = None


class CardAnswer(Body, frozen=True):
    blocked: CardRecord | None
    issued: CardRecord | None


class MailBody(Body, frozen=True):
    mail: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    # The member states it; it must be the account's (FLOWS §1 step 2, at the counter).
    birth_date: datetime.date
    identification: IdDocument


class RefundBody(Body, frozen=True):
    key: IdempotencyKey
    amount_yen: AmountYen


class KeyBody(Body, frozen=True):
    key: IdempotencyKey


class WithdrawBody(Body, frozen=True):
    key: IdempotencyKey
    # The refund the clerk was shown (`GET …/withdrawal`): another is refused.
    refund_yen: WithdrawalYen


class WithdrawalAnswer(Body, frozen=True):
    member_no: str
    plan: WithdrawalPlan
    overdraft_yen: int
    closed: bool


# Reading ----------------------------------------------------------------------------------


def cards_of(app: web.Application, member_no: str) -> list[CardView]:
    """The member's cards as this front's copy of the registry holds them, newest first."""
    cards = [card for card in app[till_hub_key].cards.values() if card.member_no == member_no]
    cards.sort(key=lambda card: card.bound_at_ms, reverse=True)
    return [
        CardView(
            idm=card.idm,
            status=card.status,
            bound_at_ms=card.bound_at_ms,
            blocked_at_ms=card.blocked_at_ms,
        )
        for card in cards
    ]


async def find(request: web.Request, by: FindBy, query: str) -> CounterFound:
    """Members matching what the clerk typed (or the card laid on the reader)."""
    if by is FindBy.CARD:
        card = request.app[till_hub_key].cards.get(query.strip().lower())
        if card is None:
            return CounterFound(members=[], more=False)
        by, query = FindBy.MEMBER_NO, card.member_no
    reply = await ask(request, CounterFind(by=by, query=query.strip()))
    if not isinstance(reply, CounterFound):
        raise TypeError("the counter search answered with something else")
    return reply


async def _wallet(request: web.Request, member_no: str) -> WalletView | None:
    result = await request.app[wallet_client_key].submit(GetWallet(member_no=member_no))
    if isinstance(result, WalletView):
        return result
    if isinstance(result, Declined) and result.reason is Reason.UNKNOWN_MEMBER:
        return None
    raise _refusal(result)


async def member_overdrafts(request: web.Request, member_no: str) -> list[OverdraftRecord]:
    records = await request.app[wallet_client_key].overdrafts(OVERDRAFTS_READ_PER_SHARD_MAX)
    return sorted(
        (record for record in records if record.member_no == member_no),
        key=lambda record: record.tapped_at_ms,
    )


async def member_file(request: web.Request, member_no: str) -> MemberFileAnswer:
    account = await ask(request, CounterMember(member_no=member_no))
    desk = await ask(request, DeskView(member_no=member_no))
    if not isinstance(account, MemberFile) or not isinstance(desk, DeskPage):
        raise TypeError("the member's file answered with something else")
    share_unit_yen = request.app[settings_key].identity.share_unit_yen
    return MemberFileAnswer(
        account=account,
        wallet=await _wallet(request, member_no),
        cards=cards_of(request.app, member_no),
        overdrafts=await member_overdrafts(request, member_no),
        desk=desk,
        share_capital_yen=account.share_units * share_unit_yen,
    )


async def history(request: web.Request, member_no: str, query: HistoryQuery) -> HistoryPage:
    op = GetHistory(member_no=member_no, **msgspec.structs.asdict(query))
    result = await request.app[wallet_client_key].submit(op)
    if not isinstance(result, HistoryPage):
        raise _refusal(result)
    return result


# Acting -----------------------------------------------------------------------------------


def _refusal(result: Result) -> ApiError:
    if isinstance(result, Declined):
        return ApiError(result.reason, result.message)
    return ApiError(Reason.OPERATION_FAILED, "the wallet answered with something else")


async def audit(request: web.Request, action: str, member_no: str, detail: str) -> None:
    """One entry in the audit log under the clerk, for a change made in the front."""
    record = AuditRecord(actor=staff_actor(request), action=action, target=member_no, detail=detail)
    await ask(request, record)


async def book(
    request: web.Request, op: Refund | SettleOverdraft | RefundCharge, action: str
) -> Booked:
    """A money operation for the clerk: booked (and audited) or refused with its reason."""
    result = await request.app[wallet_client_key].submit(op)
    if not isinstance(result, Booked):
        raise _refusal(result)
    named = op.charge_key if isinstance(op, RefundCharge) else op.payment_key
    detail = f"{result.kind} of {named}: {result.amount_yen} yen; key {op.key}"
    await audit(request, action, op.member_no, detail)
    return result


async def resume(request: web.Request, member_no: str) -> None:
    """Resume a suspended account: the identity actor resumes the wallet, lifts the
    lock-outs and audits it; the member's card then leaves the tills' deny list."""
    await ask(request, StaffResume(actor=staff_actor(request), member_no=member_no))
    await member_status_changed(request.app, member_no)


async def _registry(request: web.Request, op: ReportLost | Reissue) -> CardRecord:
    try:
        change = await request.app[till_hub_key].apply(op)
    except RegistryUnavailable as error:
        raise ApiError(Reason.UNAVAILABLE, str(error)) from None
    if not change.ok:
        raise ApiError(change.reason or Reason.INVALID_INPUT, change.message)
    return change.cards[-1]


async def replace_card(request: web.Request, member_no: str, new_idm: str | None) -> CardAnswer:
    """Block the member's active card as lost and bind `new_idm` in its place. The new
    card is checked first (not bound before), so a refused one leaves the old card as it
    was; a member without an active card (reported lost before) just gets the new one."""
    if await _wallet(request, member_no) is None:
        raise ApiError(Reason.UNKNOWN_MEMBER, f"no wallet for member {member_no}")
    hub = request.app[till_hub_key]
    if new_idm is not None and new_idm in hub.cards:
        raise ApiError(Reason.DUPLICATE, "the new card was bound before; use a new card")
    active = hub.active_cards.get(member_no)
    if active is None and new_idm is None:
        raise ApiError(Reason.UNKNOWN_CARD, "the member has no active card to report lost")
    blocked = None if active is None else await _registry(request, ReportLost(idm=active.idm))
    if blocked is not None:
        await audit(request, "counter.card_lost", member_no, f"card …{blocked.idm[-4:]} blocked")
    issued = None
    if new_idm is not None:
        issued = await _registry(request, Reissue(member_no=member_no, new_idm=new_idm))
        await audit(request, "counter.card_issued", member_no, f"card …{new_idm[-4:]} bound")
    return CardAnswer(blocked=blocked, issued=issued)


async def change_mail(request: web.Request, member_no: str, body: MailBody) -> None:
    message = CounterChangeMail(
        actor=staff_actor(request),
        member_no=member_no,
        mail=body.mail,
        birth_date=body.birth_date.isoformat(),
        identification=body.identification,
    )
    await ask(request, message)


async def withdrawal_plan(request: web.Request, member_no: str) -> WithdrawalAnswer:
    """What a withdrawal would pay back now, for the clerk to read out and confirm."""
    file = await member_file(request, member_no)
    if file.wallet is None:
        raise ApiError(Reason.UNKNOWN_MEMBER, f"no wallet for member {member_no}")
    rules = request.app[settings_key].coops[file.wallet.coop]
    day = rules.day_of(int(time.time() * 1000))
    closed = file.wallet.status is WalletStatus.CLOSED
    capital = 0 if closed else file.share_capital_yen
    planned = withdrawal.plan(file.wallet.balances, rules.withdrawal, day, capital)
    owed = sum(record.overdraft_yen for record in file.overdrafts)
    return WithdrawalAnswer(member_no=member_no, plan=planned, overdraft_yen=owed, closed=closed)


async def withdraw(request: web.Request, member_no: str, body: WithdrawBody) -> Booked:
    """Withdraw: the wallet pays back and closes (one balanced entry, under the clerk's
    key), the member's cards are refused at every till, and the account is marked
    withdrawn with the audit entry. Sent again with the same key, each step answers as
    it did, so a withdrawal interrupted half-way is finished by sending it again."""
    file = await member_file(request, member_no)
    op = Withdraw(
        key=body.key,
        member_no=member_no,
        share_capital_yen=file.share_capital_yen,
        refund_yen=body.refund_yen,
    )
    result = await request.app[wallet_client_key].submit(op)
    if not isinstance(result, Booked):
        raise _refusal(result)
    await member_status_changed(request.app, member_no)
    detail = (
        f"refund {result.amount_yen} yen (share capital {file.share_capital_yen} yen); "
        f"journal entry {result.seq}; key {body.key}"
    )
    await ask(
        request, CounterWithdrawn(actor=staff_actor(request), member_no=member_no, detail=detail)
    )
    return result


# Handlers ---------------------------------------------------------------------------------


async def find_handler(request: web.Request) -> web.Response:
    query = read_query(request, FindQuery)
    return json_response(await find(request, query.by, query.q))


async def file_handler(request: web.Request) -> web.Response:
    return json_response(await member_file(request, member_no_of(request)))


async def history_handler(request: web.Request) -> web.Response:
    query = read_query(request, HistoryQuery)
    return json_response(await history(request, member_no_of(request), query))


async def resume_handler(request: web.Request) -> web.Response:
    member_no = member_no_of(request)
    await resume(request, member_no)
    return json_response(await member_file(request, member_no))


async def card_handler(request: web.Request) -> web.Response:
    body = await read_body(request, CardBody)
    return json_response(await replace_card(request, member_no_of(request), body.new_idm))


async def mail_handler(request: web.Request) -> web.Response:
    body = await read_body(request, MailBody)
    member_no = member_no_of(request)
    await change_mail(request, member_no, body)
    return json_response(await member_file(request, member_no))


def _payment_fields(request: web.Request) -> dict[str, str]:
    return {"member_no": member_no_of(request), "payment_key": request.match_info["payment_key"]}


async def refund_handler(request: web.Request) -> web.Response:
    body = await read_body(request, RefundBody)
    op = operation({**_payment_fields(request), **msgspec.structs.asdict(body)}, Refund)
    return json_response(await book(request, op, "counter.refund"))


async def settle_handler(request: web.Request) -> web.Response:
    body = await read_body(request, KeyBody)
    op = operation({**_payment_fields(request), "key": body.key}, SettleOverdraft)
    return json_response(await book(request, op, "counter.settle_overdraft"))


async def refund_charge_handler(request: web.Request) -> web.Response:
    body = await read_body(request, RefundBody)
    fields = {"member_no": member_no_of(request), "charge_key": request.match_info["charge_key"]}
    op = operation({**fields, **msgspec.structs.asdict(body)}, RefundCharge)
    return json_response(await book(request, op, "counter.refund_charge"))


async def plan_handler(request: web.Request) -> web.Response:
    return json_response(await withdrawal_plan(request, member_no_of(request)))


async def withdraw_handler(request: web.Request) -> web.Response:
    body = await read_body(request, WithdrawBody)
    return json_response(await withdraw(request, member_no_of(request), body))


_M = "/api/v1/counter/members/{member_no}"

COUNTER_ROUTES: tuple[Route, ...] = (
    Route(method="GET", path="/api/v1/counter/members", handler=find_handler,
          access=staff_may(Permission.MEMBERS_READ), response=CounterFound, query_type=FindQuery,
          summary="Find members by number, kana, mail address or card IDm (at most 20)"),
    Route(method="GET", path=_M, handler=file_handler, access=staff_may(Permission.MEMBERS_READ),
          response=MemberFileAnswer,
          summary="A member's file: account, purses, cards, overdrafts, desk records"),
    Route(method="GET", path=f"{_M}/history", handler=history_handler,
          access=staff_may(Permission.MEMBERS_READ), response=HistoryPage, query_type=HistoryQuery,
          summary="The member's journal, newest first, paged by `before_seq`"),
    Route(method="POST", path=f"{_M}/resume", handler=resume_handler,
          access=staff_may(Permission.MEMBERS_CHANGE), response=MemberFileAnswer,
          summary="Resume a suspended account at the counter (audited)"),
    Route(method="POST", path=f"{_M}/card", handler=card_handler,
          access=staff_may(Permission.MEMBERS_CHANGE), request=CardBody, response=CardAnswer,
          summary="Report the active card lost and bind a new one; the balance stays (audited)"),
    Route(method="POST", path=f"{_M}/mail", handler=mail_handler,
          access=staff_may(Permission.MEMBERS_CHANGE), request=MailBody,
          response=MemberFileAnswer,
          summary="Change the address after first use, with the identity check (audited)"),
    Route(method="POST", path=f"{_M}/payments/{{payment_key}}/refund", handler=refund_handler,
          access=staff_may(Permission.MONEY_REFUND), request=RefundBody, response=Booked,
          summary="Refund part or all of a tap, within what it paid (audited)"),
    Route(method="POST", path=f"{_M}/payments/{{payment_key}}/settle", handler=settle_handler,
          access=staff_may(Permission.OVERDRAFT_SETTLE), request=KeyBody, response=Booked,
          summary="Settle an offline tap's overdraft from the purses (audited)"),
    Route(method="POST", path=f"{_M}/charges/{{charge_key}}/refund",
          handler=refund_charge_handler, access=staff_may(Permission.MONEY_REFUND),
          request=RefundBody, response=Booked,
          summary="Hand back in cash a charge paid in cash at the counter (audited)"),
    Route(method="GET", path=f"{_M}/withdrawal", handler=plan_handler,
          access=staff_may(Permission.WITHDRAWAL), response=WithdrawalAnswer,
          summary="What a withdrawal (脱退) would pay back now, purse by purse"),
    Route(method="POST", path=f"{_M}/withdrawal", handler=withdraw_handler,
          access=staff_may(Permission.WITHDRAWAL), request=WithdrawBody, response=Booked,
          summary="Withdraw (脱退): pay back, close the wallet, block the cards (audited)"),
)  # fmt: skip
