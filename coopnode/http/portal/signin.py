"""Portal sign-in with a second factor (FLOWS §3) and the my-page login (FLOWS §4).

A password sign-in opens a flow in the engine; the second factor (an SMS or a voice code,
an authenticator app's code, or for the my-page a mailed code) finishes it and opens the
session, whose cookie and CSRF token are set here. A login pressed twice is one login:
the engine answers a repeated step with the first step's answer, and the page's script
sends a form once.
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
from coopnode.catalogues import N_
from coopnode.domain.identity import FlowKind, SessionKind
from coopnode.http.identity_front import COOKIE_NAMES, session_id_of, set_cookie
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
    text,
)
from coopnode.http.portal.flows import try_ask

_CODE = re.compile(r"^[0-9]{6}$")
PORTAL = "portal"
MYPAGE = "mypage"


@page
async def portal_top(request: web.Request) -> web.Response:
    signed = bool(session_id_of(request, SessionKind.PORTAL))
    return render(request, "member/portal_top.html", {"signed": signed})


@page
async def portal_sign_in_form(request: web.Request) -> web.Response:
    return render(request, "member/portal_sign_in.html")


def _mfa_context(request: web.Request, methods: list[str], masked_phone: str) -> dict[str, object]:
    return {"methods": methods, "masked_phone": masked_phone}


async def _password_sign_in(
    request: web.Request, kind: SessionKind, template: str
) -> tuple[FlowAnswer | None, web.Response | None, dict[str, str]]:
    """The mail-and-password step shared by the portal and the my-page."""
    form = await read_form(request)
    check_form_csrf(request, form)
    shown = {"mail": form.get("mail", "")}
    reply = await try_ask(
        request,
        SignIn(kind=kind, identifier=form.get("mail", ""), password=form.get("password", "")),
    )
    if isinstance(reply, Refused):
        errors = {"password": refusal_text(request, reply)}
        response = render(request, template, {"form": shown, "errors": errors}, status=400)
        return None, response, form
    if not isinstance(reply, FlowAnswer):
        raise TypeError("sign-in answered with something else")
    return reply, None, form


@page
async def portal_sign_in(request: web.Request) -> web.Response:
    flow, refused_page, _ = await _password_sign_in(
        request, SessionKind.PORTAL, "member/portal_sign_in.html"
    )
    if flow is None:
        if refused_page is None:
            raise TypeError("a sign-in without a flow must answer with a page")
        return refused_page
    context = _mfa_context(request, flow.methods, flow.masked_phone)
    response = render(request, "member/portal_mfa.html", context, here="/portal/sign-in")
    keep_flow(request, response, PORTAL, flow.flow_id)
    # Which second factors the account has is not secret to its holder; it chooses the
    # screen when the member comes back to it from the code page.
    set_cookie(request, response, "cn_mfa_methods", ",".join(flow.methods), path="/portal")
    return response


@page
async def portal_mfa_form(request: web.Request) -> web.Response:
    require_flow(request, PORTAL)
    methods = request.cookies.get("cn_mfa_methods", "sms,voice").split(",")
    return render(request, "member/portal_mfa.html", _mfa_context(request, methods, ""))


@page
async def portal_send_code(request: web.Request) -> web.Response:
    form = await read_form(request)
    check_form_csrf(request, form)
    flow_id = require_flow(request, PORTAL)
    method = "voice" if form.get("method") == "voice" else "sms"
    step = FlowStep(
        kind=FlowKind.PORTAL_SIGN_IN,
        step="send_code",
        flow_id=flow_id,
        method=method,
        phone=form.get("phone", ""),
        country_code=form.get("country_code", "+81") or "+81",
    )
    reply = await try_ask(request, step)
    methods = request.cookies.get("cn_mfa_methods", "sms,voice").split(",")
    if isinstance(reply, Refused):
        context = {
            **_mfa_context(request, methods, ""),
            "form": form,
            "errors": {"phone": refusal_text(request, reply)},
        }
        return render(
            request, "member/portal_mfa.html", context, status=400, here="/portal/sign-in"
        )
    masked = reply.masked_phone if isinstance(reply, FlowAnswer) else ""
    context = {"masked_phone": masked, "method": method}
    return render(request, "member/portal_code.html", context, here="/portal/sign-in")


@page
async def portal_verify(request: web.Request) -> web.Response:
    form = await read_form(request)
    check_form_csrf(request, form)
    flow_id = require_flow(request, PORTAL)
    totp = form.get("method") == "totp"
    template = "member/portal_mfa.html" if totp else "member/portal_code.html"
    field = "totp_code" if totp else "code"
    code = form.get(field, "")
    methods = request.cookies.get("cn_mfa_methods", "sms,voice").split(",")
    context: dict[str, object] = {"methods": methods, "masked_phone": "", "method": "sms"}
    if not _CODE.match(code):
        context["errors"] = {field: text(request, N_("error.code"))}
        return render(request, template, context, status=400, here="/portal/sign-in")
    step = FlowStep(
        kind=FlowKind.PORTAL_SIGN_IN,
        step="verify_totp" if totp else "verify",
        flow_id=flow_id,
        code=code,
        old_session_id=session_id_of(request, SessionKind.PORTAL),
    )
    reply = await try_ask(request, step)
    if isinstance(reply, Refused):
        context["errors"] = {field: refusal_text(request, reply)}
        return render(request, template, context, status=400, here="/portal/sign-in")
    if not isinstance(reply, SessionIssued):
        raise TypeError("the second factor answered with something else")
    response = see_other("/portal/home")
    open_session(request, response, reply)
    end_flow(response, PORTAL)
    return response


@page
async def sign_out(request: web.Request) -> web.Response:
    """End every session this browser holds (portal, my-page, wallet)."""
    form = await read_form(request)
    check_form_csrf_or_session(request, form)
    wanted = form.get("next", "")
    response = see_other(wanted if wanted in ("/mypage", "/portal/guardian") else "/portal")
    for kind, name in COOKIE_NAMES.items():
        session_id = session_id_of(request, kind)
        if session_id:
            await try_ask(request, SignOut(session_id=session_id))
        response.del_cookie(name, path="/")
        response.del_cookie(f"cn_csrf_{kind.value}", path="/")
    response.del_cookie("cn_wallet_token", path="/")
    return response


def check_form_csrf_or_session(request: web.Request, form: dict[str, str]) -> None:
    """Signing out is harmless but still needs the page's token: the form token, or any
    of the browser's session tokens (the sign-out button sits on signed-in pages).
    """
    sent = form.get("csrf", "")
    tokens = [request.cookies.get(f"cn_csrf_{kind.value}", "") for kind in SessionKind]
    if sent and sent in [token for token in tokens if token]:
        return
    check_form_csrf(request, form)


# My page (§4) -----------------------------------------------------------------------------


@page
async def mypage_top(request: web.Request) -> web.Response:
    if session_id_of(request, SessionKind.MYPAGE):
        raise web.HTTPSeeOther("/mypage/home")
    return render(request, "emoney/mypage_top.html")


@page
async def mypage_login_form(request: web.Request) -> web.Response:
    return render(request, "emoney/mypage_login.html")


@page
async def mypage_login(request: web.Request) -> web.Response:
    flow, refused_page, form = await _password_sign_in(
        request, SessionKind.MYPAGE, "emoney/mypage_login.html"
    )
    if flow is None:
        if refused_page is None:
            raise TypeError("a sign-in without a flow must answer with a page")
        return refused_page
    context = {"form": {"mail": form.get("mail", "")}, "masked_mail": flow.masked_mail}
    response = render(request, "emoney/mypage_confirm.html", context, here="/mypage/login")
    keep_flow(request, response, MYPAGE, flow.flow_id)
    return response


@page
async def mypage_send_code(request: web.Request) -> web.Response:
    form = await read_form(request)
    check_form_csrf(request, form)
    flow_id = require_flow(request, MYPAGE)
    context: dict[str, object] = {"form": {"mail": form.get("mail", "")}}
    reply = await try_ask(
        request, FlowStep(kind=FlowKind.MYPAGE_LOGIN, step="send_code", flow_id=flow_id)
    )
    if isinstance(reply, Refused):
        context["errors"] = {"mail": refusal_text(request, reply)}
        return render(
            request, "emoney/mypage_confirm.html", context, status=400, here="/mypage/login"
        )
    return render(request, "emoney/mypage_code.html", context, here="/mypage/login")


@page
async def mypage_verify(request: web.Request) -> web.Response:
    form = await read_form(request)
    check_form_csrf(request, form)
    flow_id = require_flow(request, MYPAGE)
    code = form.get("code", "")
    context: dict[str, object] = {"form": {"mail": form.get("mail", "")}}
    if not _CODE.match(code):
        context["errors"] = {"code": text(request, N_("error.code"))}
        return render(request, "emoney/mypage_code.html", context, status=400, here="/mypage/login")
    step = FlowStep(
        kind=FlowKind.MYPAGE_LOGIN,
        step="verify",
        flow_id=flow_id,
        code=code,
        old_session_id=session_id_of(request, SessionKind.MYPAGE),
    )
    reply = await try_ask(request, step)
    if isinstance(reply, Refused):
        context["errors"] = {"code": refusal_text(request, reply)}
        return render(request, "emoney/mypage_code.html", context, status=400, here="/mypage/login")
    if not isinstance(reply, SessionIssued):
        raise TypeError("the my-page code answered with something else")
    response = see_other("/mypage/home")
    open_session(request, response, reply)
    end_flow(response, MYPAGE)
    return response


def sign_in_routes() -> list[web.RouteDef]:
    return [
        web.get("/portal", portal_top),
        web.get("/portal/sign-in", portal_sign_in_form),
        web.post("/portal/sign-in", portal_sign_in),
        web.get("/portal/sign-in/mfa", portal_mfa_form),
        web.post("/portal/sign-in/send", portal_send_code),
        web.post("/portal/sign-in/verify", portal_verify),
        web.post("/portal/sign-out", sign_out),
        web.get("/mypage", mypage_top),
        web.get("/mypage/login", mypage_login_form),
        web.post("/mypage/login", mypage_login),
        web.post("/mypage/login/send", mypage_send_code),
        web.post("/mypage/login/verify", mypage_verify),
    ]
