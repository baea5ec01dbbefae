"""The console's home, staff sign-in and sign-out, and the language switch.

Sign-in is the staff flow of the identity engine: the staff id and password open a flow
(kept in an `HttpOnly` cookie, never in the page), the authenticator app's code finishes
it and opens a staff session (`cn_staff`, with its CSRF token beside it). A disabled
account, a wrong password and an unknown id read alike.
"""

from __future__ import annotations

import re

from aiohttp import web

from coopnode.actors.identity.messages import (
    FlowAnswer,
    FlowStep,
    Refused,
    SessionIssued,
    SignIn,
    SignOut,
)
from coopnode.catalogues import N_, languages
from coopnode.domain.identity import FlowKind, SessionKind
from coopnode.http.console.pages import (
    FORM,
    HOME,
    SIGN_IN,
    render,
    see_other,
    text,
)
from coopnode.http.console.room import ConsolePart
from coopnode.http.edge import PUBLIC, STAFF_SIGNED_IN, Route
from coopnode.http.errors import IdentityRefused
from coopnode.http.identity_front import ask, session_id_of, set_cookie
from coopnode.http.portal.core import (
    LANG_COOKIE,
    check_form_csrf,
    end_flow,
    keep_flow,
    open_session,
    require_flow,
    safe_next,
)
from coopnode.http.portal.labels import refusal_text_id

_CODE = re.compile(r"^[0-9]{6}$")
FLOW = "console"
# Where the staff member goes once signed in: kept beside the flow, a path on this node.
NEXT_COOKIE = "cn_console_next"


async def home(request: web.Request) -> web.Response:
    return render(request, "frame/home.html")


async def sign_in_form(request: web.Request) -> web.Response:
    response = render(request, "signin/sign_in.html")
    wanted = safe_next(request.query.get("next", ""), HOME)
    set_cookie(request, response, NEXT_COOKIE, wanted, path="/console")
    return response


def _refused_text(request: web.Request, refused: Refused) -> str:
    values = {"attempts_left": refused.attempts_left or 0, "retry_after_s": refused.retry_after_s}
    return text(request, refusal_text_id(refused.reason), **values)


async def _try(request: web.Request, message: SignIn | FlowStep) -> object:
    try:
        return await ask(request, message)
    except IdentityRefused as refusal:
        return refusal.refused


async def sign_in(request: web.Request) -> web.Response:
    form = request[FORM]
    check_form_csrf(request, form)
    staff_id = form.get("staff_id", "")
    message = SignIn(kind=SessionKind.STAFF, identifier=staff_id, password=form.get("password", ""))
    reply = await _try(request, message)
    if isinstance(reply, Refused):
        errors = {"password": _refused_text(request, reply)}
        context = {"form": {"staff_id": staff_id}, "errors": errors}
        return render(request, "signin/sign_in.html", context, status=400, here=SIGN_IN)
    if not isinstance(reply, FlowAnswer):
        raise TypeError("the staff sign-in answered with something else")
    response = render(request, "signin/totp.html", here=SIGN_IN)
    keep_flow(request, response, FLOW, reply.flow_id)
    return response


async def verify(request: web.Request) -> web.Response:
    form = request[FORM]
    check_form_csrf(request, form)
    flow_id = require_flow(request, FLOW)
    code = form.get("code", "")
    if not _CODE.match(code):
        errors = {"code": text(request, N_("error.code"))}
        return render(request, "signin/totp.html", {"errors": errors}, status=400, here=SIGN_IN)
    step = FlowStep(
        kind=FlowKind.STAFF_SIGN_IN,
        step="verify_totp",
        flow_id=flow_id,
        code=code,
        old_session_id=session_id_of(request, SessionKind.STAFF),
    )
    reply = await _try(request, step)
    if isinstance(reply, Refused):
        errors = {"code": _refused_text(request, reply)}
        return render(request, "signin/totp.html", {"errors": errors}, status=400, here=SIGN_IN)
    if not isinstance(reply, SessionIssued):
        raise TypeError("the authenticator code answered with something else")
    response = see_other(safe_next(request.cookies.get(NEXT_COOKIE, ""), HOME))
    open_session(request, response, reply)
    end_flow(response, FLOW)
    response.del_cookie(NEXT_COOKIE, path="/console")
    return response


async def sign_out(request: web.Request) -> web.Response:
    """End the staff session (its CSRF token was checked before this ran)."""
    response = see_other(SIGN_IN)
    session_id = session_id_of(request, SessionKind.STAFF)
    if session_id:
        await ask(request, SignOut(session_id=session_id))
    response.del_cookie("cn_staff", path="/")
    response.del_cookie("cn_csrf_staff", path="/")
    return response


async def language(request: web.Request) -> web.Response:
    """The language switch: remember the choice, back to the page it was pressed on."""
    lang = request.match_info["lang"]
    if lang not in languages():
        raise web.HTTPNotFound()
    response = see_other(safe_next(request.query.get("next", ""), HOME))
    set_cookie(request, response, LANG_COOKIE, lang)
    return response


PART = ConsolePart(
    name="signin",
    routes=(
        Route(method="GET", path="/console", handler=home, access=STAFF_SIGNED_IN,
              summary="The console's home: what the staff member's role may do"),
        Route(method="GET", path=SIGN_IN, handler=sign_in_form, access=PUBLIC,
              summary="Staff sign-in: staff id and password"),
        Route(method="POST", path=SIGN_IN, handler=sign_in, access=PUBLIC,
              summary="Staff sign-in: the password step"),
        Route(method="POST", path="/console/sign-in/verify", handler=verify, access=PUBLIC,
              summary="Staff sign-in: the authenticator app's code"),
        Route(method="POST", path="/console/sign-out", handler=sign_out,
              access=STAFF_SIGNED_IN, summary="Staff sign-out"),
        Route(method="GET", path="/console/lang/{lang}", handler=language, access=PUBLIC,
              summary="The language switch"),
    ),
)  # fmt: skip
