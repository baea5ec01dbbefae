"""The edge: every route of the app declares who may call it, the OpenAPI document says
the same, and a caller the route does not admit is refused before its handler runs.

The identity actor is replaced by `FakeIdentity`, which answers the three questions the
edge asks it (`CheckSession`, `OAuthIntrospect`, `AuthorizeStaff`) from sessions and tokens
the test holds, as the actor's messages describe; the actor's own rules are tested in
`tests/identity`, and every role against every staff route in `tests/console`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from coopnode.actors.backup.client import BackupClient
from coopnode.actors.identity.answers import refused
from coopnode.actors.identity.messages import (
    Answer,
    AuditRecord,
    AuthorizeStaff,
    CheckSession,
    Done,
    IdentityReason,
    IdentityRequest,
    OAuthIntrospect,
    Principal,
    Refused,
    StaffAuthorized,
    TokenInfo,
)
from coopnode.actors.notify.actor import LocalOutbox
from coopnode.actors.notify.messages import Notification
from coopnode.actors.notify.outbox import Outbox
from coopnode.actors.wallet.client import WalletClient
from coopnode.domain.identity import SessionKind
from coopnode.domain.staff import Permission, Role
from coopnode.http.app import api_routes_key, make_app, openapi_key
from coopnode.http.edge import (
    CALLER,
    PUBLIC,
    STAFF_SESSION,
    STAFF_TOKEN,
    Access,
    Anybody,
    ApiToken,
    BearerMember,
    Caller,
    OAuthScope,
    Route,
    SessionCookie,
    SignedIn,
    StaffMember,
    StaffRole,
    StaffToken,
    TokenHolder,
    sessions,
    staff_may,
    staff_token_key,
)
from coopnode.http.errors import error_middleware
from coopnode.http.identity_front import COOKIE_NAMES, IdentityFront, identity_key, notifier_key
from coopnode.http.tills.hub import TillHub
from coopnode.metrics import Metrics
from coopnode.payments.charging import Charging
from coopnode.settings import Settings

TOKEN = "s" * 32
MEMBER_NO = "202600000001"
STAFF_ID = "staff-1"
READ = OAuthScope(name="wallet:read", description="read")
PAY = OAuthScope(name="wallet:pay", description="pay")
# The routes anybody may call. A route leaves this list only by declaring a credential,
# and joins it only by a change to this test as well as to its table.
PUBLIC_OPERATIONS = {
    ("POST", "/api/v1/flows/mail-change"),
    ("POST", "/api/v1/flows/password"),
    ("POST", "/api/v1/portal/sign-in"),
    ("POST", "/api/v1/mypage/login"),
    ("POST", "/api/v1/wallet-auth/start"),
    ("POST", "/api/v1/staff/sign-in"),
    ("POST", "/api/v1/sign-out"),
    *(
        ("POST", path)
        for path in (
            "/api/v1/flows/mail-change/send-current",
            "/api/v1/flows/mail-change/verify-current",
            "/api/v1/flows/mail-change/new-address",
            "/api/v1/flows/mail-change/resend",
            "/api/v1/flows/mail-change/verify-new",
            "/api/v1/flows/mail-change/cancel",
            "/api/v1/flows/password/verify",
            "/api/v1/flows/password/resend",
            "/api/v1/flows/password/set",
            "/api/v1/portal/sign-in/send-code",
            "/api/v1/portal/sign-in/verify",
            "/api/v1/portal/sign-in/verify-totp",
            "/api/v1/mypage/login/send-code",
            "/api/v1/mypage/login/verify",
            "/api/v1/wallet-auth/resend",
            "/api/v1/wallet-auth/verify",
            "/api/v1/staff/sign-in/verify",
        )
    ),
    ("POST", "/oauth/token"),
    ("POST", "/oauth/revoke"),
    ("POST", "/webhooks/konbini"),
    ("GET", "/dev/outbox"),
    ("GET", "/dev/outbox.json"),
}
# What the app serves beside the API: the portal's pages (which send a browser without a
# session to its sign-in page), the console's (whose access `tests/console` checks route
# by route, for every role), the node's own endpoints, the till channel (signed
# frames) and the development tools. None of it is in the OpenAPI document.
NOT_API = re.compile(
    r"^(/|/portal.*|/mypage.*|/wallet(/.*)?|/lang/\{lang\}|/static/?.*|/healthz|/metrics"
    r"|/api/openapi\.json|/till/ws|/dev/konbini.*|/console.*)$"
)


def session_id(kind: SessionKind) -> str:
    return f"session-{kind.value}"


def csrf_of(session: str) -> str:
    return f"csrf-{session}"


class FakeIdentity:
    """The identity actor's answers to the edge's questions, from the test's own tables."""

    def __init__(self) -> None:
        self.sessions = {
            session_id(kind): Principal(
                kind=kind, subject=STAFF_ID if kind is SessionKind.STAFF else MEMBER_NO
            )
            for kind in SessionKind
        }
        self.tokens = {
            "token-read": READ.name,
            "token-pay": PAY.name,
            "token-both": f"{READ.name} {PAY.name}",
        }
        self.asked: list[IdentityRequest] = []

    async def call(self, request: IdentityRequest) -> Answer:
        self.asked.append(request)
        match request:
            case CheckSession():
                return Answer(reply=self._session(request))
            case OAuthIntrospect():
                return Answer(reply=self._token(request))
            case AuthorizeStaff():
                return Answer(reply=self._staff(request))
            case AuditRecord():
                return Answer(reply=Done(message="recorded"))
        raise AssertionError(f"the edge asked the identity actor {request!r}")

    def _session(self, check: CheckSession) -> Principal | Refused:
        principal = self.sessions.get(check.session_id)
        if principal is None or principal.kind not in check.kinds:
            return refused(IdentityReason.UNAUTHORIZED, "sign in first")
        if check.csrf_token is not None and check.csrf_token != csrf_of(check.session_id):
            return refused(IdentityReason.CSRF, "the CSRF token is missing or wrong")
        return principal

    def _token(self, introspect: OAuthIntrospect) -> TokenInfo | Refused:
        if not introspect.authorization:
            return refused(IdentityReason.MISSING_AUTHORIZATION, "no token")
        scheme, _, token = introspect.authorization.partition(" ")
        scope = self.tokens.get(token) if scheme == "Bearer" else None
        if scope is None:
            return refused(IdentityReason.INVALID_TOKEN, "the token is not known")
        if introspect.scope not in scope.split():
            return refused(IdentityReason.INSUFFICIENT_SCOPE, "not this scope")
        return TokenInfo(member_no=MEMBER_NO, scope=scope, grant_id="grant-1", client_id="app")

    def _staff(self, check: AuthorizeStaff) -> StaffAuthorized | Refused:
        """The staff session is an administrator's (every permission); the machine token
        `token-machine` holds every scope: which role may what is `tests/console`'s."""
        if check.session_id:
            session = self._session(
                CheckSession(
                    kinds=(SessionKind.STAFF,),
                    session_id=check.session_id,
                    csrf_token=check.csrf_token,
                )
            )
            if isinstance(session, Refused):
                return session
            every = sorted(Permission)
            return StaffAuthorized(
                actor=f"staff:{STAFF_ID}",
                staff_id=STAFF_ID,
                name="staff",
                role=Role.ADMINISTRATOR,
                permissions=every,
            )
        if check.authorization != "Bearer token-machine":
            return refused(IdentityReason.UNAUTHORIZED, "a valid API token is required")
        return StaffAuthorized(
            actor="token:machine", name="machine", token_id="t1", permissions=sorted(Permission)
        )


