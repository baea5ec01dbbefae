"""The portal home's desk (FLOWS §3 step 5): a member's inquiries, document requests and
event applications, and staff's side of each."""

from __future__ import annotations

from typing import Annotated

import msgspec

from coopnode.actors.identity.messages.base import BirthDate, IdentityMessage, Text
from coopnode.domain.bounds import EventSeats, RecordNo
from coopnode.domain.member_desk import (
    AnswerBy,
    Attendance,
    DocumentRequest,
    DocumentStatus,
    Event,
    EventApplication,
    Inquiry,
    InquiryCategory,
    InquiryStatus,
)
from coopnode.domain.messages import Label, MemberNo

DeskText = Annotated[str, msgspec.Meta(max_length=20_000)]
Idem = Annotated[str, msgspec.Meta(max_length=64)]
StaffActor = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Number = RecordNo


class DeskView(IdentityMessage, frozen=True, tag="desk_view"):
    """A member's inquiries, document requests, event applications and open events."""

    member_no: MemberNo


class InquiryNew(IdentityMessage, frozen=True, tag="inquiry_new"):
    member_no: MemberNo
    category: InquiryCategory
    subject: DeskText
    body: DeskText
    answer_by: AnswerBy
    idem: Idem = ""  # the form's key: a second submit of the same form is the first


class DocumentNew(IdentityMessage, frozen=True, tag="document_new"):
    member_no: MemberNo
    document_id: Text
    idem: Idem = ""


class EventApply(IdentityMessage, frozen=True, tag="event_apply"):
    member_no: MemberNo
    event_id: Number


class EventCancel(IdentityMessage, frozen=True, tag="event_cancel"):
    member_no: MemberNo
    event_id: Number


class CardAttempt(IdentityMessage, frozen=True, tag="card_attempt"):
    """Count one IC card registration try against the member's daily bound."""

    member_no: MemberNo


class StaffInquiries(IdentityMessage, frozen=True, tag="staff_inquiries"):
    status: InquiryStatus | None = None


class InquiryAnswerNew(IdentityMessage, frozen=True, tag="inquiry_answer"):
    actor: StaffActor
    inquiry_no: Number
    answer: DeskText


class StaffDocuments(IdentityMessage, frozen=True, tag="staff_documents"):
    status: DocumentStatus | None = None


class DocumentMarkSent(IdentityMessage, frozen=True, tag="document_sent"):
    actor: StaffActor
    request_no: Number


class EventCreate(IdentityMessage, frozen=True, tag="event_create"):
    actor: StaffActor
    coop: Label
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    date: BirthDate  # the same YYYY-MM-DD shape
    place: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    capacity: EventSeats
    apply_until_s: Annotated[float, msgspec.Meta(gt=0)]


class EventRosterGet(IdentityMessage, frozen=True, tag="event_roster"):
    event_id: Number


class EventAttendanceSet(IdentityMessage, frozen=True, tag="event_attendance"):
    actor: StaffActor
    event_id: Number
    member_no: MemberNo
    attendance: Attendance


# Replies --------------------------------------------------------------------------------


class EventSeat(IdentityMessage, frozen=True):
    """An open event with the member's application to it, if any."""

    event: Event
    application: EventApplication | None = None


class DeskPage(IdentityMessage, frozen=True, tag="desk_page"):
    coop: str
    inquiries: list[Inquiry]
    documents: list[DocumentRequest]
    applications: list[EventSeat]  # every event the member applied to, newest first
    events: list[EventSeat]  # events open for application


class DeskNumber(IdentityMessage, frozen=True, tag="desk_number"):
    number: int


class InquiryList(IdentityMessage, frozen=True, tag="inquiry_list"):
    inquiries: list[Inquiry]


class DocumentList(IdentityMessage, frozen=True, tag="document_list"):
    documents: list[DocumentRequest]


class EventRoster(IdentityMessage, frozen=True, tag="event_roster"):
    event: Event
    applications: list[EventApplication]
