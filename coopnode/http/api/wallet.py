"""The wallet's JSON API for staff and POS systems, described by one route table.

The same table registers the handlers and writes the OpenAPI document, so the two cannot
drift apart (`edge.py`). Every route takes the staff token; every money operation takes
an idempotency `key` in its body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from coopnode.actors.wallet.client import WalletClient
from coopnode.actors.wallet.messages import AuditReport, ReplicaRole
from coopnode.domain.messages import (
    AmountYen,
    Booked,
    Charge,
    ChargeSource,
    Declined,
    DepositYen,
    GetHistory,
    GetWallet,
    HistoryPage,
    HistoryQuery,
    IdempotencyKey,
    Label,
    MemberNo,
    Move,
    OpenWallet,
    OptionalLabel,
    Pay,
    Refund,
    Result,
    Resume,
    SettleOverdraft,
    StatusChanged,
    Suspend,
    VoidPayment,
    WalletView,
)
from coopnode.domain.money import Purse, Reason, TillKind
from coopnode.domain.staff import Permission
from coopnode.http.edge import (
    AUDIT_TARGET,
    Body,
    Route,
    member_no_of,
    operation,
    read_body,
    read_query,
    staff_may,
)
from coopnode.http.errors import ApiError, error_response
from coopnode.http.tills.hub import DenyListNotUpdated

wallet_client_key = web.AppKey("wallet_client", WalletClient)
# Told the member number whenever a member may have been suspended or resumed: it brings
# the registry (and so the deny list every till holds) in line with the wallet's status,
# raising `DenyListNotUpdated` when it could not. Set by the node when the till channel
# runs; `set_member_status` and `member_status_changed` are the only callers.
MemberStatusHook = Callable[[str], Awaitable[None]]
member_status_hook_key: web.AppKey[MemberStatusHook] = web.AppKey("member_status_hook")


class OpenWalletRequest(Body, frozen=True):
    key: IdempotencyKey
    member_no: MemberNo
    coop: Label
    meal_plan: Label = "none"
    deposits: dict[Purse, DepositYen] = msgspec.field(default_factory=dict)


class PayRequest(Body, frozen=True):
    key: IdempotencyKey
    amount_yen: AmountYen
    till_kind: TillKind
    store: Label
    till_id: OptionalLabel = ""


class VoidRequest(Body, frozen=True):
    key: IdempotencyKey


class RefundRequest(Body, frozen=True):
    key: IdempotencyKey
    amount_yen: AmountYen


class ChargeRequest(Body, frozen=True):
    key: IdempotencyKey
    purse: Purse
    amount_yen: AmountYen
    source: ChargeSource
    reference: OptionalLabel = ""


class MoveRequest(Body, frozen=True):
    key: IdempotencyKey
    from_purse: Purse
    to_purse: Purse
    amount_yen: AmountYen


class AuditAnswer(Body, frozen=True):
    balanced: bool
    shards: list[AuditReport]


def answer(result: Result, success_status: int = 200) -> web.Response:
    """A wallet operation's result: its JSON, or the refusal of its `Declined` reason."""
    if isinstance(result, Declined):
        return error_response(ApiError(result.reason, result.message))
    return web.Response(
        status=success_status, body=msgspec.json.encode(result), content_type="application/json"
    )


async def _submit(request: web.Request, op: Any, success_status: int = 200) -> web.Response:
    return answer(await request.app[wallet_client_key].submit(op), success_status)


async def open_wallet(request: web.Request) -> web.Response:
    body = await read_body(request, OpenWalletRequest)
    op = OpenWallet(**msgspec.structs.asdict(body))
    request[AUDIT_TARGET] = body.member_no
    return await _submit(request, op, 201)


async def get_wallet(request: web.Request) -> web.Response:
    return await _submit(request, GetWallet(member_no=member_no_of(request)))


async def get_history(request: web.Request) -> web.Response:
    query = read_query(request, HistoryQuery)
    op = GetHistory(member_no=member_no_of(request), **msgspec.structs.asdict(query))
    return await _submit(request, op)


async def pay(request: web.Request) -> web.Response:
    body = await read_body(request, PayRequest)
    op = Pay(member_no=member_no_of(request), **msgspec.structs.asdict(body))
    return await _submit(request, op)


async def void_payment(request: web.Request) -> web.Response:
    body = await read_body(request, VoidRequest)
    fields = {"member_no": member_no_of(request), "payment_key": request.match_info["payment_key"]}
    return await _submit(request, operation({**fields, "key": body.key}, VoidPayment))


async def refund(request: web.Request) -> web.Response:
    body = await read_body(request, RefundRequest)
    fields = {"member_no": member_no_of(request), "payment_key": request.match_info["payment_key"]}
    return await _submit(request, operation({**fields, **msgspec.structs.asdict(body)}, Refund))


async def settle_overdraft(request: web.Request) -> web.Response:
    body = await read_body(request, VoidRequest)
    fields = {"member_no": member_no_of(request), "payment_key": request.match_info["payment_key"]}
    return await _submit(request, operation({**fields, "key": body.key}, SettleOverdraft))


async def charge(request: web.Request) -> web.Response:
    body = await read_body(request, ChargeRequest)
    op = Charge(member_no=member_no_of(request), **msgspec.structs.asdict(body))
    return await _submit(request, op)


async def move(request: web.Request) -> web.Response:
    body = await read_body(request, MoveRequest)
    op = Move(member_no=member_no_of(request), **msgspec.structs.asdict(body))
    return await _submit(request, op)


