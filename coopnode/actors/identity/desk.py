"""The portal home's desk in the identity actor: inquiries, document requests and event
applications (FLOWS §3 step 5), and the daily bound on IC card registration tries.

Why here and not in a store of its own: every one of these records belongs to a member
account, names the member's co-op and name, needs the member's mail address to answer,
and staff actions on them go to the audit log — all of which the identity store holds.
One LMDB environment keeps each change (the record, its index, its counter and its audit
entry) in one transaction, without a second actor or a second file to back up.

Keys in the store's `desk` database (numbers are 8 bytes big-endian, member numbers 12
ASCII digits, so a prefix scan reads newest first):
    n<kind>                    → the last number handed out for inquiries, documents, …
    i<member><no>              → Inquiry             I<no> → member
    d<member><no>              → DocumentRequest     D<no> → member
    E<event id>                → Event
    a<member><event id>        → EventApplication    r<event id><member> → (empty)
    c<member><kind>            → "<YYYY-MM-DD>:<count>": today's count of one action
    k<member><idem>            → the number a form's first submit got (double submit)

Long by a few lines: one part of the identity actor, the whole of the member desk.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import msgspec

from coopnode.actors.identity.answers import answer, refused
from coopnode.actors.identity.context import IdentityContext
from coopnode.actors.identity.messages import (
    Answer,
    CardAttempt,
    DeskNumber,
    DeskPage,
    DeskView,
    DocumentList,
    DocumentMarkSent,
    DocumentNew,
    Done,
    EventApply,
    EventAttendanceSet,
    EventCancel,
    EventCreate,
    EventRoster,
    EventRosterGet,
    EventSeat,
    IdentityReason,
    InquiryAnswerNew,
    InquiryList,
    InquiryNew,
    Refused,
    StaffDocuments,
    StaffInquiries,
)
from coopnode.actors.identity.store import Tx
from coopnode.actors.notify import mails
from coopnode.actors.notify.messages import MailMessage
from coopnode.domain.errors import InvariantViolation
from coopnode.domain.identity import Account
from coopnode.domain.member_desk import (
    ApplicationStatus,
    Attendance,
    DocumentRequest,
    DocumentStatus,
    Event,
    EventApplication,
    Inquiry,
    InquiryStatus,
    check_application,
    check_document_request,
    check_event,
    check_inquiry,
    event_open,
    text_length_ok,
)

_ZONE = ZoneInfo("Asia/Tokyo")
_NUMBER_BYTES = 8


_StaffRecordT = TypeVar("_StaffRecordT", Inquiry, DocumentRequest)


def _no(number: int) -> bytes:
    return number.to_bytes(_NUMBER_BYTES, "big")


# Inquiries and document requests are kept twice: under "i"/"d" + member + number (the
# member's list) and in an index "I"/"D" + number → member (staff find them by number).
def _put_numbered(tx: Tx, index: bytes, member_no: str, number: int, record: Any) -> None:
    tx.desk_put(index.lower() + member_no.encode() + _no(number), record)
    tx.desk_put_raw(index + _no(number), member_no.encode())


def _numbered_key(tx: Tx, index: bytes, number: int) -> bytes | None:
    """The record key behind `index` + number, or None when there is no such number."""
    member = tx.desk_raw(index + _no(number))
    return None if member is None else index.lower() + member + _no(number)


def _bad(message: str) -> Refused:
    return refused(IdentityReason.INVALID_INPUT, message)


class MemberDesk:
    def __init__(self, context: IdentityContext) -> None:
        self.store = context.store
        self.bounds = context.settings.portal
        self.clock = context.clock
        self.portal_url = context.bounds.portal_base_url

    # Shared pieces ------------------------------------------------------------------------

    @staticmethod
    def _next(tx: Tx, kind: bytes) -> int:
        raw = tx.desk_raw(b"n" + kind)
        number = (int.from_bytes(raw, "big") if raw else 0) + 1
        tx.desk_put_raw(b"n" + kind, _no(number))
        return number

    def _count_today(self, tx: Tx, member_no: str, kind: str, limit: int) -> bool:
        """Count one action of today; False (and nothing counted) when over `limit`."""
        today = datetime.datetime.fromtimestamp(self.clock(), _ZONE).date().isoformat()
        key = f"c{member_no}{kind}".encode()
        raw = tx.desk_raw(key)
        day, _, count = (raw or b"").decode().partition(":")
        used = int(count) if day == today else 0
        if used >= limit:
            return False
        tx.desk_put_raw(key, f"{today}:{used + 1}".encode())
        return True

    @staticmethod
    def _replayed(tx: Tx, member_no: str, idem: str) -> int | None:
        if not idem:
            return None
        raw = tx.desk_raw(f"k{member_no}{idem}".encode())
        return None if raw is None else int.from_bytes(raw, "big")

    @staticmethod
    def _remember(tx: Tx, member_no: str, idem: str, number: int) -> None:
        if idem:
            tx.desk_put_raw(f"k{member_no}{idem}".encode(), _no(number))

    @staticmethod
    def _account(tx: Tx, member_no: str) -> Account:
        account = tx.account(member_no)
        if account is None:
            raise InvariantViolation(f"a signed-in member {member_no} has no account")
        return account

    @staticmethod
    def _event(tx: Tx, event_id: int) -> Event | None:
        event = tx.desk_get(b"E" + _no(event_id), Event)
        if event is not None:
            check_event(event)
            if event.event_id != event_id:
                raise InvariantViolation(f"event {event_id} is stored under another number")
        return event

    # The member's page -------------------------------------------------------------------

    def view(self, request: DeskView) -> DeskPage:
        member_no = request.member_no
        rows = self.bounds.desk_rows_max
        member = member_no.encode()
        now_s = self.clock()
        with self.store.read() as tx:
            account = self._account(tx, member_no)
            inquiries = [record for _, record in tx.desk_scan(b"i" + member, Inquiry, rows)]
            documents = [r for _, r in tx.desk_scan(b"d" + member, DocumentRequest, rows)]
            mine = [r for _, r in tx.desk_scan(b"a" + member, EventApplication, rows)]
            applications = []
            for application in mine:
                check_application(application)
                event = self._event(tx, application.event_id)
                if event is None or application.member_no != member_no:
                    raise InvariantViolation(f"application of {member_no} names no event")
                applications.append(EventSeat(event=event, application=application))
            taken = {seat.event.event_id: seat.application for seat in applications}
            events = [
                EventSeat(event=event, application=taken.get(event.event_id))
                for _, event in tx.desk_scan(b"E", Event, self.bounds.events_open_max)
                if event.coop == account.coop and event_open(event, now_s)
            ]
        for inquiry in inquiries:
            check_inquiry(inquiry)
        for document in documents:
            check_document_request(document)
        return DeskPage(
            coop=account.coop,
            inquiries=inquiries,
            documents=documents,
            applications=applications,
            events=events,
        )

    def inquiry_new(self, request: InquiryNew) -> Done | DeskNumber | Refused:
        bounds = self.bounds
        subject, body = request.subject.strip(), request.body.strip()
        if not text_length_ok(subject, 1, bounds.inquiry_subject_chars_max):
            return _bad("the subject is empty or too long")
        if not text_length_ok(body, bounds.inquiry_body_chars_min, bounds.inquiry_body_chars_max):
            return _bad("the question is too short or too long")
        with self.store.write() as tx:
            replayed = self._replayed(tx, request.member_no, request.idem)
            if replayed is not None:
                return DeskNumber(number=replayed)
            account = self._account(tx, request.member_no)
            if not self._count_today(
                tx, request.member_no, "inquiry", bounds.inquiries_per_day_max
            ):
                return refused(IdentityReason.DESK_DAILY_LIMIT, "too many inquiries today")
            number = self._next(tx, b"inquiry")
            inquiry = Inquiry(
                inquiry_no=number,
                member_no=account.member_no,
                coop=account.coop,
                category=request.category,
                subject=subject,
                body=body,
                answer_by=request.answer_by,
                status=InquiryStatus.RECEIVED,
                asked_at_s=self.clock(),
            )
            check_inquiry(inquiry)
            _put_numbered(tx, b"I", account.member_no, number, inquiry)
            self._remember(tx, request.member_no, request.idem, number)
        return DeskNumber(number=number)

    def document_new(self, request: DocumentNew) -> DeskNumber | Refused:
        with self.store.write() as tx:
            replayed = self._replayed(tx, request.member_no, request.idem)
            if replayed is not None:
                return DeskNumber(number=replayed)
            account = self._account(tx, request.member_no)
            offer = next(
                (
                    offer
                    for offer in self.bounds.documents
                    if offer.document_id == request.document_id
                    and (not offer.coops or account.coop in offer.coops)
                ),
                None,
            )
            if offer is None:
                return refused(IdentityReason.DOCUMENT_UNKNOWN, "the co-op offers no such document")
            limit = self.bounds.document_requests_per_day_max
            if not self._count_today(tx, request.member_no, "document", limit):
                return refused(IdentityReason.DESK_DAILY_LIMIT, "too many document requests today")
            number = self._next(tx, b"document")
            download = offer.provided_by == "download"
            record = DocumentRequest(
                request_no=number,
                member_no=account.member_no,
                applicant=account.name,
                document_id=offer.document_id,
                title_ja=offer.title_ja,
                title_en=offer.title_en,
                provided_by=offer.provided_by,
                url=offer.url,
                status=DocumentStatus.AVAILABLE if download else DocumentStatus.REQUESTED,
                requested_at_s=self.clock(),
            )
            check_document_request(record)
            _put_numbered(tx, b"D", account.member_no, number, record)
            self._remember(tx, request.member_no, request.idem, number)
        return DeskNumber(number=number)

    def event_apply(self, request: EventApply) -> DeskNumber | Refused:
        """Apply once: a second application (a double submit) answers the first."""
        key = b"a" + request.member_no.encode() + _no(request.event_id)
        with self.store.write() as tx:
            account = self._account(tx, request.member_no)
            event = self._event(tx, request.event_id)
            if event is None or event.coop != account.coop:
                return refused(IdentityReason.EVENT_UNKNOWN, "no such event")
            current = tx.desk_get(key, EventApplication)
            if current is not None and current.status is ApplicationStatus.APPLIED:
                return DeskNumber(number=current.application_no)
            if not event_open(event, self.clock()):
                return refused(IdentityReason.EVENT_CLOSED, "the application period is over")
            if event.applied >= event.capacity:
                return refused(IdentityReason.EVENT_FULL, "the event is full")
            number = current.application_no if current else self._next(tx, b"application")
            application = EventApplication(
                application_no=number,
                event_id=event.event_id,
                member_no=account.member_no,
                applicant=account.name,
                status=ApplicationStatus.APPLIED,
                applied_at_s=self.clock(),
            )
            check_application(application)
            updated = msgspec.structs.replace(event, applied=event.applied + 1)
            check_event(updated)
            tx.desk_put(key, application)
            tx.desk_put(b"E" + _no(event.event_id), updated)
            tx.desk_put_raw(b"r" + _no(event.event_id) + account.member_no.encode(), b"")
        return DeskNumber(number=number)

    def event_cancel(self, request: EventCancel) -> Done | Refused:
        key = b"a" + request.member_no.encode() + _no(request.event_id)
        with self.store.write() as tx:
            application = tx.desk_get(key, EventApplication)
            event = self._event(tx, request.event_id)
            if application is None or event is None:
                return refused(IdentityReason.EVENT_UNKNOWN, "no such application")
            if application.status is ApplicationStatus.CANCELLED:
                return Done(message="the application was cancelled")
            if not event_open(event, self.clock()):
                return refused(IdentityReason.EVENT_CLOSED, "the application period is over")
            cancelled = msgspec.structs.replace(
                application, status=ApplicationStatus.CANCELLED, cancelled_at_s=self.clock()
            )
            check_application(cancelled)
            updated = msgspec.structs.replace(event, applied=event.applied - 1)
            check_event(updated)
            tx.desk_put(key, cancelled)
            tx.desk_put(b"E" + _no(event.event_id), updated)
        return Done(message="the application was cancelled")

    def card_attempt(self, request: CardAttempt) -> Done | Refused:
        with self.store.write() as tx:
            limit = self.bounds.card_attempts_per_day_max
            if not self._count_today(tx, request.member_no, "card", limit):
                return refused(IdentityReason.DESK_DAILY_LIMIT, "too many card registrations today")
        return Done(message="counted")

    # Staff -------------------------------------------------------------------------------

    def _staff_list(
        self,
        index: bytes,
        record_type: type[_StaffRecordT],
        check: Callable[[_StaffRecordT], None],
        wanted: Callable[[_StaffRecordT], bool],
    ) -> list[_StaffRecordT]:
        """Records through the numbered index `index` (b"I" or b"D"), checked, the newest
        `desk_rows_max` that `wanted` keeps; an index entry without its record is a bug."""
        found: list[_StaffRecordT] = []
        with self.store.read() as tx:
            for key, member in tx.desk_scan_raw(index, 10 * self.bounds.desk_rows_max):
                record = tx.desk_get(index.lower() + member + key[1:], record_type)
                if record is None:
                    raise InvariantViolation(f"desk index {key.hex()} points at nothing")
                check(record)
                if wanted(record):
                    found.append(record)
                if len(found) >= self.bounds.desk_rows_max:
                    break
        return found

    def staff_inquiries(self, request: StaffInquiries) -> InquiryList:
        return InquiryList(
            inquiries=self._staff_list(
                b"I",
                Inquiry,
                check_inquiry,
                lambda inquiry: request.status in (None, inquiry.status),
            )
        )

    def inquiry_answer(self, request: InquiryAnswerNew) -> Answer:
        text = request.answer.strip()
        if not text_length_ok(text, 1, self.bounds.inquiry_answer_chars_max):
            return answer(_bad("the answer is empty or too long"))
        with self.store.write() as tx:
            key = _numbered_key(tx, b"I", request.inquiry_no)
            if key is None or (inquiry := tx.desk_get(key, Inquiry)) is None:
                return answer(refused(IdentityReason.NOT_FOUND, "no such inquiry"))
            if inquiry.status is InquiryStatus.ANSWERED:
                return answer(refused(IdentityReason.CONFLICT, "the inquiry is answered already"))
            answered = msgspec.structs.replace(
                inquiry,
                status=InquiryStatus.ANSWERED,
                answer=text,
                answered_at_s=self.clock(),
                answered_by=request.actor,
            )
            check_inquiry(answered)
            tx.desk_put(key, answered)
            tx.append_audit(
                at_s=self.clock(),
                actor=request.actor,
                action="inquiry.answer",
                target=str(request.inquiry_no),
                detail=f"member {inquiry.member_no}",
            )
            account = self._account(tx, inquiry.member_no)
        mail = mails.inquiry_answer_mail(
            name=account.name,
            inquiry_no=inquiry.inquiry_no,
            subject=inquiry.subject,
            answer=text,
            url=f"{self.portal_url}/portal/home",
        )
        message = MailMessage(to=account.mail, subject=mail.subject, body=mail.body, kind="desk")
        return answer(InquiryList(inquiries=[answered]), [message])

    def staff_documents(self, request: StaffDocuments) -> DocumentList:
        return DocumentList(
            documents=self._staff_list(
                b"D",
                DocumentRequest,
                check_document_request,
                lambda record: request.status in (None, record.status),
            )
        )

    def document_sent(self, request: DocumentMarkSent) -> DocumentList | Refused:
        with self.store.write() as tx:
            key = _numbered_key(tx, b"D", request.request_no)
            if key is None or (record := tx.desk_get(key, DocumentRequest)) is None:
                return refused(IdentityReason.NOT_FOUND, "no such document request")
            if record.status is not DocumentStatus.REQUESTED:
                return refused(IdentityReason.CONFLICT, "the request is not waiting to be posted")
            sent = msgspec.structs.replace(
                record, status=DocumentStatus.SENT, sent_at_s=self.clock()
            )
            check_document_request(sent)
            tx.desk_put(key, sent)
            tx.append_audit(
                at_s=self.clock(),
                actor=request.actor,
                action="document.sent",
                target=str(request.request_no),
                detail=f"{record.document_id} to member {record.member_no}",
            )
        return DocumentList(documents=[sent])

    def event_create(self, request: EventCreate) -> EventRoster | Refused:
        if request.capacity > self.bounds.event_capacity_max:
            return _bad(f"capacity is at most {self.bounds.event_capacity_max}")
        now_s = self.clock()
        if request.apply_until_s <= now_s:
            return _bad("the application deadline is in the past")
        held = datetime.date.fromisoformat(request.date)
        day_after = datetime.datetime.combine(held + datetime.timedelta(days=1), datetime.time())
        if request.apply_until_s > day_after.replace(tzinfo=_ZONE).timestamp():
            return _bad("applications must close by the end of the event's day")
        with self.store.write() as tx:
            number = self._next(tx, b"event")
            event = Event(
                event_id=number,
                coop=request.coop,
                title=request.title,
                date=request.date,
                place=request.place,
                capacity=request.capacity,
                apply_until_s=request.apply_until_s,
                applied=0,
                created_at_s=now_s,
            )
            check_event(event)
            tx.desk_put(b"E" + _no(number), event)
            tx.append_audit(
                at_s=now_s,
                actor=request.actor,
                action="event.create",
                target=str(number),
                detail=f"{request.title} {request.date} seats {request.capacity}",
            )
        return EventRoster(event=event, applications=[])

    def event_roster(self, request: EventRosterGet) -> EventRoster | Refused:
        with self.store.read() as tx:
            event = self._event(tx, request.event_id)
            if event is None:
                return refused(IdentityReason.NOT_FOUND, "no such event")
            prefix = b"r" + _no(event.event_id)
            applications = []
            for key, _ in tx.desk_scan_raw(prefix, self.bounds.event_capacity_max * 2):
                record = tx.desk_get(
                    b"a" + key[len(prefix) :] + _no(event.event_id), EventApplication
                )
                if record is None:
                    raise InvariantViolation(f"roster of event {event.event_id} is stale")
                check_application(record)
                applications.append(record)
        return EventRoster(event=event, applications=applications)

    def event_attendance(self, request: EventAttendanceSet) -> EventRoster | Refused:
        key = b"a" + request.member_no.encode() + _no(request.event_id)
        with self.store.write() as tx:
            event = self._event(tx, request.event_id)
            application = tx.desk_get(key, EventApplication)
            if event is None or application is None:
                return refused(IdentityReason.NOT_FOUND, "no such application")
            if application.status is not ApplicationStatus.APPLIED:
                return refused(IdentityReason.CONFLICT, "the application was cancelled")
            if request.attendance is Attendance.UNKNOWN:
                return _bad("attendance is attended or absent")
            marked = msgspec.structs.replace(application, attendance=request.attendance)
            check_application(marked)
            tx.desk_put(key, marked)
            tx.append_audit(
                at_s=self.clock(),
                actor=request.actor,
                action="event.attendance",
                target=str(request.event_id),
                detail=f"member {request.member_no} {request.attendance.value}",
            )
        return EventRoster(event=event, applications=[marked])
