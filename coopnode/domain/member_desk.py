"""The portal home's desk (FLOWS §3 step 5): inquiries (お問合せ), document requests
(資料請求) and event applications (イベント申込), as records and plain rules.

Nothing here touches LMDB, Ray or aiohttp: the identity actor stores these records
(`identity_desk`) and the portal shows them (`portal_desk`). Every record is checked
before it is written and again when it is read (`check_*`); a record that breaks its
invariants raises `InvariantViolation`.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

from coopnode.domain.errors import InvariantViolation


class InquiryCategory(StrEnum):
    MEMBERSHIP = "membership"  # 組合員・出資金
    EMONEY = "emoney"  # 電子マネー・ミールプラン
    KYOSAI = "kyosai"  # 共済・保険
    SHOP = "shop"  # 店舗・教科書
    OTHER = "other"  # その他


class AnswerBy(StrEnum):
    MAIL = "mail"
    PHONE = "phone"


class InquiryStatus(StrEnum):
    RECEIVED = "received"  # 受付済
    ANSWERED = "answered"  # 回答済


class DocumentStatus(StrEnum):
    REQUESTED = "requested"  # 申込済: a postal document not sent yet
    SENT = "sent"  # 発送済
    AVAILABLE = "available"  # ダウンロード可: provided by URL at once


class ApplicationStatus(StrEnum):
    APPLIED = "applied"  # 申込済
    CANCELLED = "cancelled"  # 取消済


class Attendance(StrEnum):
    UNKNOWN = "unknown"  # 未確定
    ATTENDED = "attended"  # 参加
    ABSENT = "absent"  # 不参加


class _Record(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class Inquiry(_Record, frozen=True):
    inquiry_no: int
    member_no: str
    coop: str
    category: InquiryCategory
    subject: str
    body: str
    answer_by: AnswerBy
    status: InquiryStatus
    asked_at_s: float
    answer: str = ""
    answered_at_s: float = 0.0
    answered_by: str = ""


class DocumentRequest(_Record, frozen=True):
    request_no: int
    member_no: str
    applicant: str  # the member's name when they asked
    document_id: str
    title_ja: str
    title_en: str
    provided_by: str  # "post" or "download"
    url: str
    status: DocumentStatus
    requested_at_s: float
    sent_at_s: float = 0.0


class Event(_Record, frozen=True):
    event_id: int
    coop: str
    title: str
    date: str  # YYYY-MM-DD, the day the event is held
    place: str
    capacity: int
    apply_until_s: float
    applied: int  # applications that are not cancelled
    created_at_s: float


class EventApplication(_Record, frozen=True):
    application_no: int
    event_id: int
    member_no: str
    applicant: str
    status: ApplicationStatus
    applied_at_s: float
    cancelled_at_s: float = 0.0
    attendance: Attendance = Attendance.UNKNOWN


def check_inquiry(inquiry: Inquiry) -> None:
    if inquiry.inquiry_no < 1 or not inquiry.subject or not inquiry.body:
        raise InvariantViolation(f"inquiry {inquiry.inquiry_no} has no number, subject or body")
    answered = inquiry.status is InquiryStatus.ANSWERED
    if answered != bool(inquiry.answer) or answered != (inquiry.answered_at_s > 0):
        raise InvariantViolation(f"inquiry {inquiry.inquiry_no}: status and answer disagree")


def check_document_request(request: DocumentRequest) -> None:
    if request.request_no < 1:
        raise InvariantViolation("a document request has a positive number")
    if (request.status is DocumentStatus.SENT) != (request.sent_at_s > 0):
        raise InvariantViolation(f"document request {request.request_no}: sent without a date")
    if request.provided_by == "download" and request.status is not DocumentStatus.AVAILABLE:
        raise InvariantViolation(f"document request {request.request_no}: a download is posted")


def check_event(event: Event) -> None:
    if event.event_id < 1 or event.capacity < 1:
        raise InvariantViolation(f"event {event.event_id} has no number or no seats")
    if not 0 <= event.applied <= event.capacity:
        raise InvariantViolation(f"event {event.event_id} holds {event.applied} applications")


def check_application(application: EventApplication) -> None:
    cancelled = application.status is ApplicationStatus.CANCELLED
    if cancelled != (application.cancelled_at_s > 0):
        raise InvariantViolation(f"application {application.application_no}: cancel date wrong")
    if cancelled and application.attendance is not Attendance.UNKNOWN:
        raise InvariantViolation(f"application {application.application_no}: cancelled yet came")


def event_open(event: Event, now_s: float) -> bool:
    """Whether a member may still apply or cancel: until the application deadline."""
    return now_s < event.apply_until_s


def text_length_ok(text: str, minimum: int, maximum: int) -> bool:
    """Lengths count characters (a Japanese character is one), not bytes."""
    return minimum <= len(text) <= maximum