class AcceptingNotifier:
    def submit(self, message: Notification) -> bool:
        return True


class NoRegistry:
    """The till hub's registry: never called, since the app is not started."""


# The whole app and its document ------------------------------------------------------------


@pytest.fixture(scope="module")
def whole_app() -> web.Application:
    """The app as the node builds it in development: every route table, tills and
    charging included (none of their clients is called: only the routes are read)."""
    settings = Settings()
    front = IdentityFront(
        client=FakeIdentity(), notifier=AcceptingNotifier(), outbox=LocalOutbox(Outbox(10))
    )
    return make_app(
        settings,
        WalletClient([], settings.wallet, Metrics()),
        Metrics(),
        TOKEN,
        tills=TillHub(NoRegistry(), settings.till, Metrics()),
        identity=front,
        charging=cast(Charging, object()),
        konbini_webhook_key="k" * 32,
        backups=BackupClient(None),
    )


def expected_security(access: Access, method: str) -> list[dict[str, list[str]]]:
    """What the document must say for `access`, written out here independently."""
    requirements: list[dict[str, list[str]]] = []
    for credential in access:
        match credential:
            case StaffToken():
                requirements.append({"staffToken": []})
            case SessionCookie(kind=kind):
                requirement: dict[str, list[str]] = {f"{kind.value}Session": []}
                if method not in ("GET", "HEAD"):
                    requirement["csrfToken"] = []
                requirements.append(requirement)
            case OAuthScope(name=name):
                requirements.append({"walletOAuth": [name]})
            case ApiToken(permission=permission):
                requirements.append({"apiToken": [permission.value]})
            case StaffRole(permission=permission):
                roles = [] if permission is None else [permission.value]
                staff: dict[str, list[str]] = {"staffSession": roles}
                if method not in ("GET", "HEAD"):
                    staff["csrfToken"] = []
                requirements.append(staff)
    return requirements


