"""The API's edge: a route, who may call it, and how its input is read.

Every operation of the JSON API is one `Route` in a table beside its handlers. The same
table registers the handlers (`Route.serve`) and writes the OpenAPI document
(`openapi.py`), operations and `security` alike, so the two cannot drift apart.

Who may call a route is written once, in its `access`: the credentials that admit a
caller, any one of them.

    PUBLIC               anybody; nothing is checked (sign-in steps, OAuth's token
                         endpoint, the store network's signed webhook)
    staff_may(p)         a staff action that needs the permission `p` (`domain.staff`): a
                         staff session (the `cn_staff` cookie) whose account's role grants
                         `p`, or a machine's API token (`Authorization: Bearer cn_…`)
                         whose scopes include it; 403 `forbidden` names what is lacking
    STAFF_SIGNED_IN      any active staff member's session, whatever the role (the
                         console's home and sign-out)
    STAFF_TOKEN          the node's staff token (`Authorization: Bearer <token>`): since
                         issue 13 only the bootstrap of the first administrator takes it
    STAFF_SESSION        a staff session, unchecked by role (no route declares it today)
    sessions(*kinds)     a member session of one of these kinds (`cn_portal`, `cn_mypage`,
                         `cn_wallet`, `cn_guardian`); of several cookies, the first
                         in this order is the one checked
    OAuthScope           an OAuth bearer token granted this scope (`wallet:read`, …)

A session admits a change (any method but GET, HEAD and OPTIONS) only with its CSRF
token in `X-CSRF-Token`. When a route admits more than one credential, the first the
request carries (an `Authorization` header, a session cookie) is the one checked; a
request that carries none is refused as the last one refuses. `Route.serve` checks all
this before the handler runs and hands the handler who is calling in `request[CALLER]`
(`staff_actor` and `calling_member` read it); a caller it does not admit is refused with
401 `unauthorized`, or with the identity actor's answer (401 `session_expired`, 403
`csrf`, 401 `invalid_token`, 403 `insufficient_scope`, 403 `forbidden`, …), and the
handler never runs.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from coopnode.actors.identity.messages import (
    AuditRecord,
    AuthorizeStaff,
    CheckSession,
    OAuthIntrospect,
    Principal,
    StaffAuthorized,
    TokenInfo,
)
from coopnode.domain.errors import InvariantViolation
from coopnode.domain.identity import SessionKind
from coopnode.domain.messages import MemberNo
from coopnode.domain.money import Reason
from coopnode.domain.staff import Permission, Role
from coopnode.http.errors import SAFE_METHODS, AccessRefused, ApiError
from coopnode.http.identity_front import CSRF_HEADER, ask, session_id_of

staff_token_key = web.AppKey("staff_token", str)
# The audit log's actor for the staff token's one use, the first administrator.
TOKEN_ACTOR = "staff-token"  # noqa: S105  # A name in the audit log, not the token.

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# Access: the credentials a route admits ----------------------------------------------------


class StaffToken(msgspec.Struct, frozen=True, tag="staff_token"):
    """The node's staff token: only to create the first administrator."""


class StaffRole(msgspec.Struct, frozen=True, tag="staff_role"):
    """A staff session whose account's role grants `permission` (None: any active staff
    member's session)."""

    permission: Permission | None


class ApiToken(msgspec.Struct, frozen=True, tag="api_token"):
    """A machine's API token whose scopes include `permission`."""

    permission: Permission


class SessionCookie(msgspec.Struct, frozen=True, tag="session"):
    """A session of this kind, opened by a sign-in (`cn_<kind>` cookie)."""

    kind: SessionKind


class OAuthScope(msgspec.Struct, frozen=True, tag="oauth"):
    """An OAuth access token (RFC 6750 bearer) granted `name`."""

    name: str
    # What the scope lets an app do, for the OpenAPI document.
    description: str


Credential = StaffToken | SessionCookie | OAuthScope | StaffRole | ApiToken
Access = tuple[Credential, ...]

PUBLIC: Access = ()
STAFF_TOKEN: Access = (StaffToken(),)
STAFF_SESSION: Access = (SessionCookie(SessionKind.STAFF),)
STAFF_SIGNED_IN: Access = (StaffRole(None),)


def staff_may(permission: Permission) -> Access:
    """The access of a staff action that needs `permission` (`domain.staff`): a staff
    session whose role grants it, or a machine's API token whose scopes include it.

    Every staff route declares its permission through this one function; the identity
    actor checks it (`AuthorizeStaff`) against `ROLE_PERMISSIONS` or the token's scopes."""
    # A request's `Authorization` header is what its sender meant to send; the staff
    # cookie may be a browser's ambient one, so the token is checked first when both come.
    return (ApiToken(permission), StaffRole(permission))


