"""The way in for a guardian who is not a member (ファミリー申請, FLOWS §3 step 5).

A member's grant mails the guardian's address an invitation to `/portal/guardian`. There
the guardian confirms the address with a mailed code and sets a password, with the same
engine steps as a member's password setting (§2), then signs in with the address, the
password and a mailed code (as the my-page login, §4) into a guardian session:

    /portal/guardian                 the invitation page: the address, to get a code
    /portal/guardian/start           → the code page          (flow cookie: guardian)
    /portal/guardian/verify          → the new-password page  (or a new code)
    /portal/guardian/password        → the sign-in page
    /portal/guardian/sign-in         the address and password → a code is mailed
    /portal/guardian/sign-in/verify  → the guardian's home    (flow cookie: guardian_sign_in)
    /portal/guardian/home            the members who granted access, each a link to
                                     /portal/family/{member_no} (portal_family)

A guardian session is a kind of its own (`SessionKind.GUARDIAN`, cookie `cn_guardian`):
member pages and the wallet API ask for member kinds and so never accept it. Every answer
before sign-in reads the same whether or not the address was invited.
"""

from __future__ import annotations

import re

from aiohttp import web

from coopnode.actors.identity.messages import (
    Family,
    FlowAnswer,
    FlowStep,
    GuardianStart,
    GuardianWards,
    Refused,
    SessionIssued,
    SignIn,
)
from coopnode.catalogues import N_
from coopnode.domain.identity import FlowKind, SessionKind
from coopnode.http.errors import status_of
from coopnode.http.identity_front import ask, session_id_of
from coopnode.http.portal.core import (
    check_form_csrf,
    end_flow,
    keep_flow,
    open_session,
    page,
    read_form,
    refusal_text,
    render,
    require_flow,
    see_other,
    signed_in,
    text,
)
from coopnode.http.portal.flows import set_new_password, try_ask, verify_mailed_code

_CODE = re.compile(r"^[0-9]{6}$")
SETUP = "guardian"
SIGN_IN = "guardian_sign_in"
HOME = "/portal/guardian"
SIGN_IN_PAGE = "/portal/guardian/sign-in"


async def guardian_family(request: web.Request, guardian_mail: str) -> Family:
    reply = await ask(request, GuardianWards(guardian_mail=guardian_mail))
    if not isinstance(reply, Family):
        raise TypeError("the guardian's family answered with something else")
    return reply


# The invitation: confirm the address, set a password ------------------------------------


@page
async def guardian_top(request: web.Request) -> web.Response:
    return render(request, "guardian/top.html", {"done": False})


@page
async def guardian_start(request: web.Request) -> web.Response:
    form = await read_form(request)
    check_form_csrf(request, form)
    mail = form.get("mail", "")
    if "@" not in mail:
        errors = {"mail": text(request, N_("error.mail"))}
        context = {"form": form, "errors": errors, "done": False}
        return render(request, "guardian/top.html", context, status=400, here=HOME)
    reply = await try_ask(request, GuardianStart(mail=mail))
    if isinstance(reply, Refused):
        context = {"form": form, "errors": {"mail": refusal_text(request, reply)}, "done": False}
        return render(
            request, "guardian/top.html", context, status=status_of(reply.reason), here=HOME
        )
    if not isinstance(reply, FlowAnswer):
        raise TypeError("the guardian's start answered with something else")
    response = render(request, "guardian/code.html", {"form": {"mail": mail}}, here=HOME)
    keep_flow(request, response, SETUP, reply.flow_id)
    return response


@page
async def guardian_verify(request: web.Request) -> web.Response:
    again, _ = await verify_mailed_code(
        request, FlowKind.GUARDIAN_SETUP, SETUP, "guardian/code.html", HOME
    )
    return again or render(request, "guardian/password.html", {"verified": True}, here=HOME)


