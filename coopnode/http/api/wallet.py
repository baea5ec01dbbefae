"""The wallet's JSON API for staff and POS systems, described by one route table.

The same table registers the handlers and writes the OpenAPI document, so the two cannot
drift apart. Every money operation takes an idempotency `key` in its body.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from coopnode.actors.wallet.client import WalletClient
from coopnode.actors.wallet.messages import AuditReport
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
from coopnode.http.errors import REASON_STATUS, ApiError, ErrorBody
from coopnode.http.tills.hub import DenyListNotUpdated

wallet_client_key = web.AppKey("wallet_client", WalletClient)
staff_token_key = web.AppKey("staff_token", str)
# Told the member number whenever a member may have been suspended or resumed: it brings
# the registry (and so the deny list every till holds) in line with the wallet's status,
# raising `DenyListNotUpdated` when it could not. Set by the node when the till channel
# runs; `set_member_status` and `member_status_changed` are the only callers.
MemberStatusHook = Callable[[str], Awaitable[None]]
member_status_hook_key: web.AppKey[MemberStatusHook] = web.AppKey("member_status_hook")


class _Body(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class OpenWalletRequest(_Body, frozen=True):
    key: IdempotencyKey
    member_no: MemberNo
    coop: Label
    meal_plan: Label = "none"
    deposits: dict[Purse, DepositYen] = {}


class PayRequest(_Body, frozen=True):
    key: IdempotencyKey
    amount_yen: AmountYen
    till_kind: TillKind
    store: Label
    till_id: OptionalLabel = ""


class VoidRequest(_Body, frozen=True):
    key: IdempotencyKey


class RefundRequest(_Body, frozen=True):
    key: IdempotencyKey
    amount_yen: AmountYen


class ChargeRequest(_Body, frozen=True):
    key: IdempotencyKey
    purse: Purse
    amount_yen: AmountYen
    source: ChargeSource
    reference: OptionalLabel = ""


class MoveRequest(_Body, frozen=True):
    key: IdempotencyKey
    from_purse: Purse
    to_purse: Purse
    amount_yen: AmountYen


class AuditAnswer(_Body, frozen=True):
    balanced: bool
    shards: list[AuditReport]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Route(msgspec.Struct, frozen=True, kw_only=True):
    method: str
    path: str
    summary: str
    handler: Handler
    request: Any = None
    response: Any = None
    status: int = 200
    staff: bool = True
    # The query parameters: text ones by name and kind, or a Struct whose fields (and
    # their bounds) are the parameters, as `read_query` decodes them.
    query: tuple[tuple[str, str], ...] = ()
    query_type: Any = None
    # A body sent as an HTML form (application/x-www-form-urlencoded), as a Struct of its
    # fields, instead of JSON (`request`).
    form: Any = None
    # The shape of this route's refusals when it is not the API's own `ErrorBody` (OAuth's
    # RFC 6749 §5.2 errors; the store network's answers).
    error: Any = None
    # What a success answers: JSON of `response` unless this says otherwise.
    content_type: str = "application/json"


BodyT = TypeVar("BodyT")
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


async def read_body(request: web.Request, body_type: type[BodyT]) -> BodyT:
    """Decode a JSON body into its type; a clear 400 names the field that is wrong."""
    decoder = _decoders.get(body_type)
    if decoder is None:
        decoder = _decoders[body_type] = msgspec.json.Decoder(body_type)
    raw = await request.read()
    try:
        body: BodyT = decoder.decode(raw)
    except msgspec.ValidationError as error:
        raise ApiError(400, Reason.INVALID_INPUT, f"invalid request: {error}") from None
    except msgspec.DecodeError as error:
        raise ApiError(400, Reason.INVALID_INPUT, f"the body is not valid JSON: {error}") from None
    return body


def read_query(request: web.Request, query_type: type[BodyT]) -> BodyT:
    """Decode the query string into its type (bounds and all); a clear 400 names the field."""
    return operation(dict(request.query), query_type, strict=False)


OpT = TypeVar("OpT")


def operation(fields: dict[str, Any], op_type: type[OpT], *, strict: bool = True) -> OpT:
    """Build an operation from path, query and body fields; a clear 400 names the bad one."""
    try:
        return msgspec.convert(fields, op_type, strict=strict)
    except msgspec.ValidationError as error:
        raise ApiError(400, Reason.INVALID_INPUT, f"invalid request: {error}") from None


def require_staff(request: web.Request) -> None:
    expected = request.app[staff_token_key]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise ApiError(401, "unauthorized", "a valid staff token is required")


def member_no_of(request: web.Request) -> str:
    member_no = request.match_info["member_no"]
    try:
        return str(msgspec.convert(member_no, MemberNo))
    except msgspec.ValidationError:
        raise ApiError(400, Reason.INVALID_INPUT, "a member number is 12 digits") from None


def answer(result: Result, success_status: int = 200) -> web.Response:
    if isinstance(result, Declined):
        status = REASON_STATUS.get(result.reason, 409)
        body = msgspec.json.encode(ErrorBody(result.reason.value, result.message))
        headers = {"Retry-After": "1"} if status == 503 else None
        return web.Response(
            status=status, body=body, content_type="application/json", headers=headers
        )
    return web.Response(
        status=success_status, body=msgspec.json.encode(result), content_type="application/json"
    )


async def _submit(request: web.Request, op: Any, success_status: int = 200) -> web.Response:
    return answer(await request.app[wallet_client_key].submit(op), success_status)


async def open_wallet(request: web.Request) -> web.Response:
    require_staff(request)
    body = await read_body(request, OpenWalletRequest)
    op = OpenWallet(**msgspec.structs.asdict(body))
    return await _submit(request, op, 201)


async def get_wallet(request: web.Request) -> web.Response:
    require_staff(request)
    return await _submit(request, GetWallet(member_no=member_no_of(request)))


async def get_history(request: web.Request) -> web.Response:
    require_staff(request)
    query = read_query(request, HistoryQuery)
    op = GetHistory(member_no=member_no_of(request), **msgspec.structs.asdict(query))
    return await _submit(request, op)


async def pay(request: web.Request) -> web.Response:
    require_staff(request)
    body = await read_body(request, PayRequest)
    op = Pay(member_no=member_no_of(request), **msgspec.structs.asdict(body))
    return await _submit(request, op)


async def void_payment(request: web.Request) -> web.Response:
    require_staff(request)
    body = await read_body(request, VoidRequest)
    fields = {"member_no": member_no_of(request), "payment_key": request.match_info["payment_key"]}
    return await _submit(request, operation({**fields, "key": body.key}, VoidPayment))


async def refund(request: web.Request) -> web.Response:
    require_staff(request)
    body = await read_body(request, RefundRequest)
    fields = {"member_no": member_no_of(request), "payment_key": request.match_info["payment_key"]}
    return await _submit(request, operation({**fields, **msgspec.structs.asdict(body)}, Refund))


async def settle_overdraft(request: web.Request) -> web.Response:
    require_staff(request)
    body = await read_body(request, VoidRequest)
    fields = {"member_no": member_no_of(request), "payment_key": request.match_info["payment_key"]}
    return await _submit(request, operation({**fields, "key": body.key}, SettleOverdraft))


async def charge(request: web.Request) -> web.Response:
    require_staff(request)
    body = await read_body(request, ChargeRequest)
    op = Charge(member_no=member_no_of(request), **msgspec.structs.asdict(body))
    return await _submit(request, op)


async def move(request: web.Request) -> web.Response:
    require_staff(request)
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
            503,
            Reason.UNAVAILABLE,
            f"the wallet changed but the tills were not told ({error}); send it again",
        ) from None


async def suspend(request: web.Request) -> web.Response:
    require_staff(request)
    return answer(await set_member_status(request.app, Suspend(member_no=member_no_of(request))))


async def resume(request: web.Request) -> web.Response:
    require_staff(request)
    return answer(await set_member_status(request.app, Resume(member_no=member_no_of(request))))


async def audit(request: web.Request) -> web.Response:
    require_staff(request)
    reports = await request.app[wallet_client_key].audit()
    result = AuditAnswer(balanced=all(report.balanced for report in reports), shards=reports)
    return web.Response(body=msgspec.json.encode(result), content_type="application/json")


_W = "/api/v1/wallets/{member_no}"

ROUTES: tuple[Route, ...] = (
    Route(
        method="POST",
        path="/api/v1/wallets",
        summary="Open a member's wallet with the deposits paid at enrolment",
        handler=open_wallet,
        request=OpenWalletRequest,
        response=Booked,
        status=201,
    ),
    Route(
        method="GET",
        path=_W,
        summary="Balances per purse, status and what remains of today's meal plan",
        handler=get_wallet,
        response=WalletView,
    ),
    Route(
        method="GET",
        path=f"{_W}/history",
        summary="The member's journal, newest first, paged by `before_seq`",
        handler=get_history,
        response=HistoryPage,
        query_type=HistoryQuery,
    ),
    Route(
        method="POST",
        path=f"{_W}/payments",
        summary="Pay at a till: the purses are spent in the till kind's order",
        handler=pay,
        request=PayRequest,
        response=Booked,
    ),
    Route(
        method="POST",
        path=f"{_W}/payments/{{payment_key}}/void",
        summary="Void today's payment in full",
        handler=void_payment,
        request=VoidRequest,
        response=Booked,
    ),
    Route(
        method="POST",
        path=f"{_W}/payments/{{payment_key}}/settle",
        summary="Recover an offline tap's overdraft from the member's purses now",
        handler=settle_overdraft,
        request=VoidRequest,
        response=Booked,
    ),
    Route(
        method="POST",
        path=f"{_W}/payments/{{payment_key}}/refunds",
        summary="Refund part or all of a payment",
        handler=refund,
        request=RefundRequest,
        response=Booked,
    ),
    Route(
        method="POST",
        path=f"{_W}/charges",
        summary="Credit a charge (card, convenience store or counter) to a purse",
        handler=charge,
        request=ChargeRequest,
        response=Booked,
    ),
    Route(
        method="POST",
        path=f"{_W}/moves",
        summary="Move money from base money to cafeteria or textbook money",
        handler=move,
        request=MoveRequest,
        response=Booked,
    ),
    Route(
        method="POST",
        path=f"{_W}/suspend",
        summary="Suspend the account: every card and payment is refused",
        handler=suspend,
        response=StatusChanged,
    ),
    Route(
        method="POST",
        path=f"{_W}/resume",
        summary="Resume a suspended account (at the co-op counter)",
        handler=resume,
        response=StatusChanged,
    ),
    Route(
        method="GET",
        path="/api/v1/audit",
        summary="Recount every shard's books from its journal",
        handler=audit,
        response=AuditAnswer,
    ),
)