def permission_of(access: Access) -> Permission | None:
    """The permission a route's access needs, if it was declared with `staff_may`."""
    for credential in access:
        if isinstance(credential, ApiToken):
            return credential.permission
    return None


def sessions(*kinds: SessionKind) -> Access:
    """A session of any of `kinds`; the first whose cookie the request carries is checked."""
    return tuple(SessionCookie(kind) for kind in kinds)


# Callers: who `Route.serve` admitted ---------------------------------------------------------


class Anybody(msgspec.Struct, frozen=True, tag="anybody"):
    """A public route's caller: nothing was checked."""


class TokenHolder(msgspec.Struct, frozen=True, tag="staff_token"):
    """Whoever holds the staff token."""


class SignedIn(msgspec.Struct, frozen=True, tag="session", kw_only=True):
    """A live session's holder: a member number, or a staff id for a staff session."""

    kind: SessionKind
    subject: str


class BearerMember(msgspec.Struct, frozen=True, tag="bearer", kw_only=True):
    """The member an app calls for with an access token granted `scope`."""

    member_no: str
    scope: str
    grant_id: str
    client_id: str


class StaffMember(msgspec.Struct, frozen=True, tag="staff", kw_only=True):
    """A signed-in staff member whose role the check admitted."""

    staff_id: str
    name: str
    role: Role
    permissions: frozenset[Permission]


class Machine(msgspec.Struct, frozen=True, tag="machine", kw_only=True):
    """A machine calling with an API token whose scopes the check admitted."""

    token_id: str
    name: str
    permissions: frozenset[Permission]


Caller = Anybody | TokenHolder | SignedIn | BearerMember | StaffMember | Machine
CALLER: web.RequestKey[Caller] = web.RequestKey("caller")
# What a staff change acted on, when its path does not say (a wallet opened, a card
# bound, a till registered): set by the handler for the audit log (`Route.audit`).
AUDIT_TARGET: web.RequestKey[str] = web.RequestKey("audit_target")


def staff_actor(request: web.Request) -> str:
    """The audit log's name for the staff caller: `staff:<staff id>` for a person,
    `token:<name>` for a machine's API token, and the staff token's own name for the
    bootstrap; never a name two callers share."""
    match request[CALLER]:
        case TokenHolder():
            return TOKEN_ACTOR
        case StaffMember(staff_id=staff_id) | SignedIn(kind=SessionKind.STAFF, subject=staff_id):
            return f"staff:{staff_id}"
        case Machine(name=name):
            return f"token:{name}"
        case other:
            raise InvariantViolation(f"a staff handler was called by {other!r}")


def calling_member(request: web.Request) -> str:
    """The member number of the member session or the access token that called."""
    match request[CALLER]:
        case BearerMember(member_no=member_no):
            return member_no
        case SignedIn(kind=kind, subject=member_no) if kind is not SessionKind.STAFF:
            return member_no
        case other:
            raise InvariantViolation(f"a member's handler was called by {other!r}")


def _carries(request: web.Request, credential: Credential) -> bool:
    match credential:
        case SessionCookie(kind=kind):
            return bool(session_id_of(request, kind))
        case StaffRole():
            return bool(session_id_of(request, SessionKind.STAFF))
        case StaffToken() | OAuthScope() | ApiToken():
            return "Authorization" in request.headers


def _staff_token(request: web.Request) -> TokenHolder:
    expected = request.app[staff_token_key]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise AccessRefused("unauthorized", "a valid staff token is required")
    return TokenHolder()


async def _session(request: web.Request, kind: SessionKind, *, changes: bool) -> SignedIn:
    session_id = session_id_of(request, kind)
    if not session_id:
        raise AccessRefused("unauthorized", "sign in first")
    csrf = request.headers.get(CSRF_HEADER, "") if changes else None
    check = CheckSession(kinds=(kind,), session_id=session_id, csrf_token=csrf)
    reply = await ask(request, check)
    if not isinstance(reply, Principal):
        raise TypeError("the session check answered with something else")
    return SignedIn(kind=reply.kind, subject=reply.subject)


async def _bearer(request: web.Request, scope: str) -> BearerMember:
    authorization = request.headers.get("Authorization", "")
    reply = await ask(request, OAuthIntrospect(authorization=authorization, scope=scope))
    if not isinstance(reply, TokenInfo):
        raise TypeError("token introspection answered with something else")
    return BearerMember(
        member_no=reply.member_no,
        scope=reply.scope,
        grant_id=reply.grant_id,
        client_id=reply.client_id,
    )


