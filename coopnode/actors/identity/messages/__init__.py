"""What crosses the boundary between the HTTP front and the identity actor.

Requests and replies are tagged unions of frozen Structs, sent as MessagePack. A reply
travels in an `Answer` with the notifications the front must hand to its notifier: mails,
SMS and calls carrying passcodes are built in the actor, sent by the front, and never
written anywhere on the way. Requests that carry a password, a code or a session id print
without them.

This package is the one face: the rest of the code imports from here. The Structs live
in one module per part of the actor, and the two unions the actor's decoder and the
front's read are drawn here:

    base        the base Struct, the text fields' bounds, and `Done`
    refusals    `Refused` and `IdentityReason`: the actor says why, the edge picks the
                HTTP status
    enrolment   Enrol, and the enrolment it carries (FLOWS §0)
    flows       the flows a member starts (§1–§5), their steps, and sessions
    account     the member's profile and authenticator app
    staff       staff accounts, their changes to members, the audit log
    oauth       OAuth for authlib in the actor, and the member's grants
    family      family access, and the guardian's side of it
    desk        the member desk: inquiries, documents, events
"""

from __future__ import annotations

import msgspec

from coopnode.actors.identity.messages.account import (
    GetProfile,
    Profile,
    TotpBegin,
    TotpConfirm,
    TotpEnrolment,
)
from coopnode.actors.identity.messages.base import (
    BirthDate,
    Done,
    FlowId,
    IdentityMessage,
    Name,
    Secret,
    Text,
)
from coopnode.actors.identity.messages.desk import (
    CardAttempt,
    DeskNumber,
    DeskPage,
    DeskView,
    DocumentList,
    DocumentMarkSent,
    DocumentNew,
    EventApply,
    EventAttendanceSet,
    EventCancel,
    EventCreate,
    EventRoster,
    EventRosterGet,
    EventSeat,
    InquiryAnswerNew,
    InquiryList,
    InquiryNew,
    StaffDocuments,
    StaffInquiries,
)
from coopnode.actors.identity.messages.enrolment import (
    Enrol,
    Enrolled,
    Enrolment,
    InsuranceItem,
)
from coopnode.actors.identity.messages.family import (
    Family,
    FamilyGrant,
    FamilyList,
    FamilyPerson,
    FamilyRevoke,
    GuardianStart,
    GuardianWards,
)
from coopnode.actors.identity.messages.flows import (
    CheckSession,
    FlowAnswer,
    FlowStep,
    MailChangeStart,
    PasswordStart,
    Principal,
    SessionIssued,
    SignIn,
    SignOut,
    WalletLoginStart,
)
from coopnode.actors.identity.messages.oauth import (
    ConsentInfo,
    Grants,
    GrantView,
    ListGrants,
    OAuthAnswer,
    OAuthConsent,
    OAuthDecide,
    OAuthHttp,
    OAuthIntrospect,
    OAuthRevoke,
    OAuthToken,
    RevokeGrant,
    ScopeInfo,
    TokenInfo,
)
from coopnode.actors.identity.messages.refusals import IdentityReason, Refused
from coopnode.actors.identity.messages.staff import (
    AuditEntryView,
    AuditList,
    AuditPage,
    AuditRecord,
    AuthorizeStaff,
    BootstrapAdministrator,
    Bootstrapped,
    CreateStaff,
    StaffAuthorized,
    StaffChangeMail,
    StaffCreated,
    StaffDisable,
    StaffList,
    StaffResume,
    StaffRoster,
    StaffSetRole,
    StaffView,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenRevoke,
    TokenRoster,
    TokenView,
)
from coopnode.actors.notify.messages import Notification

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
    # Staff access (issue 13 §1).
    | BootstrapAdministrator
    | AuthorizeStaff
    | StaffList
    | StaffSetRole
    | StaffDisable
    | TokenCreate
    | TokenList
    | TokenRevoke
)

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
    # Staff access (issue 13 §1).
    | Bootstrapped
    | StaffAuthorized
    | StaffRoster
    | TokenCreated
    | TokenRoster
)


class Answer(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    reply: IdentityReply
    notifications: list[Notification] = []

    def __repr__(self) -> str:
        return f"Answer({type(self.reply).__name__}, {len(self.notifications)} notifications)"


request_encoder = msgspec.msgpack.Encoder()
request_decoder: msgspec.msgpack.Decoder[IdentityRequest] = msgspec.msgpack.Decoder(IdentityRequest)
answer_decoder = msgspec.msgpack.Decoder(Answer)

__all__ = [
    "Answer",
    "AuditEntryView",
    "AuditList",
    "AuditPage",
    "AuditRecord",
    "AuthorizeStaff",
    "BirthDate",
    "BootstrapAdministrator",
    "Bootstrapped",
    "CardAttempt",
    "CheckSession",
    "ConsentInfo",
    "CreateStaff",
    "DeskNumber",
    "DeskPage",
    "DeskView",
    "DocumentList",
    "DocumentMarkSent",
    "DocumentNew",
    "Done",
    "Enrol",
    "Enrolled",
    "Enrolment",
    "EventApply",
    "EventAttendanceSet",
    "EventCancel",
    "EventCreate",
    "EventRoster",
    "EventRosterGet",
    "EventSeat",
    "Family",
    "FamilyGrant",
    "FamilyList",
    "FamilyPerson",
    "FamilyRevoke",
    "FlowAnswer",
    "FlowId",
    "FlowStep",
    "GetProfile",
    "GrantView",
    "Grants",
    "GuardianStart",
    "GuardianWards",
    "IdentityMessage",
    "IdentityReason",
    "IdentityReply",
    "IdentityRequest",
    "InquiryAnswerNew",
    "InquiryList",
    "InquiryNew",
    "InsuranceItem",
    "ListGrants",
    "MailChangeStart",
    "Name",
    "OAuthAnswer",
    "OAuthConsent",
    "OAuthDecide",
    "OAuthHttp",
    "OAuthIntrospect",
    "OAuthRevoke",
    "OAuthToken",
    "PasswordStart",
    "Principal",
    "Profile",
    "Refused",
    "RevokeGrant",
    "ScopeInfo",
    "Secret",
    "SessionIssued",
    "SignIn",
    "SignOut",
    "StaffAuthorized",
    "StaffChangeMail",
    "StaffCreated",
    "StaffDisable",
    "StaffDocuments",
    "StaffInquiries",
    "StaffList",
    "StaffResume",
    "StaffRoster",
    "StaffSetRole",
    "StaffView",
    "Text",
    "TokenCreate",
    "TokenCreated",
    "TokenInfo",
    "TokenList",
    "TokenRevoke",
    "TokenRoster",
    "TokenView",
    "TotpBegin",
    "TotpConfirm",
    "TotpEnrolment",
    "WalletLoginStart",
    "answer_decoder",
    "request_decoder",
    "request_encoder",
]
