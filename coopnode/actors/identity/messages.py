"""What crosses the boundary between the HTTP front and the identity actor.

Requests and replies are tagged unions of frozen Structs, sent as MessagePack. A reply
travels in an `Answer` with the notifications the front must hand to its notifier: mails,
SMS and calls carrying passcodes are built in the actor, sent by the front, and never
written anywhere on the way.

Requests that carry a password, a code or a session id print without them.

Long, and only declarations: the wire types of every identity request and reply, in
the one union that the actor's decoder reads.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec

from coopnode.actors.notify.messages import Notification
from coopnode.domain.bounds import Cursor, EventSeats, PageLines, RecordNo
from coopnode.domain.identity import FlowKind, FlowState, SessionKind
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
from coopnode.domain.messages import Booked, DepositYen, Label, MemberNo

Text = Annotated[str, msgspec.Meta(max_length=1024)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
BirthDate = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")
]
Secret = Annotated[str, msgspec.Meta(max_length=1024)]
FlowId = Annotated[str, msgspec.Meta(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class _Message(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    def __repr__(self) -> str:
        # Requests carry passwords, codes and session ids: print the kind only.
        return f"{type(self).__name__}(…)"


# Enrolment ------------------------------------------------------------------------------


class InsuranceItem(_Message, frozen=True):
    """One mutual-aid or insurance product paid at enrolment, e.g. 学生総合共済 14,400 yen."""

    label: Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
    amount_yen: DepositYen


class Enrolment(_Message, frozen=True):
    """What staff type (or import) to enrol a member (FLOWS §0)."""

    member_no: MemberNo
    name: Name
    kana: Name
    birth_date: BirthDate
    mail: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    phone: Annotated[str, msgspec.Meta(min_length=4, max_length=32)]
    coop: Label
    share_units: Annotated[int, msgspec.Meta(ge=1, le=1000, description="shares (口)")]
    insurance: Annotated[list[InsuranceItem], msgspec.Meta(max_length=10)] = []
    emoney_yen: DepositYen = 0
    meal_plan: Label = "none"
    meal_yen: DepositYen = 0


# Requests -------------------------------------------------------------------------------


class Enrol(_Message, frozen=True, tag="enrol"):
    actor: str
    enrolment: Enrolment


class MailChangeStart(_Message, frozen=True, tag="mail_change_start"):
    member_no: Text
    birth_date: Text


class PasswordStart(_Message, frozen=True, tag="password_start"):
    mail: Text


class SignIn(_Message, frozen=True, tag="sign_in"):
    """A password sign-in: the portal (§3), the my-page (§4) or staff."""

    kind: SessionKind
    identifier: Text
    password: Secret


class WalletLoginStart(_Message, frozen=True, tag="wallet_login_start"):
    identifier: Text


class FlowStep(_Message, frozen=True, tag="flow_step"):
    """One step of a flow; which fields matter depends on the step (see the flow's part)."""

    kind: FlowKind
    step: str
    flow_id: FlowId
    code: Secret = ""
    mail: Text = ""
    password: Secret = ""
    password_confirm: Secret = ""
    method: str = ""
    phone: Text = ""
    country_code: Text = "+81"
    # The session the browser held before signing in; it is revoked (rotation).
    old_session_id: Secret = ""


class CheckSession(_Message, frozen=True, tag="check_session"):
    kinds: tuple[SessionKind, ...]
    session_id: Secret
    # Required for requests that change something; None for reads.
    csrf_token: Secret | None = None


class SignOut(_Message, frozen=True, tag="sign_out"):
    session_id: Secret


class GetProfile(_Message, frozen=True, tag="profile"):
    member_no: MemberNo


class TotpBegin(_Message, frozen=True, tag="totp_begin"):
    member_no: MemberNo


class TotpConfirm(_Message, frozen=True, tag="totp_confirm"):
    member_no: MemberNo
    code: Secret


class CreateStaff(_Message, frozen=True, tag="create_staff"):
    actor: str
    staff_id: Text
    name: Name
    password: Secret


class StaffResume(_Message, frozen=True, tag="staff_resume"):
    actor: str
    member_no: MemberNo


class StaffChangeMail(_Message, frozen=True, tag="staff_change_mail"):
    actor: str
    member_no: MemberNo
    mail: Text


class AuditList(_Message, frozen=True, tag="audit_list"):
    before_seq: Cursor = 0
    limit: PageLines = 100


class OAuthHttp(_Message, frozen=True):
    """An OAuth request as the front received it, for authlib in the actor."""

    method: str
    uri: str
    query: list[tuple[str, str]] = []
    form: list[tuple[str, str]] = []
    authorization: Secret = ""


class OAuthConsent(_Message, frozen=True, tag="oauth_consent"):
    member_no: MemberNo
    http: OAuthHttp


class OAuthDecide(_Message, frozen=True, tag="oauth_decide"):
    member_no: MemberNo
    http: OAuthHttp
    allow: bool


class OAuthToken(_Message, frozen=True, tag="oauth_token"):
    http: OAuthHttp


class OAuthRevoke(_Message, frozen=True, tag="oauth_revoke"):
    http: OAuthHttp


class OAuthIntrospect(_Message, frozen=True, tag="oauth_introspect"):
    authorization: Secret
    scope: str


class ListGrants(_Message, frozen=True, tag="list_grants"):
    member_no: MemberNo


class RevokeGrant(_Message, frozen=True, tag="revoke_grant"):
    member_no: MemberNo
    grant_id: Text


class FamilyGrant(_Message, frozen=True, tag="family_grant"):
    """The member lets the holder of `guardian_mail`'s portal account read their history."""

    member_no: MemberNo
    guardian_mail: Text


class FamilyRevoke(_Message, frozen=True, tag="family_revoke"):
    member_no: MemberNo
    guardian_mail: Text


class FamilyList(_Message, frozen=True, tag="family_list"):
    """Both ends of one account's family access: its guardians and the members it sees."""

    member_no: MemberNo


class GuardianStart(_Message, frozen=True, tag="guardian_start"):
    """A guardian accepts an invitation: a code goes to the address if it was invited."""

    mail: Text


class GuardianWards(_Message, frozen=True, tag="guardian_wards"):
    """The members who granted a guardian (signed in as `guardian_mail`) family access."""

    guardian_mail: Text


class AuditRecord(_Message, frozen=True, tag="audit_record"):
    """A staff action carried out by the front (a wallet change) for the audit log."""

    actor: str
    action: str
    target: str
    detail: str = ""


# The portal home's desk (FLOWS §3 step 5; `desk`) ------------------------------------

DeskText = Annotated[str, msgspec.Meta(max_length=20_000)]
Idem = Annotated[str, msgspec.Meta(max_length=64)]
StaffActor = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Number = RecordNo


class DeskView(_Message, frozen=True, tag="desk_view"):
    """A member's inquiries, document requests, event applications and open events."""

    member_no: MemberNo


class InquiryNew(_Message, frozen=True, tag="inquiry_new"):
    member_no: MemberNo
    category: InquiryCategory
    subject: DeskText
    body: DeskText
    answer_by: AnswerBy
    idem: Idem = ""  # the form's key: a second submit of the same form is the first


class DocumentNew(_Message, frozen=True, tag="document_new"):
    member_no: MemberNo
    document_id: Text
    idem: Idem = ""


class EventApply(_Message, frozen=True, tag="event_apply"):
    member_no: MemberNo
    event_id: Number


class EventCancel(_Message, frozen=True, tag="event_cancel"):
    member_no: MemberNo
    event_id: Number


class CardAttempt(_Message, frozen=True, tag="card_attempt"):
    """Count one IC card registration try against the member's daily bound."""

    member_no: MemberNo


class StaffInquiries(_Message, frozen=True, tag="staff_inquiries"):
    status: InquiryStatus | None = None


class InquiryAnswerNew(_Message, frozen=True, tag="inquiry_answer"):
    actor: StaffActor
    inquiry_no: Number
    answer: DeskText


class StaffDocuments(_Message, frozen=True, tag="staff_documents"):
    status: DocumentStatus | None = None


class DocumentMarkSent(_Message, frozen=True, tag="document_sent"):
    actor: StaffActor
    request_no: Number


class EventCreate(_Message, frozen=True, tag="event_create"):
    actor: StaffActor
    coop: Label
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    date: BirthDate  # the same YYYY-MM-DD shape
    place: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    capacity: EventSeats
    apply_until_s: Annotated[float, msgspec.Meta(gt=0)]


class EventRosterGet(_Message, frozen=True, tag="event_roster"):
    event_id: Number


class EventAttendanceSet(_Message, frozen=True, tag="event_attendance"):
    actor: StaffActor
    event_id: Number
    member_no: MemberNo
    attendance: Attendance


IdentityRequest = (
    Enrol
    | MailChangeStart
    | PasswordStart
    | SignIn
    | WalletLoginStart
    | FlowStep
    | CheckSession
    | SignOut
    | GetProfile
    | TotpBegin
    | TotpConfirm
    | CreateStaff
    | StaffResume
    | StaffChangeMail
    | AuditList
    | OAuthConsent
    | OAuthDecide
    | OAuthToken
    | OAuthRevoke
    | OAuthIntrospect
    | ListGrants
    | RevokeGrant
    | FamilyGrant
    | FamilyRevoke
    | FamilyList
    | GuardianStart
    | GuardianWards
    | AuditRecord
    | DeskView
    | InquiryNew
    | DocumentNew
    | EventApply
    | EventCancel
    | CardAttempt
    | StaffInquiries
    | InquiryAnswerNew
    | StaffDocuments
    | DocumentMarkSent
    | EventCreate
    | EventRosterGet
    | EventAttendanceSet
)

# Replies --------------------------------------------------------------------------------


class Refused(_Message, frozen=True, tag="refused"):
    status: int
    reason: str
    message: str
    retry_after_s: int = 0
    attempts_left: int | None = None

    def __repr__(self) -> str:
        return f"Refused({self.status}, {self.reason!r}, {self.message!r})"


class FlowAnswer(_Message, frozen=True, tag="flow"):
    flow_id: str
    kind: FlowKind
    state: FlowState
    masked_mail: str = ""
    masked_phone: str = ""
    # Second factors this account can use (§3): "sms", "voice", and "totp" once enrolled.
    methods: list[str] = []
    # Seconds before "send a new code" is accepted again.
    resend_after_s: int = 0


class SessionIssued(_Message, frozen=True, tag="session"):
    kind: SessionKind
    session_id: str
    csrf_token: str
    subject: str
    # Seconds of inactivity before the session ends.
    idle_timeout_s: int
    # FLOWS §5: true when this sign-in registered the e-money account (sign-up).
    registered_now: bool = False


class Principal(_Message, frozen=True, tag="principal"):
    kind: SessionKind
    subject: str


class Enrolled(_Message, frozen=True, tag="enrolled"):
    member_no: str
    created: bool
    total_yen: int
    wallet: Booked | None = None


class Profile(_Message, frozen=True, tag="profile"):
    member_no: str
    coop: str
    name: str
    kana: str
    masked_mail: str
    masked_phone: str
    password_set: bool
    totp_enrolled: bool
    wallet_registered: bool


class TotpEnrolment(_Message, frozen=True, tag="totp_enrolment"):
    otpauth_uri: str
    secret: str


class StaffCreated(_Message, frozen=True, tag="staff_created"):
    staff_id: str
    otpauth_uri: str
    secret: str


class Done(_Message, frozen=True, tag="done"):
    message: str


class AuditEntryView(_Message, frozen=True):
    seq: int
    at_s: float
    actor: str
    action: str
    target: str
    detail: str


class AuditPage(_Message, frozen=True, tag="audit_page"):
    entries: list[AuditEntryView]
    next_before_seq: int


class ScopeInfo(_Message, frozen=True):
    scope: str
    description: str


class ConsentInfo(_Message, frozen=True, tag="consent"):
    client_id: str
    client_name: str
    scopes: list[ScopeInfo]
    redirect_uri: str
    state: str


class OAuthAnswer(_Message, frozen=True, tag="oauth_answer"):
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class TokenInfo(_Message, frozen=True, tag="token_info"):
    member_no: str
    scope: str
    grant_id: str
    client_id: str


class GrantView(_Message, frozen=True):
    grant_id: str
    client_id: str
    client_name: str
    scope: str
    issued_at_s: float
    expires_at_s: float
    active: bool


class Grants(_Message, frozen=True, tag="grants"):
    grants: list[GrantView]


class FamilyPerson(_Message, frozen=True):
    # A guardian is known by the mail address the member typed (`mail`); a member who
    # granted access by number and name, never by address.
    member_no: str
    name: str
    masked_mail: str
    mail: str = ""


class Family(_Message, frozen=True, tag="family"):
    guardians: list[FamilyPerson]  # who may read this account's history
    wards: list[FamilyPerson]  # whose history this account may read


class EventSeat(_Message, frozen=True):
    """An open event with the member's application to it, if any."""

    event: Event
    application: EventApplication | None = None


class DeskPage(_Message, frozen=True, tag="desk_page"):
    coop: str
    inquiries: list[Inquiry]
    documents: list[DocumentRequest]
    applications: list[EventSeat]  # every event the member applied to, newest first
    events: list[EventSeat]  # events open for application


class DeskNumber(_Message, frozen=True, tag="desk_number"):
    number: int


class InquiryList(_Message, frozen=True, tag="inquiry_list"):
    inquiries: list[Inquiry]


class DocumentList(_Message, frozen=True, tag="document_list"):
    documents: list[DocumentRequest]


class EventRoster(_Message, frozen=True, tag="event_roster"):
    event: Event
    applications: list[EventApplication]


IdentityReply = (
    Refused
    | FlowAnswer
    | SessionIssued
    | Principal
    | Enrolled
    | Profile
    | TotpEnrolment
    | StaffCreated
    | Done
    | AuditPage
    | ConsentInfo
    | OAuthAnswer
    | TokenInfo
    | Grants
    | Family
    | DeskPage
    | DeskNumber
    | InquiryList
    | DocumentList
    | EventRoster
)


class Answer(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    reply: IdentityReply
    notifications: list[Notification] = []

    def __repr__(self) -> str:
        return f"Answer({type(self.reply).__name__}, {len(self.notifications)} notifications)"


class ErrorCode(StrEnum):
    OUT_OF_ORDER = "out_of_order"
    FLOW_EXPIRED = "flow_expired"
    INVALID_CREDENTIALS = "invalid_credentials"
    LOCKED = "locked"
    BUSY = "busy"
    UNAUTHORIZED = "unauthorized"
    CSRF = "csrf"
    NO_MATCH = "no_match"
    EMONEY_IN_USE = "emoney_in_use"
    MAIL_IN_USE = "mail_in_use"
    PHONE_MISMATCH = "phone_mismatch"
    PASSCODE = "passcode"  # followed by the passcode reason: passcode_wrong, …
    WEAK_PASSWORD = "weak_password"  # noqa: S105
    INVALID_INPUT = "invalid_input"
    CONFLICT = "conflict"
    NOT_FOUND = "not_found"
    WALLET = "wallet"


request_encoder = msgspec.msgpack.Encoder()
request_decoder: msgspec.msgpack.Decoder[IdentityRequest] = msgspec.msgpack.Decoder(IdentityRequest)
answer_decoder = msgspec.msgpack.Decoder(Answer)
