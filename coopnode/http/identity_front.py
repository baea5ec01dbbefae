"""What the identity handlers share: the app keys, the call to the identity actor, and
session cookies.

Sessions live in cookies named per kind (`cn_portal`, `cn_mypage`, `cn_wallet`,
`cn_staff`): `HttpOnly`, `SameSite=Lax`, and `Secure` in production. A request that
changes something must also send the session's CSRF token in `X-CSRF-Token` (the edge
checks both before a route's handler runs: `edge.py`); the token is returned at sign-in
and derived from the session id, so a page of another site, which can make the browser
send the cookie but cannot read it, cannot forge it.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from coopnode.actors.identity.actor import IdentityPort
from coopnode.actors.identity.messages import (
    IdentityReply,
    IdentityRequest,
    Refused,
    SessionIssued,
)
from coopnode.actors.notify.actor import NotifierPort, OutboxPort
from coopnode.domain.identity import SessionKind
from coopnode.http.errors import IdentityRefused
from coopnode.logs import get_logger

log = get_logger(__name__)

identity_key = web.AppKey("identity", IdentityPort)
notifier_key = web.AppKey("notifier", NotifierPort)
secure_cookies_key = web.AppKey("secure_cookies", bool)

CSRF_HEADER = "X-CSRF-Token"
COOKIE_NAMES: dict[SessionKind, str] = {kind: f"cn_{kind.value}" for kind in SessionKind}
MEMBER_KINDS = (SessionKind.PORTAL, SessionKind.MYPAGE)


async def ask(request: web.Request, message: IdentityRequest) -> IdentityReply:
    """Call the identity actor, hand its notifications to the notifier; a refusal is
    raised as `IdentityRefused`, which the middleware answers with the actor's status."""
    answer = await request.app[identity_key].call(message)
    notifier = request.app[notifier_key]
    for notification in answer.notifications:
        if not notifier.submit(notification):
            # The step is recorded; the member asks for a new code after the cool-down.
            log.warning("notification dropped: the queue is full", kind=notification.kind)
    if isinstance(answer.reply, Refused):
        raise IdentityRefused(answer.reply)
    return answer.reply


def json_response(reply: msgspec.Struct, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=msgspec.json.encode(reply), content_type="application/json"
    )


def set_cookie(
    request: web.Request,
    response: web.StreamResponse,
    name: str,
    value: str,
    *,
    path: str = "/",
    max_age: int | None = None,
) -> None:
    """Every cookie the node sets: `HttpOnly` (no script reads it), `SameSite=Lax` (kept off
    cross-site posts) and, in production, `Secure` (never sent over plain HTTP).
    """
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="Lax",
        secure=request.app[secure_cookies_key],
        path=path,
        max_age=max_age,
    )


def set_session_cookie(request: web.Request, response: web.Response, issued: SessionIssued) -> None:
    set_cookie(request, response, COOKIE_NAMES[issued.kind], issued.session_id)


def session_id_of(request: web.Request, kind: SessionKind) -> str:
    return request.cookies.get(COOKIE_NAMES[kind], "")


class SessionAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """What a sign-in answers; the session id itself goes in the cookie only."""

    kind: SessionKind
    subject: str
    csrf_token: str
    idle_timeout_s: int
    registered_now: bool = False


def session_response(request: web.Request, issued: SessionIssued) -> web.Response:
    response = json_response(
        SessionAnswer(
            kind=issued.kind,
            subject=issued.subject,
            csrf_token=issued.csrf_token,
            idle_timeout_s=issued.idle_timeout_s,
            registered_now=issued.registered_now,
        )
    )
    set_session_cookie(request, response, issued)
    return response


class IdentityFront(msgspec.Struct, frozen=True, kw_only=True):
    """What the front needs for the identity routes: the actor's client, the notifier,
    and the development outbox when the embedded mail server runs (None otherwise).
    """

    client: IdentityPort
    notifier: NotifierPort
    outbox: OutboxPort | None = None
