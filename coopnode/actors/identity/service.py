"""The identity service: the one face of the identity actor's parts.

`IdentityService.handle` answers one request from the front. It finds the part that
handles the request's type in one table, `{request type: handler}`, built in one place
(`_routes`); a flow's step goes on by its flow's kind through a second table
(`_step_routes`). Every type of `messages.IdentityRequest` has exactly one handler, and
every `FlowKind` one step handler (`tests/identity/test_dispatch.py` holds both to it).

A handler is a part's method that takes the request: an async one answers an `Answer`;
a plain one is adapted where the table is built, by `replying` (it returns a reply) or
`answering` (it returns an `Answer` with notifications).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import msgspec

from coopnode.actors.identity.account import MemberAccount
from coopnode.actors.identity.answers import answer, invalid
from coopnode.actors.identity.context import IdentityContext, WalletPort
from coopnode.actors.identity.desk import MemberDesk
from coopnode.actors.identity.enrolment import Enrolments
from coopnode.actors.identity.family import FamilyAccess
from coopnode.actors.identity.flows import Flows
from coopnode.actors.identity.grants import OAuthGrants
from coopnode.actors.identity.guardian import Guardians
from coopnode.actors.identity.keys import IdentityKeys
from coopnode.actors.identity.mail_change import MailChange
from coopnode.actors.identity.messages import (
    Answer,
    AuditList,
    AuditRecord,
    AuthorizeStaff,
    BootstrapAdministrator,
    CardAttempt,
    CheckSession,
    CreateStaff,
    DeskView,
    DocumentMarkSent,
    DocumentNew,
    Enrol,
    EventApply,
    EventAttendanceSet,
    EventCancel,
    EventCreate,
    EventRosterGet,
    FamilyGrant,
    FamilyList,
    FamilyRevoke,
    FlowStep,
    GetProfile,
    GuardianStart,
    GuardianWards,
    IdentityReply,
    IdentityRequest,
    InquiryAnswerNew,
    InquiryNew,
    ListGrants,
    MailChangeStart,
    OAuthConsent,
    OAuthDecide,
    OAuthIntrospect,
    OAuthRevoke,
    OAuthToken,
    PasswordStart,
    RevokeGrant,
    SignIn,
    SignOut,
    StaffChangeMail,
    StaffDisable,
    StaffDocuments,
    StaffInquiries,
    StaffList,
    StaffResume,
    StaffSetRole,
    TokenCreate,
    TokenList,
    TokenRevoke,
    TotpBegin,
    TotpConfirm,
    WalletLoginStart,
)
from coopnode.actors.identity.password import PasswordSetting
from coopnode.actors.identity.passwords import PasswordHasher
from coopnode.actors.identity.sessions import Sessions
from coopnode.actors.identity.signin import SignInFlows
from coopnode.actors.identity.staff import Staff
from coopnode.actors.identity.staff_access import StaffAccess
from coopnode.actors.identity.store import IdentityStore
from coopnode.actors.identity.wallet_signin import WalletSignIn
from coopnode.domain.errors import InvalidInput, InvariantViolation
from coopnode.domain.identity import FlowKind
from coopnode.settings import Settings

_Request = TypeVar("_Request", bound=IdentityRequest)
_Key = TypeVar("_Key")

Handler = Callable[[Any], Awaitable[Answer]]
"""What the table holds: `route` checks that each handler takes the type it is filed under."""
Route = tuple[type[msgspec.Struct], Handler]
StepHandler = Callable[[FlowStep], Awaitable[Answer]]
StepRoute = tuple[FlowKind, StepHandler]


def route(kind: type[_Request], handler: Callable[[_Request], Awaitable[Answer]]) -> Route:
    return kind, handler


def replying(
    reply_of: Callable[[_Request], IdentityReply],
) -> Callable[[_Request], Awaitable[Answer]]:
    """A handler from a plain method that returns a reply and sends nothing."""

    async def handler(request: _Request) -> Answer:
        return answer(reply_of(request))

    return handler


def answering(answer_of: Callable[[_Request], Answer]) -> Callable[[_Request], Awaitable[Answer]]:
    """A handler from a plain method that returns an `Answer` (with notifications)."""

    async def handler(request: _Request) -> Answer:
        return answer_of(request)

    return handler


def handler_table(routes: Iterable[tuple[_Key, Handler]]) -> dict[_Key, Handler]:
    """The routes as a table; a key filed twice is a bug, not a choice between two."""
    table: dict[_Key, Handler] = {}
    for key, handler in routes:
        if key in table:
            raise InvariantViolation(f"two identity handlers for {key!r}")
        table[key] = handler
    return table


class IdentityService:
    def __init__(
        self,
        settings: Settings,
        store: IdentityStore,
        *,
        hasher: PasswordHasher,
        wallet: WalletPort,
        passcode_key: bytes,
        identity_key: bytes,
        clock: Callable[[], float],
        client_secrets: dict[str, str] | None = None,
    ) -> None:
        keys = IdentityKeys(passcode_key=passcode_key, identity_key=identity_key)
        context = IdentityContext(
            settings, store, clock=clock, keys=keys, hasher=hasher, wallet=wallet
        )
        flows = Flows(context)
        self.context = context
        self.sessions = Sessions(context)
        self.signin = SignInFlows(context, flows, self.sessions)
        self.wallet_signin = WalletSignIn(context, flows, self.sessions)
        self.mail_change = MailChange(context, flows)
        self.password = PasswordSetting(context, flows)
        self.guardians = Guardians(context, flows)
        self.account = MemberAccount(context)
        self.enrolments = Enrolments(context)
        self.staff = Staff(context)
        self.staff_access = StaffAccess(context, self.sessions, self.staff)
        self.family = FamilyAccess(context)
        self.grants = OAuthGrants(context, client_secrets or {})
        self.desk = MemberDesk(context)
        self.routes: tuple[Route, ...] = tuple(self._routes())
        self.step_routes: tuple[StepRoute, ...] = tuple(self._step_routes())
        self._handlers: Mapping[type[msgspec.Struct], Handler] = handler_table(self.routes)
        self._step_handlers: Mapping[FlowKind, Handler] = handler_table(self.step_routes)

    async def handle(self, request: IdentityRequest) -> Answer:
        """Answer one request from the front."""
        handler = self._handlers.get(type(request))
        if handler is None:
            raise TypeError(f"unknown identity request: {type(request).__name__}")
        try:
            return await handler(request)
        except InvalidInput as error:
            return invalid(error)

    async def _step(self, step: FlowStep) -> Answer:
        return await self._step_handlers[step.kind](step)

    def _routes(self) -> list[Route]:
        """Every request type and the one part's method that answers it."""
        account, desk, family, grants, staff = (
            self.account,
            self.desk,
            self.family,
            self.grants,
            self.staff,
        )
        return [
            # Enrolment, and the flows a member starts without a session.
            route(Enrol, self.enrolments.enrol),
            route(MailChangeStart, self.mail_change.start),
            route(PasswordStart, self.password.start),
            route(GuardianStart, self.guardians.start),
            route(WalletLoginStart, self.wallet_signin.start),
            route(SignIn, self.signin.sign_in),
            route(FlowStep, self._step),
            # Sessions and the member's own account.
            route(CheckSession, replying(self.sessions.check)),
            route(SignOut, replying(self.sessions.sign_out)),
            route(GetProfile, replying(account.profile)),
            route(TotpBegin, replying(account.totp_begin)),
            route(TotpConfirm, replying(account.totp_confirm)),
            # Staff.
            route(CreateStaff, staff.create),
            route(StaffResume, staff.resume),
            route(StaffChangeMail, answering(staff.change_mail)),
            route(AuditList, replying(staff.audit_list)),
            route(AuditRecord, replying(staff.audit_record)),
            # Staff access: the check, roles, the bootstrap, machines' tokens (issue 13 §1).
            route(AuthorizeStaff, answering(self.staff_access.authorize)),
            route(BootstrapAdministrator, self.staff_access.bootstrap),
            route(StaffList, replying(self.staff_access.list_staff)),
            route(StaffSetRole, answering(self.staff_access.set_role)),
            route(StaffDisable, answering(self.staff_access.disable)),
            route(TokenCreate, answering(self.staff_access.create_token)),
            route(TokenList, replying(self.staff_access.list_tokens)),
            route(TokenRevoke, answering(self.staff_access.revoke_token)),
            # OAuth, and the member's grants.
            route(OAuthConsent, replying(grants.consent)),
            route(OAuthDecide, replying(grants.decide)),
            route(OAuthToken, replying(grants.token)),
            route(OAuthRevoke, replying(grants.revoke)),
            route(OAuthIntrospect, replying(grants.introspect)),
            route(ListGrants, replying(grants.list_grants)),
            route(RevokeGrant, replying(grants.revoke_grant)),
            # Family access, and the guardian's view of it.
            route(FamilyGrant, answering(family.grant)),
            route(FamilyRevoke, replying(family.revoke)),
            route(FamilyList, replying(family.listing)),
            route(GuardianWards, replying(self.guardians.wards)),
            # The member desk: the member's side, then staff's.
            route(DeskView, replying(desk.view)),
            route(InquiryNew, replying(desk.inquiry_new)),
            route(DocumentNew, replying(desk.document_new)),
            route(EventApply, replying(desk.event_apply)),
            route(EventCancel, replying(desk.event_cancel)),
            route(CardAttempt, replying(desk.card_attempt)),
            route(StaffInquiries, replying(desk.staff_inquiries)),
            route(InquiryAnswerNew, answering(desk.inquiry_answer)),
            route(StaffDocuments, replying(desk.staff_documents)),
            route(DocumentMarkSent, replying(desk.document_sent)),
            route(EventCreate, replying(desk.event_create)),
            route(EventRosterGet, replying(desk.event_roster)),
            route(EventAttendanceSet, replying(desk.event_attendance)),
        ]

    def _step_routes(self) -> list[StepRoute]:
        """Every kind of flow and the one part's method that takes its steps."""
        second_factor = answering(self.signin.second_factor_step)
        return [
            (FlowKind.MAIL_CHANGE, self.mail_change.step),
            (FlowKind.PASSWORD, self.password.step),
            (FlowKind.GUARDIAN_SETUP, self.password.step),
            (FlowKind.WALLET_LOGIN, self.wallet_signin.step),
            (FlowKind.PORTAL_SIGN_IN, second_factor),
            (FlowKind.MYPAGE_LOGIN, second_factor),
            (FlowKind.STAFF_SIGN_IN, second_factor),
            (FlowKind.GUARDIAN_SIGN_IN, second_factor),
        ]