async def _staff(
    request: web.Request, credential: StaffRole | ApiToken, csrf: str | None
) -> StaffMember | Machine:
    """Ask the identity actor whether this session's role, or this token's scopes, grant
    the permission; it answers who is calling, or refuses (401, or 403 `forbidden`)."""
    if isinstance(credential, StaffRole):
        session_id = session_id_of(request, SessionKind.STAFF)
        if not session_id:
            raise AccessRefused("unauthorized", "sign in first, or send an API token")
        check = AuthorizeStaff(
            session_id=session_id, csrf_token=csrf, permission=credential.permission
        )
    else:
        authorization = request.headers.get("Authorization", "")
        if not authorization:
            raise AccessRefused("unauthorized", "a staff session or an API token is required")
        check = AuthorizeStaff(authorization=authorization, permission=credential.permission)
    reply = await ask(request, check)
    if not isinstance(reply, StaffAuthorized):
        raise TypeError("the staff check answered with something else")
    permissions = frozenset(reply.permissions)
    if reply.role is not None:
        return StaffMember(
            staff_id=reply.staff_id, name=reply.name, role=reply.role, permissions=permissions
        )
    return Machine(token_id=reply.token_id, name=reply.name, permissions=permissions)


async def admit(
    request: web.Request, access: Access, *, changes: bool, form_csrf: str | None = None
) -> Caller:
    """Who is calling, if `access` admits them; otherwise an `ApiError` (see the module).

    A session's CSRF token comes from `X-CSRF-Token`, or for a console page's form from
    its field (`form_csrf`, which the console reads from the form it posts)."""
    if not access:
        return Anybody()
    credential = next((each for each in access if _carries(request, each)), access[-1])
    csrf = (form_csrf or request.headers.get(CSRF_HEADER, "")) if changes else None
    match credential:
        case StaffToken():
            return _staff_token(request)
        case SessionCookie(kind=kind):
            return await _session(request, kind, changes=changes)
        case OAuthScope(name=scope):
            return await _bearer(request, scope)
        case StaffRole() | ApiToken():
            return await _staff(request, credential, csrf)


# Routes ----------------------------------------------------------------------------------------


class Route(msgspec.Struct, frozen=True, kw_only=True):
    method: str
    path: str
    summary: str
    handler: Handler
    # Who may call it: checked before `handler` runs, and the document's `security`.
    access: Access
    request: Any = None
    response: Any = None
    status: int = 200
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
    # The audit log's action for a staff change this route makes, recorded under the
    # caller (`staff_actor`) once it succeeded; empty when the route changes nothing, is
    # no staff action, or its handler has the identity actor record it in the same
    # transaction as the change (staff, desk, enrolment).
    audit: str = ""

    @property
    def changes(self) -> bool:
        """Whether the route may change something: a session then needs its CSRF token."""
        return self.method not in SAFE_METHODS

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """The handler the app registers: access first, then the route's own handler."""
        request[CALLER] = await admit(request, self.access, changes=self.changes)
        response = await self.handler(request)
        if self.audit and response.status < 300:
            await self._record(request)
        return response

    async def _record(self, request: web.Request) -> None:
        """The change in the audit log, under the person or the token that made it; its
        target is what the path names (a member, a card, a till), else the handler's."""
        # A card's IDm is shown by its last four digits, as the portal records it.
        named = [
            f"…{value[-4:]}" if key == "idm" else value for key, value in request.match_info.items()
        ]
        target = request.get(AUDIT_TARGET) or " ".join(named)
        record = AuditRecord(
            actor=staff_actor(request),
            action=self.audit,
            target=target,
            detail=f"{self.method} {self.path}",
        )
        await ask(request, record)


# Input ------------------------------------------------------------------------------------------


class Body(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The base of the API's JSON bodies and answers: a field the API does not know is
    refused, not ignored, so a misspelt field is a 400 and never a silent default."""


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
        raise ApiError(Reason.INVALID_INPUT, f"invalid request: {error}") from None
    except msgspec.DecodeError as error:
        raise ApiError(Reason.INVALID_INPUT, f"the body is not valid JSON: {error}") from None
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
        raise ApiError(Reason.INVALID_INPUT, f"invalid request: {error}") from None


def member_no_of(request: web.Request) -> str:
    """The `{member_no}` of the path: twelve digits, or a 400."""
    member_no = request.match_info["member_no"]
    try:
        return str(msgspec.convert(member_no, MemberNo))
    except msgspec.ValidationError:
        raise ApiError(Reason.INVALID_INPUT, "a member number is 12 digits") from None