@page
async def guardian_password(request: web.Request) -> web.Response:
    return await set_new_password(
        request,
        FlowKind.GUARDIAN_SETUP,
        SETUP,
        "guardian/password.html",
        done=f"{SIGN_IN_PAGE}?done=1",
        here=HOME,
    )


# Sign-in: address and password, then a mailed code --------------------------------------


@page
async def guardian_sign_in_form(request: web.Request) -> web.Response:
    return render(request, "guardian/sign_in.html", {"done": request.query.get("done") == "1"})


def _sign_in_refused(request: web.Request, form: dict[str, str], reply: Refused) -> web.Response:
    context = {
        "form": {"mail": form.get("mail", "")},
        "errors": {"password": refusal_text(request, reply)},
        "done": False,
    }
    return render(request, "guardian/sign_in.html", context, status=400, here=SIGN_IN_PAGE)


@page
async def guardian_sign_in(request: web.Request) -> web.Response:
    """The password, then at once the mailed code: a guardian has no other second factor."""
    form = await read_form(request)
    check_form_csrf(request, form)
    sign_in = SignIn(
        kind=SessionKind.GUARDIAN,
        identifier=form.get("mail", ""),
        password=form.get("password", ""),
    )
    flow = await try_ask(request, sign_in)
    if isinstance(flow, Refused):
        return _sign_in_refused(request, form, flow)
    if not isinstance(flow, FlowAnswer):
        raise TypeError("the guardian's sign-in answered with something else")
    send = FlowStep(kind=FlowKind.GUARDIAN_SIGN_IN, step="send_code", flow_id=flow.flow_id)
    sent = await try_ask(request, send)
    if isinstance(sent, Refused):
        return _sign_in_refused(request, form, sent)
    response = render(request, "guardian/sign_in_code.html", here=SIGN_IN_PAGE)
    keep_flow(request, response, SIGN_IN, flow.flow_id)
    return response


@page
async def guardian_sign_in_verify(request: web.Request) -> web.Response:
    form = await read_form(request)
    check_form_csrf(request, form)
    flow_id = require_flow(request, SIGN_IN)
    code = form.get("code", "")
    if not _CODE.match(code):
        errors = {"code": text(request, N_("error.code"))}
        return render(
            request, "guardian/sign_in_code.html", {"errors": errors}, status=400, here=SIGN_IN_PAGE
        )
    step = FlowStep(
        kind=FlowKind.GUARDIAN_SIGN_IN,
        step="verify",
        flow_id=flow_id,
        code=code,
        old_session_id=session_id_of(request, SessionKind.GUARDIAN),
    )
    reply = await try_ask(request, step)
    if isinstance(reply, Refused):
        errors = {"code": refusal_text(request, reply)}
        return render(
            request,
            "guardian/sign_in_code.html",
            {"errors": errors},
            status=status_of(reply.reason),
            here=SIGN_IN_PAGE,
        )
    if not isinstance(reply, SessionIssued):
        raise TypeError("the guardian's code answered with something else")
    response = see_other(f"{HOME}/home")
    open_session(request, response, reply)
    end_flow(response, SIGN_IN)
    return response


@page
async def guardian_home(request: web.Request) -> web.Response:
    who = await signed_in(request, (SessionKind.GUARDIAN,))
    family = await guardian_family(request, who.subject)
    return render(request, "guardian/home.html", {"family": family}, session=SessionKind.GUARDIAN)


def guardian_routes() -> list[web.RouteDef]:
    return [
        web.get(HOME, guardian_top),
        web.post(f"{HOME}/start", guardian_start),
        web.post(f"{HOME}/verify", guardian_verify),
        web.post(f"{HOME}/password", guardian_password),
        web.get(SIGN_IN_PAGE, guardian_sign_in_form),
        web.post(SIGN_IN_PAGE, guardian_sign_in),
        web.post(f"{SIGN_IN_PAGE}/verify", guardian_sign_in_verify),
        web.get(f"{HOME}/home", guardian_home),
    ]