def test_every_route_declares_its_access_and_the_document_says_the_same(
    whole_app: web.Application,
) -> None:
    document = msgspec.json.decode(whole_app[openapi_key])
    assert "security" not in document  # Each operation says its own.
    served: set[tuple[str, str]] = set()
    for resource_route in whole_app.router.routes():
        path = resource_route.resource.canonical if resource_route.resource else ""
        route = getattr(resource_route.handler, "__self__", None)
        if not isinstance(route, Route):
            # Not the API: then not in the document either.
            assert NOT_API.match(path), f"{resource_route.method} {path} is served unguarded"
            assert path not in document["paths"], path
            continue
        # Registered as `Route.serve`: the access is checked before the handler runs.
        assert resource_route.handler == route.serve
        assert (resource_route.method, path) == (route.method, route.path)
        assert isinstance(route.access, tuple)
        assert all(
            isinstance(c, StaffToken | SessionCookie | OAuthScope | StaffRole | ApiToken)
            for c in route.access
        )
        public = (route.method, route.path) in PUBLIC_OPERATIONS
        assert (route.access == PUBLIC) == public, f"{route.method} {route.path}: {route.access}"
        operation = document["paths"][route.path][route.method.lower()]
        # A public operation has none (nor has the document at its top).
        security = operation.get("security", [])
        assert security == expected_security(route.access, route.method), route.path
        assert ("security" in operation) == (not public), route.path
        served.add((route.method, route.path))
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert documented == served == {(r.method, r.path) for r in whole_app[api_routes_key]}
    assert served >= PUBLIC_OPERATIONS


def test_the_document_declares_every_scheme_it_names(whole_app: web.Application) -> None:
    document = msgspec.json.decode(whole_app[openapi_key])
    schemes = document["components"]["securitySchemes"]
    assert schemes["staffToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["staffToken"]["description"],
    }
    assert (schemes["apiToken"]["type"], schemes["apiToken"]["scheme"]) == ("http", "bearer")
    # The API's sessions (a guardian has pages only, no API route).
    for kind in (SessionKind.PORTAL, SessionKind.MYPAGE, SessionKind.WALLET, SessionKind.STAFF):
        scheme = schemes[f"{kind.value}Session"]
        assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "cookie", f"cn_{kind}")
    assert (schemes["csrfToken"]["in"], schemes["csrfToken"]["name"]) == ("header", "X-CSRF-Token")
    flow = schemes["walletOAuth"]["flows"]["authorizationCode"]
    assert set(flow["scopes"]) == {"wallet:read", "wallet:pay"}
    named = {
        name
        for operations in document["paths"].values()
        for operation in operations.values()
        for requirement in operation.get("security", [])
        for name in requirement
    }
    assert named == set(schemes)


