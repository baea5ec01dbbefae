"""A member's page at the counter (purses, history, cards, status, overdrafts, desk
records) and the actions taken from it: resume, refund a tap, settle an overdraft."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from coopnode.domain.days import COOP_TIMEZONE
from coopnode.domain.messages import HistoryQuery, Refund, RefundCharge, SettleOverdraft
from coopnode.http.api.counter import book, history, member_file, resume
from coopnode.http.console.counter.common import (
    counter_render,
    form_field,
    form_key,
    member_no_in_path,
    member_path,
    refused_text,
)
from coopnode.http.console.counter.labels import DONE_TEXTS
from coopnode.http.console.pages import FORM, see_other, text
from coopnode.http.errors import ApiError

# Journal lines the member's page shows; older ones page by `before_seq`.
HISTORY_LINES_SHOWN = 20
# The history lines a refund form goes with: the taps of every kind of till.
REFUNDABLE_KINDS = frozenset({"pay", "offline_pay"})
# The counter shows times where the co-op is (every co-op of the node is in Japan).
_TOKYO = ZoneInfo(COOP_TIMEZONE)


def local_time(at_s: float) -> str:
    return datetime.datetime.fromtimestamp(at_s, _TOKYO).strftime("%Y-%m-%d %H:%M")


async def member_page(
    request: web.Request, *, error: str = "", status: int = 200, member_no: str | None = None
) -> web.Response:
    member_no = member_no or member_no_in_path(request)
    file = await member_file(request, member_no)
    try:
        query = msgspec.convert(
            {"before_seq": request.query.get("before_seq", "0"), "limit": HISTORY_LINES_SHOWN},
            HistoryQuery,
            strict=False,
        )
    except msgspec.ValidationError:
        query = HistoryQuery(limit=HISTORY_LINES_SHOWN)  # A cursor out of range: the newest.
    page = await history(request, member_no, query) if file.wallet is not None else None
    done = DONE_TEXTS.get(request.query.get("done", ""))
    context = {
        "file": file,
        "history": page,
        "times": {line.seq: local_time(line.at_ms / 1000) for line in page.lines}
        if page is not None
        else {},
        "refundable": REFUNDABLE_KINDS,
        "refund_key": form_key("refund"),
        "settle_key": form_key("settle"),
        "enrolled": local_time(file.account.enrolled_at_s),
        "done": text(request, done) if done else "",
        "error": error,
    }
    return counter_render(request, "counter/member.html", context, status=status)


async def _acting(
    request: web.Request, act: Callable[[str], Awaitable[object]], done: str
) -> web.Response:
    """Do `act` for the member of the path: to the member's page saying it is done, or
    the same page with the refusal (nothing was changed)."""
    member_no = member_no_in_path(request)
    try:
        await act(member_no)
    except ApiError as refusal:
        return await member_page(
            request, error=refused_text(request, refusal), status=refusal.status,
            member_no=member_no,
        )  # fmt: skip
    return see_other(f"{member_path(member_no)}?done={done}")


async def resume_action(request: web.Request) -> web.Response:
    return await _acting(request, lambda member_no: resume(request, member_no), "resumed")


def _payment_op(
    request: web.Request, member_no: str, kind: type[Refund | SettleOverdraft | RefundCharge]
) -> Refund | SettleOverdraft | RefundCharge:
    """The money operation a history line's form asks for, or a refusal naming the field."""
    form = request[FORM]
    fields: dict[str, object] = {"key": form_field(form, "key"), "member_no": member_no}
    if kind is RefundCharge:
        fields["charge_key"] = request.match_info["charge_key"]
    else:
        fields["payment_key"] = request.match_info["payment_key"]
    if kind is not SettleOverdraft:
        fields["amount_yen"] = form_field(form, "amount_yen")
    try:
        return msgspec.convert(fields, kind, strict=False)
    except msgspec.ValidationError as error:
        raise ApiError("invalid_input", f"invalid request: {error}") from None


async def refund_action(request: web.Request) -> web.Response:
    async def act(member_no: str) -> object:
        return await book(request, _payment_op(request, member_no, Refund), "counter.refund")

    return await _acting(request, act, "refund")


async def refund_charge_action(request: web.Request) -> web.Response:
    async def act(member_no: str) -> object:
        op = _payment_op(request, member_no, RefundCharge)
        return await book(request, op, "counter.refund_charge")

    return await _acting(request, act, "refund")


async def settle_action(request: web.Request) -> web.Response:
    async def act(member_no: str) -> object:
        op = _payment_op(request, member_no, SettleOverdraft)
        return await book(request, op, "counter.settle_overdraft")

    return await _acting(request, act, "settle")