async def set_member_status(app: web.Application, op: Suspend | Resume) -> Result:
    """Suspend or resume a member's wallet, then their card at every till: the way every
    suspension and resumption made in the front goes (staff API, portal, OAuth API)."""
    result = await app[wallet_client_key].submit(op)
    if isinstance(result, StatusChanged):
        await member_status_changed(app, op.member_no)
    return result


async def member_status_changed(app: web.Application, member_no: str) -> None:
    """Bring the tills in line with the member's wallet, after it was suspended or
    resumed here or elsewhere (the counter resumes through the identity actor).

    A failure is a 503: the wallet's change stands, and the same request sent again
    (idempotent) brings the tills in line."""
    hook = app.get(member_status_hook_key)
    if hook is None:
        return
    try:
        await hook(member_no)
    except DenyListNotUpdated as error:
        raise ApiError(
            Reason.UNAVAILABLE,
            f"the wallet changed but the tills were not told ({error}); send it again",
        ) from None


async def suspend(request: web.Request) -> web.Response:
    return answer(await set_member_status(request.app, Suspend(member_no=member_no_of(request))))


async def resume(request: web.Request) -> web.Response:
    return answer(await set_member_status(request.app, Resume(member_no=member_no_of(request))))


async def audit(request: web.Request) -> web.Response:
    reports = await request.app[wallet_client_key].audit()
    result = AuditAnswer(balanced=all(report.balanced for report in reports), shards=reports)
    return web.Response(body=msgspec.json.encode(result), content_type="application/json")


_W = "/api/v1/wallets/{member_no}"


class ShardReplicas(Body, frozen=True):
    """A shard's replicas as each says it stands (`null`: it did not answer); none for a
    shard of one replica."""

    shard: int
    replicas: list[ReplicaRole | None]


async def replica_roles(request: web.Request) -> web.Response:
    roles = await request.app[wallet_client_key].replica_roles()
    shards = [ShardReplicas(shard=index, replicas=each) for index, each in enumerate(roles)]
    return web.Response(body=msgspec.json.encode(shards), content_type="application/json")


ROUTES: tuple[Route, ...] = (
    Route(
        method="POST",
        path="/api/v1/wallets",
        summary="Open a member's wallet with the deposits paid at enrolment",
        access=staff_may(Permission.MEMBERS_CHANGE),
        audit="wallet.open",
        handler=open_wallet,
        request=OpenWalletRequest,
        response=Booked,
        status=201,
    ),
    Route(
        method="GET",
        path=_W,
        summary="Balances per purse, status and what remains of today's meal plan",
        access=staff_may(Permission.MEMBERS_READ),
        handler=get_wallet,
        response=WalletView,
    ),
    Route(
        method="GET",
        path=f"{_W}/history",
        summary="The member's journal, newest first, paged by `before_seq`",
        access=staff_may(Permission.MEMBERS_READ),
        handler=get_history,
        response=HistoryPage,
        query_type=HistoryQuery,
    ),
    Route(
        method="POST",
        path=f"{_W}/payments",
        summary="Pay at a till: the purses are spent in the till kind's order",
        access=staff_may(Permission.PAYMENTS_TAKE),
        handler=pay,
        request=PayRequest,
        response=Booked,
    ),
    Route(
        method="POST",
        path=f"{_W}/payments/{{payment_key}}/void",
        summary="Void today's payment in full",
        access=staff_may(Permission.PAYMENTS_TAKE),
        audit="payment.void",
        handler=void_payment,
        request=VoidRequest,
        response=Booked,
    ),
    Route(
        method="POST",
        path=f"{_W}/payments/{{payment_key}}/settle",
        summary="Recover an offline tap's overdraft from the member's purses now",
        access=staff_may(Permission.OVERDRAFT_SETTLE),
        audit="overdraft.settle",
        handler=settle_overdraft,
        request=VoidRequest,
        response=Booked,
    ),
    Route(
        method="POST",
        path=f"{_W}/payments/{{payment_key}}/refunds",
        summary="Refund part or all of a payment",
        access=staff_may(Permission.MONEY_REFUND),
        audit="payment.refund",
        handler=refund,
        request=RefundRequest,
        response=Booked,
    ),
    Route(
        method="POST",
        path=f"{_W}/charges",
        summary="Credit a charge (card, convenience store or counter) to a purse",
        access=staff_may(Permission.MONEY_CHARGE),
        audit="wallet.charge",
        handler=charge,
        request=ChargeRequest,
        response=Booked,
    ),
    Route(
        method="POST",
        path=f"{_W}/moves",
        summary="Move money from base money to cafeteria or textbook money",
        access=staff_may(Permission.MONEY_CHARGE),
        audit="wallet.move",
        handler=move,
        request=MoveRequest,
        response=Booked,
    ),
    Route(
        method="POST",
        path=f"{_W}/suspend",
        summary="Suspend the account: every card and payment is refused",
        access=staff_may(Permission.MEMBERS_CHANGE),
        audit="member.suspend",
        handler=suspend,
        response=StatusChanged,
    ),
    Route(
        method="POST",
        path=f"{_W}/resume",
        summary="Resume a suspended account (at the co-op counter)",
        access=staff_may(Permission.MEMBERS_CHANGE),
        audit="member.resume",
        handler=resume,
        response=StatusChanged,
    ),
    Route(
        method="GET",
        path="/api/v1/audit",
        summary="Recount every shard's books from its journal",
        access=staff_may(Permission.AUDIT_READ),
        handler=audit,
        response=AuditAnswer,
    ),
    Route(
        method="GET",
        path="/api/v1/admin/replicas",
        summary=(
            "Each wallet shard's replicas: which is the primary, its view, how far each "
            "has logged, committed and applied (issue 16)"
        ),
        access=staff_may(Permission.NODE_OPERATE),
        handler=replica_roles,
        response=list[ShardReplicas],
    ),
)