# Refused before the handler ----------------------------------------------------------------


@dataclass
class Spy:
    """A handler that records who it was called by."""

    callers: list[Caller] = field(default_factory=list)

    async def __call__(self, request: web.Request) -> web.Response:
        self.callers.append(request[CALLER])
        return web.json_response({"ran": True})


@dataclass(frozen=True)
class Credentials:
    """What a test request carries: one credential at most, named for the messages."""

    name: str
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)


NOBODY = Credentials("nobody")
THE_TOKEN = Credentials("the staff token", headers={"Authorization": f"Bearer {TOKEN}"})
WRONG_TOKEN = Credentials("a wrong staff token", headers={"Authorization": "Bearer " + "x" * 32})


def session(kind: SessionKind, *, csrf: bool = True) -> Credentials:
    headers = {"X-CSRF-Token": csrf_of(session_id(kind))} if csrf else {}
    cookies = {COOKIE_NAMES[kind]: session_id(kind)}
    name = f"a {kind.value} session" + ("" if csrf else " without its CSRF token")
    return Credentials(name, headers=headers, cookies=cookies)


def bearer(token: str) -> Credentials:
    return Credentials(token, headers={"Authorization": f"Bearer {token}"})


EVERY_CREDENTIAL = (
    THE_TOKEN,
    *(session(kind) for kind in SessionKind),
    bearer("token-read"),
    bearer("token-pay"),
    bearer("token-machine"),
)


def admits(access: Access, credentials: Credentials) -> bool:
    """Whether `access` admits a request carrying just these credentials."""
    if not access:
        return True
    for credential in access:
        match credential:
            case StaffToken() if credentials is THE_TOKEN:
                return True
            case SessionCookie(kind=kind) if credentials == session(kind):
                return True
            case StaffRole() if credentials == session(SessionKind.STAFF):
                return True
            case ApiToken() if credentials == bearer("token-machine"):
                return True
            case OAuthScope(name=name) if any(
                credentials == bearer(token) and name in scope.split()
                for token, scope in FakeIdentity().tokens.items()
            ):
                return True
    return False


@pytest.fixture
async def spied(
    whole_app: web.Application,
) -> AsyncIterator[tuple[TestClient[Any, Any], dict[tuple[str, str], Spy]]]:
    """The app's every API route, each with its own access and a spy for its handler."""
    app = web.Application(middlewares=[error_middleware])
    app[staff_token_key] = TOKEN
    app[identity_key] = FakeIdentity()
    app[notifier_key] = AcceptingNotifier()
    spies: dict[tuple[str, str], Spy] = {}
    for route in whole_app[api_routes_key]:
        spy = spies[route.method, route.path] = Spy()
        served = msgspec.structs.replace(route, handler=spy)
        app.router.add_route(route.method, route.path, served.serve)
    async with TestClient(TestServer(app)) as client:
        yield client, spies


async def call(
    client: TestClient[Any, Any], method: str, path: str, credentials: Credentials
) -> tuple[int, dict[str, Any]]:
    client.session.cookie_jar.clear()
    url = re.sub(r"{\w+}", "202600000001", path)
    async with client.request(
        method, url, headers=credentials.headers, cookies=credentials.cookies
    ) as response:
        body: dict[str, Any] = await response.json()
        return response.status, body


