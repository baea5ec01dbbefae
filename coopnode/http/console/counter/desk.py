"""The desk at the counter (FLOWS §3 step 5, staff's side): answer members' inquiries,
record that a postal document was sent, create events and record attendance. The
identity actor writes each change with its audit entry under the clerk."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from coopnode.actors.identity.messages import (
    DocumentList,
    DocumentMarkSent,
    EventAttendanceSet,
    EventCreate,
    EventRoster,
    EventRosterGet,
    InquiryAnswerNew,
    InquiryList,
    StaffDocuments,
    StaffInquiries,
)
from coopnode.domain.bounds import RecordNo, parse_int
from coopnode.domain.member_desk import DocumentStatus, InquiryStatus
from coopnode.http.console.counter.common import DESK, counter_render, form_field, refused_text
from coopnode.http.console.pages import FORM, see_other
from coopnode.http.edge import staff_actor
from coopnode.http.errors import ApiError
from coopnode.http.identity_front import ask
from coopnode.http.portal.wallet import settings_key

_TOKYO = datetime.timezone(datetime.timedelta(hours=9))


async def desk_page(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    inquiries = await ask(request, StaffInquiries(status=InquiryStatus.RECEIVED))
    documents = await ask(request, StaffDocuments(status=DocumentStatus.REQUESTED))
    if not isinstance(inquiries, InquiryList) or not isinstance(documents, DocumentList):
        raise TypeError("the desk answered with something else")
    context = {
        "inquiries": inquiries.inquiries,
        "documents": [doc for doc in documents.documents if doc.provided_by == "post"],
        "coops": sorted(request.app[settings_key].coops),
        "error": error,
        "done": request.query.get("done", "") in {"answered", "sent", "event"},
    }
    return counter_render(request, "counter/desk.html", context, status=status)


def _number(request: web.Request, name: str) -> int:
    return parse_int(request.match_info[name], RecordNo, name)


async def _desk_change(request: web.Request, build: Callable[[], Any], back: str) -> web.Response:
    try:
        await ask(request, build())
    except ApiError as refusal:
        return await desk_page(request, error=refused_text(request, refusal), status=refusal.status)
    return see_other(back)


async def answer_action(request: web.Request) -> web.Response:
    form = request[FORM]
    answer = form_field(form, "answer")
    inquiry_no = _number(request, "inquiry_no")

    def build() -> Any:
        return _build(
            InquiryAnswerNew, actor=staff_actor(request), inquiry_no=inquiry_no, answer=answer
        )

    return await _desk_change(request, build, f"{DESK}?done=answered")


async def sent_action(request: web.Request) -> web.Response:
    request_no = _number(request, "request_no")

    def build() -> Any:
        return DocumentMarkSent(actor=staff_actor(request), request_no=request_no)

    return await _desk_change(request, build, f"{DESK}?done=sent")


def _build(kind: type[Any], **fields: Any) -> Any:
    try:
        return msgspec.convert(fields, kind, strict=False)
    except msgspec.ValidationError as error:
        raise ApiError("invalid_input", f"invalid request: {error}") from None


async def event_action(request: web.Request) -> web.Response:
    form = request[FORM]
    try:
        until = datetime.datetime.fromisoformat(form_field(form, "apply_until"))
    except ValueError:
        return await desk_page(
            request, error=refused_text(request, ApiError("invalid_input", "date")), status=400
        )
    until = until if until.tzinfo else until.replace(tzinfo=_TOKYO)
    try:
        message = _build(
            EventCreate, actor=staff_actor(request), coop=form_field(form, "coop"),
            title=form_field(form, "title"), date=form_field(form, "date"),
            place=form_field(form, "place"), capacity=form_field(form, "capacity"),
            apply_until_s=until.timestamp(),
        )  # fmt: skip
        roster = await ask(request, message)
    except ApiError as refusal:
        return await desk_page(request, error=refused_text(request, refusal), status=refusal.status)
    if not isinstance(roster, EventRoster):
        raise TypeError("the event answered with something else")
    return see_other(f"{DESK}/events/{roster.event.event_id}")


async def event_page(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    roster = await ask(request, EventRosterGet(event_id=_number(request, "event_id")))
    if not isinstance(roster, EventRoster):
        raise TypeError("the event answered with something else")
    context = {"roster": roster, "error": error}
    return counter_render(request, "counter/event.html", context, status=status)


async def attendance_action(request: web.Request) -> web.Response:
    form = request[FORM]
    event_id = _number(request, "event_id")
    try:
        message = _build(
            EventAttendanceSet, actor=staff_actor(request), event_id=event_id,
            member_no=form_field(form, "member_no"), attendance=form_field(form, "attendance"),
        )  # fmt: skip
        await ask(request, message)
    except ApiError as refusal:
        error = refused_text(request, refusal)
        return await event_page(request, error=error, status=refusal.status)
    return see_other(f"{DESK}/events/{event_id}")


async def find_event(request: web.Request) -> web.Response:
    raw = request.query.get("event_id", "")
    return see_other(f"{DESK}/events/{raw}" if raw.isdigit() else DESK)
