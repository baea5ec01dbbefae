"""The staff API of the portal home's desk (FLOWS §3 step 5), with the staff token:

    GET  /api/v1/staff/inquiries?status=received     inquiries, newest first
    POST /api/v1/staff/inquiries/{no}/answer         answer one; mails the member
    GET  /api/v1/staff/documents?status=requested    document requests, newest first
    POST /api/v1/staff/documents/{no}/sent           a postal document went out (発送日)
    POST /api/v1/staff/events                        create an event
    GET  /api/v1/staff/events/{id}                   an event and its applications
    POST /api/v1/staff/events/{id}/attendance        record whether a member came

Every change is written with its audit entry in one identity-store transaction
(`identity_desk`); the actor in the audit log is the caller: `staff:<id>` for a staff
member, `token:<name>` for a machine's API token (`edge.staff_actor`).
"""

from __future__ import annotations

import datetime
from typing import Annotated

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
from coopnode.domain.bounds import EventSeats, RecordNo, parse_int
from coopnode.domain.member_desk import Attendance, DocumentStatus, InquiryStatus
from coopnode.domain.messages import Label, MemberNo
from coopnode.domain.money import Reason
from coopnode.domain.staff import Permission
from coopnode.http.edge import Body, Route, read_body, staff_actor, staff_may
from coopnode.http.errors import ApiError
from coopnode.http.identity_front import ask, json_response
from coopnode.http.portal.wallet import settings_key


class AnswerBody(Body, frozen=True):
    answer: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]


class SentBody(Body, frozen=True):
    pass


class EventBody(Body, frozen=True):
    coop: Label
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    date: datetime.date
    place: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    capacity: EventSeats
    # RFC 3339 with its offset, e.g. 2026-12-01T17:00:00+09:00.
    apply_until: datetime.datetime


class AttendanceBody(Body, frozen=True):
    member_no: MemberNo
    attendance: Attendance


def _number(request: web.Request, name: str) -> int:
    return parse_int(request.match_info[name], RecordNo, name)


def _status(request: web.Request, allowed: list[str]) -> str | None:
    raw = request.query.get("status", "")
    if raw and raw not in allowed:
        raise ApiError(Reason.INVALID_INPUT, f"status is one of {allowed}")
    return raw or None


def _inquiry_status(request: web.Request) -> InquiryStatus | None:
    raw = _status(request, [status.value for status in InquiryStatus])
    return None if raw is None else InquiryStatus(raw)


def _document_status(request: web.Request) -> DocumentStatus | None:
    raw = _status(request, [status.value for status in DocumentStatus])
    return None if raw is None else DocumentStatus(raw)


async def list_inquiries(request: web.Request) -> web.Response:
    return json_response(await ask(request, StaffInquiries(status=_inquiry_status(request))))


async def answer_inquiry(request: web.Request) -> web.Response:
    actor = staff_actor(request)
    body = await read_body(request, AnswerBody)
    message = InquiryAnswerNew(
        actor=actor, inquiry_no=_number(request, "inquiry_no"), answer=body.answer
    )
    return json_response(await ask(request, message))


async def list_documents(request: web.Request) -> web.Response:
    query = StaffDocuments(status=_document_status(request))
    return json_response(await ask(request, query))


async def document_sent(request: web.Request) -> web.Response:
    actor = staff_actor(request)
    await read_body(request, SentBody)
    message = DocumentMarkSent(actor=actor, request_no=_number(request, "request_no"))
    return json_response(await ask(request, message))


async def create_event(request: web.Request) -> web.Response:
    actor = staff_actor(request)
    body = await read_body(request, EventBody)
    if body.apply_until.tzinfo is None:
        raise ApiError(Reason.INVALID_INPUT, "apply_until needs its UTC offset")
    if body.coop not in request.app[settings_key].coops:
        raise ApiError(Reason.INVALID_INPUT, f"no co-op {body.coop!r} in the settings")
    message = EventCreate(
        actor=actor,
        coop=body.coop,
        title=body.title,
        date=body.date.isoformat(),
        place=body.place,
        capacity=body.capacity,
        apply_until_s=body.apply_until.timestamp(),
    )
    return json_response(await ask(request, message), 201)


async def event_roster(request: web.Request) -> web.Response:
    return json_response(await ask(request, EventRosterGet(event_id=_number(request, "event_id"))))


async def event_attendance(request: web.Request) -> web.Response:
    actor = staff_actor(request)
    body = await read_body(request, AttendanceBody)
    message = EventAttendanceSet(
        actor=actor,
        event_id=_number(request, "event_id"),
        member_no=body.member_no,
        attendance=body.attendance,
    )
    return json_response(await ask(request, message))


DESK_ROUTES: tuple[Route, ...] = (
    Route(
        method="GET",
        path="/api/v1/staff/inquiries",
        summary="Members' inquiries (お問合せ), newest first; ?status=received|answered",
        access=staff_may(Permission.DESK_ANSWER),
        handler=list_inquiries,
        response=InquiryList,
        query=(("status", "string"),),
    ),
    Route(
        method="POST",
        path="/api/v1/staff/inquiries/{inquiry_no}/answer",
        summary="Answer an inquiry: shown on the member's home and mailed (audited)",
        access=staff_may(Permission.DESK_ANSWER),
        handler=answer_inquiry,
        request=AnswerBody,
        response=InquiryList,
    ),
    Route(
        method="GET",
        path="/api/v1/staff/documents",
        summary="Document requests (資料請求), newest first; ?status=requested|sent|available",
        access=staff_may(Permission.DESK_ANSWER),
        handler=list_documents,
        response=DocumentList,
        query=(("status", "string"),),
    ),
    Route(
        method="POST",
        path="/api/v1/staff/documents/{request_no}/sent",
        summary="Record that a postal document was sent; sets its 発送日 (audited)",
        access=staff_may(Permission.DESK_ANSWER),
        handler=document_sent,
        request=SentBody,
        response=DocumentList,
    ),
    Route(
        method="POST",
        path="/api/v1/staff/events",
        summary="Create an event members of the co-op may apply to (audited)",
        access=staff_may(Permission.DESK_ANSWER),
        handler=create_event,
        request=EventBody,
        response=EventRoster,
        status=201,
    ),
    Route(
        method="GET",
        path="/api/v1/staff/events/{event_id}",
        summary="An event and its applications",
        access=staff_may(Permission.DESK_ANSWER),
        handler=event_roster,
        response=EventRoster,
    ),
    Route(
        method="POST",
        path="/api/v1/staff/events/{event_id}/attendance",
        summary="Record whether an applicant attended (イベント参加結果; audited)",
        access=staff_may(Permission.DESK_ANSWER),
        handler=event_attendance,
        request=AttendanceBody,
        response=EventRoster,
    ),
)