async def test_every_route_refuses_a_caller_it_does_not_admit_before_its_handler(
    whole_app: web.Application,
    spied: tuple[TestClient[Any, Any], dict[tuple[str, str], Spy]],
) -> None:
    client, spies = spied
    for route in whole_app[api_routes_key]:
        spy = spies[route.method, route.path]
        for credentials in (NOBODY, *EVERY_CREDENTIAL):
            ran = len(spy.callers)
            status, body = await call(client, route.method, route.path, credentials)
            where = f"{route.method} {route.path} with {credentials.name}"
            if admits(route.access, credentials):
                assert (status, body) == (200, {"ran": True}), where
                assert len(spy.callers) == ran + 1, where
                continue
            assert status in (401, 403), (where, status, body)
            assert set(body) == {"reason", "message"}, where
            assert len(spy.callers) == ran, f"{where}: the handler ran"
        # A session's change without its CSRF token is refused too.
        for credential in route.access:
            kind = credential.kind if isinstance(credential, SessionCookie) else None
            if isinstance(credential, StaffRole):
                kind = SessionKind.STAFF
            if kind is not None and route.changes:
                without = session(kind, csrf=False)
                ran = len(spy.callers)
                status, body = await call(client, route.method, route.path, without)
                assert (status, body["reason"]) == (403, "csrf"), route.path
                assert len(spy.callers) == ran, f"{route.path}: the handler ran"


# One access kind at a time: who is refused, with what, and who gets through ----------------


def one_route_app(access: Access, spy: Spy) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[staff_token_key] = TOKEN
    app[identity_key] = FakeIdentity()
    app[notifier_key] = AcceptingNotifier()
    for method in ("GET", "POST"):
        route = Route(method=method, path="/guarded", summary="", handler=spy, access=access)
        app.router.add_route(method, "/guarded", route.serve)
    return app


SIGN_IN_FIRST = (401, {"reason": "unauthorized", "message": "sign in first"})
STAFF_TOKEN_REQUIRED = (
    401,
    {"reason": "unauthorized", "message": "a valid staff token is required"},
)
CSRF = (403, {"reason": "csrf", "message": "the CSRF token is missing or wrong"})
STAFF_SIGN_IN_FIRST = (
    401,
    {"reason": "unauthorized", "message": "sign in first, or send an API token"},
)


def others(*kinds: SessionKind) -> list[Credentials]:
    return [session(kind) for kind in SessionKind if kind not in kinds]


# (access, method, the credentials it refuses with the answer, the credentials it admits
# with the caller the handler sees)
CASES: list[tuple[str, Access, str, list[tuple[Credentials, tuple[int, Any]]], Credentials, Caller]]
CASES = [
    (
        "staff token",
        STAFF_TOKEN,
        "POST",
        [
            (NOBODY, STAFF_TOKEN_REQUIRED),
            (WRONG_TOKEN, STAFF_TOKEN_REQUIRED),
            (
                Credentials("basic", headers={"Authorization": f"Basic {TOKEN}"}),
                STAFF_TOKEN_REQUIRED,
            ),
            (bearer("token-both"), STAFF_TOKEN_REQUIRED),
            (session(SessionKind.STAFF), STAFF_TOKEN_REQUIRED),
        ],
        THE_TOKEN,
        TokenHolder(),
    ),
    (
        "staff session",
        STAFF_SESSION,
        "POST",
        [
            (NOBODY, SIGN_IN_FIRST),
            (THE_TOKEN, SIGN_IN_FIRST),
            (session(SessionKind.STAFF, csrf=False), CSRF),
            *((credentials, SIGN_IN_FIRST) for credentials in others(SessionKind.STAFF)),
        ],
        session(SessionKind.STAFF),
        SignedIn(kind=SessionKind.STAFF, subject=STAFF_ID),
    ),
    *(
        (
            f"{kind.value} session",
            sessions(kind),
            "POST",
            [
                (NOBODY, SIGN_IN_FIRST),
                (THE_TOKEN, SIGN_IN_FIRST),
                (bearer("token-both"), SIGN_IN_FIRST),
                (session(kind, csrf=False), CSRF),
                *((credentials, SIGN_IN_FIRST) for credentials in others(kind)),
            ],
            session(kind),
            SignedIn(kind=kind, subject=MEMBER_NO),
        )
        for kind in (
            SessionKind.PORTAL,
            SessionKind.MYPAGE,
            SessionKind.WALLET,
            SessionKind.GUARDIAN,
        )
    ),
    (
        "staff may",
        staff_may(Permission.MEMBERS_CHANGE),
        "POST",
        [
            (
                NOBODY,
                (401, {"reason": "unauthorized", "message": "sign in first, or send an API token"}),
            ),
            (
                THE_TOKEN,
                (401, {"reason": "unauthorized", "message": "a valid API token is required"}),
            ),
            (session(SessionKind.STAFF, csrf=False), CSRF),
            *((credentials, STAFF_SIGN_IN_FIRST) for credentials in others(SessionKind.STAFF)),
        ],
        session(SessionKind.STAFF),
        StaffMember(
            staff_id=STAFF_ID,
            name="staff",
            role=Role.ADMINISTRATOR,
            permissions=frozenset(Permission),
        ),
    ),
    (
        "oauth scope",
        (PAY,),
        "POST",
        [
            (NOBODY, (401, {"reason": "missing_authorization", "message": "no token"})),
            (THE_TOKEN, (401, {"reason": "invalid_token", "message": "the token is not known"})),
            (
                bearer("token-read"),
                (403, {"reason": "insufficient_scope", "message": "not this scope"}),
            ),
            (
                session(SessionKind.WALLET),
                (401, {"reason": "missing_authorization", "message": "no token"}),
            ),
        ],
        bearer("token-pay"),
        BearerMember(member_no=MEMBER_NO, scope=PAY.name, grant_id="grant-1", client_id="app"),
    ),
]


@pytest.mark.parametrize(
    ("kind", "access", "method", "refused", "admitted", "caller"),
    CASES,
    ids=[case[0] for case in CASES],
)
async def test_a_caller_without_the_access_is_refused_before_the_handler_runs(
    kind: str,
    access: Access,
    method: str,
    refused: list[tuple[Credentials, tuple[int, Any]]],
    admitted: Credentials,
    caller: Caller,
) -> None:
    spy = Spy()
    async with TestClient(TestServer(one_route_app(access, spy))) as client:
        for credentials, answer in refused:
            assert await call(client, method, "/guarded", credentials) == answer, credentials.name
        assert spy.callers == []
        assert await call(client, method, "/guarded", admitted) == (200, {"ran": True})
        assert spy.callers == [caller]


async def test_a_session_reads_without_its_csrf_token() -> None:
    spy = Spy()
    app = one_route_app(sessions(SessionKind.WALLET), spy)
    async with TestClient(TestServer(app)) as client:
        without = session(SessionKind.WALLET, csrf=False)
        assert await call(client, "GET", "/guarded", without) == (200, {"ran": True})
    assert spy.callers == [SignedIn(kind=SessionKind.WALLET, subject=MEMBER_NO)]


async def test_the_first_credential_the_request_carries_is_the_one_checked() -> None:
    """The audit log takes the staff token or a staff session: a wrong token is refused
    even beside a live session, and a request with neither hears "sign in first"."""
    spy = Spy()
    app = one_route_app(STAFF_TOKEN + STAFF_SESSION, spy)
    async with TestClient(TestServer(app)) as client:
        both = Credentials(
            "a wrong token and a staff session",
            headers=WRONG_TOKEN.headers,
            cookies=session(SessionKind.STAFF).cookies,
        )
        assert await call(client, "GET", "/guarded", both) == STAFF_TOKEN_REQUIRED
        assert await call(client, "GET", "/guarded", NOBODY) == SIGN_IN_FIRST
        assert spy.callers == []
        assert await call(client, "GET", "/guarded", THE_TOKEN) == (200, {"ran": True})
        staff = session(SessionKind.STAFF, csrf=False)
        assert await call(client, "GET", "/guarded", staff) == (200, {"ran": True})
    assert spy.callers == [TokenHolder(), SignedIn(kind=SessionKind.STAFF, subject=STAFF_ID)]


async def test_a_public_route_asks_nobody() -> None:
    spy = Spy()
    identity = FakeIdentity()
    app = one_route_app(PUBLIC, spy)
    app[identity_key] = identity
    async with TestClient(TestServer(app)) as client:
        assert await call(client, "POST", "/guarded", WRONG_TOKEN) == (200, {"ran": True})
    assert spy.callers == [Anybody()] and identity.asked == []
