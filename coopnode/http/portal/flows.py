"""The guide page, the mail-address change (FLOWS §1) and password setting (FLOWS §2).

Each page posts to the next; the answer renders the following screen (or, where the seed
returns somewhere, redirects). The identity engine does the work in-process through the
identity actor's client: these handlers only read forms, check their shape so that a
mistake is shown next to its field, and choose the screen.
"""

from __future__ import annotations

import datetime
import re

from aiohttp import web

from coopnode.actors.identity.messages import (
    FlowAnswer,
    FlowStep,
    IdentityReply,
    IdentityRequest,
    MailChangeStart,
    PasswordStart,
    Refused,
)
from coopnode.catalogues import N_
from coopnode.domain.identity import FlowKind
from coopnode.http.errors import IdentityRefused, status_of
from coopnode.http.identity_front import ask
from coopnode.http.portal.core import (
    check_form_csrf,
    end_flow,
    flow_cookie,
    keep_flow,
    page,
    read_form,
    refusal_text,
    render,
    require_flow,
    see_other,
    text,
)

_MEMBER_NO = re.compile(r"^[0-9]{12}$")
_CODE = re.compile(r"^[0-9]{6}$")
MAIL_CHANGE = "mail_change"
MAIL_STAGE = "mail_change_stage"
PASSWORD = "password"  # noqa: S105  # The flow's name, not a password.
_MAIL_CHANGE_HOME = "/portal/mail-change"
_PASSWORD_HOME = "/portal/password"  # noqa: S105  # A page, not a password.


async def try_ask(request: web.Request, message: IdentityRequest) -> IdentityReply | Refused:
    """Call the engine; a refusal is returned, to be shown next to a field."""
    try:
        return await ask(request, message)
    except IdentityRefused as refusal:
        return refusal.refused


def _field_for(refused: Refused, default: str) -> str:
    if refused.reason.startswith("password_mismatch"):
        return "password_confirm"
    return default


# A mailed code, then a new password (§2, and a guardian's invitation) ---------------------


async def verify_mailed_code(
    request: web.Request, kind: FlowKind, cookie: str, template: str, here: str
) -> tuple[web.Response | None, dict[str, object]]:
    """The POST of a "we mailed you a code" page: send a new code, or check the one typed.

    Answers the page to show again (a new code went out, or an error next to the code),
    or None and the context for the next page when the code was right."""
    form = await read_form(request)
    check_form_csrf(request, form)
    flow_id = require_flow(request, cookie)
    context: dict[str, object] = {"form": {"mail": form.get("mail", "")}}
    if form.get("action") == "resend":
        reply = await try_ask(request, FlowStep(kind=kind, step="resend", flow_id=flow_id))
        if isinstance(reply, Refused):
            context["errors"] = {"code": refusal_text(request, reply)}
        else:
            context["resent"] = True
        return render(request, template, context, here=here), context
    code = form.get("code", "")
    if not _CODE.match(code):
        context["errors"] = {"code": text(request, N_("error.code"))}
        return render(request, template, context, status=400, here=here), context
    reply = await try_ask(request, FlowStep(kind=kind, step="verify", flow_id=flow_id, code=code))
    if isinstance(reply, Refused):
        context["errors"] = {"code": refusal_text(request, reply)}
        return render(
            request, template, context, status=status_of(reply.reason), here=here
        ), context
    return None, context


async def set_new_password(
    request: web.Request, kind: FlowKind, cookie: str, template: str, done: str, here: str
) -> web.Response:
    """The POST of the new-password page: set it and go to `done`, or show why not."""
    form = await read_form(request)
    check_form_csrf(request, form)
    flow_id = require_flow(request, cookie)
    step = FlowStep(
        kind=kind,
        step="set",
        flow_id=flow_id,
        password=form.get("password", ""),
        password_confirm=form.get("password_confirm", ""),
    )
    reply = await try_ask(request, step)
    if isinstance(reply, Refused):
        errors = {_field_for(reply, "password"): refusal_text(request, reply)}
        return render(
            request, template, {"errors": errors}, status=status_of(reply.reason), here=here
        )
    response = see_other(done)
    end_flow(response, cookie)
    return response


# Guide (§0, §2) ---------------------------------------------------------------------------


@page
async def guide(request: web.Request) -> web.Response:
    done = request.query.get("done") == "1"
    return render(request, "member/guide.html", {"done": done})


# Password (§2) -----------------------------------------------------------------------------


@page
async def password_details(request: web.Request) -> web.Response:
    return render(request, "member/password_mail.html")


@page
async def password_send(request: web.Request) -> web.Response:
    form = await read_form(request)
    check_form_csrf(request, form)
    mail = form.get("mail", "")
    if "@" not in mail:
        errors = {"mail": text(request, N_("error.mail"))}
        return render(
            request, "member/password_mail.html", {"form": form, "errors": errors}, status=400
        )
    reply = await try_ask(request, PasswordStart(mail=mail))
    if isinstance(reply, Refused):
        errors = {"mail": refusal_text(request, reply)}
        return render(
            request, "member/password_mail.html", {"form": form, "errors": errors}, status=400
        )
    if not isinstance(reply, FlowAnswer):
        raise TypeError("password start answered with something else")
    response = render(
        request, "member/password_code.html", {"form": {"mail": mail}}, here=_PASSWORD_HOME
    )
    keep_flow(request, response, PASSWORD, reply.flow_id)
    return response


@page
async def password_verify(request: web.Request) -> web.Response:
    again, context = await verify_mailed_code(
        request, FlowKind.PASSWORD, PASSWORD, "member/password_code.html", _PASSWORD_HOME
    )
    return again or render(request, "member/password_verified.html", context, here=_PASSWORD_HOME)


@page
async def password_new_form(request: web.Request) -> web.Response:
    require_flow(request, PASSWORD)
    return render(request, "member/password_new.html")


@page
async def password_set(request: web.Request) -> web.Response:
    # FLOWS §2 step 5: back to the guide page by itself.
    return await set_new_password(
        request,
        FlowKind.PASSWORD,
        PASSWORD,
        "member/password_new.html",
        done=f"{_PASSWORD_HOME}?done=1",
        here=_PASSWORD_HOME,
    )


# Mail change (§1) -------------------------------------------------------------------------


@page
async def mail_change_intro(request: web.Request) -> web.Response:
    return render(request, "member/mail_change_intro.html")


@page
async def mail_change_details(request: web.Request) -> web.Response:
    return render(request, "member/mail_change_details.html", {"step": 1})


def _birth_date(form: dict[str, str]) -> str | None:
    try:
        day = datetime.date(
            int(form.get("year", "")), int(form.get("month", "")), int(form.get("day", ""))
        )
    except (ValueError, OverflowError):  # A year past 9999 overflows before it is refused.
        return None
    return day.isoformat()


def _details_errors(request: web.Request, form: dict[str, str]) -> dict[str, str]:
    errors = {}
    if not _MEMBER_NO.match(form.get("member_no", "")):
        errors["member_no"] = text(request, N_("error.member_no"))
    if _birth_date(form) is None:
        errors["birth_date"] = text(request, N_("error.birth_date"))
    return errors


@page
async def mail_change_check(request: web.Request) -> web.Response:
    """入力内容を確認する: show what was typed, or the form again with its mistakes."""
    form = await read_form(request)
    check_form_csrf(request, form)
    errors = _details_errors(request, form)
    context: dict[str, object] = {"form": form, "step": 1 if errors else 2, "errors": errors}
    if errors or form.get("action") == "correct":
        status = 400 if errors else 200
        return render(
            request,
            "member/mail_change_details.html",
            context,
            status=status,
            here=_MAIL_CHANGE_HOME,
        )
    context["birth_date"] = _birth_date(form)
    return render(request, "member/mail_change_check.html", context, here=_MAIL_CHANGE_HOME)


@page
async def mail_change_search(request: web.Request) -> web.Response:
    """メールアドレスを検索する: the masked registered address, or the form with why not."""
    form = await read_form(request)
    check_form_csrf(request, form)
    errors = _details_errors(request, form)
    birth_date = _birth_date(form)
    if not errors and birth_date is not None:
        reply = await try_ask(
            request, MailChangeStart(member_no=form["member_no"], birth_date=birth_date)
        )
        if isinstance(reply, FlowAnswer):
            context = {"form": form, "step": 2, "masked_mail": reply.masked_mail}
            response = render(
                request, "member/mail_change_found.html", context, here=_MAIL_CHANGE_HOME
            )
            keep_flow(request, response, MAIL_CHANGE, reply.flow_id)
            return response
        if isinstance(reply, Refused):
            errors["member_no"] = refusal_text(request, reply)
    context = {"form": form, "step": 1, "errors": errors}
    return render(
        request, "member/mail_change_details.html", context, status=400, here=_MAIL_CHANGE_HOME
    )


def _passcode_page(
    request: web.Request, stage: str, *, sent: bool = False, error: str = "", status: int = 200
) -> web.Response:
    context = {
        "step": 3 if stage == "current" else 5,
        "stage": stage,
        "sent": sent,
        "errors": {"code": error} if error else {},
    }
    return render(
        request,
        "member/mail_change_passcode.html",
        context,
        status=status,
        here=f"{_MAIL_CHANGE_HOME}/passcode",
    )


@page
async def mail_change_send(request: web.Request) -> web.Response:
    """パスコードを送信する (to the current address)."""
    form = await read_form(request)
    check_form_csrf(request, form)
    flow_id = require_flow(request, MAIL_CHANGE)
    reply = await try_ask(
        request, FlowStep(kind=FlowKind.MAIL_CHANGE, step="send_current", flow_id=flow_id)
    )
    if isinstance(reply, Refused):
        return _passcode_page(request, "current", error=refusal_text(request, reply), status=400)
    response = _passcode_page(request, "current", sent=True)
    keep_flow(request, response, MAIL_STAGE, "current")
    return response


@page
async def mail_change_passcode_form(request: web.Request) -> web.Response:
    """The passcode entry page the mail links to."""
    require_flow(request, MAIL_CHANGE)
    stage = "new" if request.cookies.get(flow_cookie(MAIL_STAGE)) == "new" else "current"
    return _passcode_page(request, stage)


@page
async def mail_change_passcode(request: web.Request) -> web.Response:
    form = await read_form(request)
    check_form_csrf(request, form)
    flow_id = require_flow(request, MAIL_CHANGE)
    stage = "new" if request.cookies.get(flow_cookie(MAIL_STAGE)) == "new" else "current"
    code = form.get("code", "")
    if not _CODE.match(code):
        return _passcode_page(request, stage, error=text(request, N_("error.code")), status=400)
    step = "verify_new" if stage == "new" else "verify_current"
    reply = await try_ask(
        request, FlowStep(kind=FlowKind.MAIL_CHANGE, step=step, flow_id=flow_id, code=code)
    )
    if isinstance(reply, Refused):
        return _passcode_page(request, stage, error=refusal_text(request, reply), status=400)
    if stage == "current":
        return render(
            request, "member/mail_change_new.html", {"step": 4}, here=f"{_MAIL_CHANGE_HOME}/new"
        )
    response = render(request, "member/mail_change_done.html", {"step": 6}, here=_MAIL_CHANGE_HOME)
    end_flow(response, MAIL_CHANGE)
    end_flow(response, MAIL_STAGE)
    return response


@page
async def mail_change_new_form(request: web.Request) -> web.Response:
    require_flow(request, MAIL_CHANGE)
    return render(request, "member/mail_change_new.html", {"step": 4})


@page
async def mail_change_new(request: web.Request) -> web.Response:
    """The new address: confirm it, then send its passcode (or correct it)."""
    form = await read_form(request)
    check_form_csrf(request, form)
    flow_id = require_flow(request, MAIL_CHANGE)
    mail = form.get("mail", "")
    context = {"form": form, "step": 4}
    here = f"{_MAIL_CHANGE_HOME}/new"
    if "@" not in mail or len(mail) > 254:
        context["errors"] = {"mail": text(request, N_("error.mail"))}
        return render(request, "member/mail_change_new.html", context, status=400, here=here)
    if form.get("action") != "send":
        return render(request, "member/mail_change_new_check.html", context, here=here)
    reply = await try_ask(
        request,
        FlowStep(kind=FlowKind.MAIL_CHANGE, step="new_address", flow_id=flow_id, mail=mail),
    )
    if isinstance(reply, Refused):
        context["errors"] = {"mail": refusal_text(request, reply)}
        return render(request, "member/mail_change_new.html", context, status=400, here=here)
    response = _passcode_page(request, "new", sent=True)
    keep_flow(request, response, MAIL_STAGE, "new")
    return response


@page
async def mail_change_cancel(request: web.Request) -> web.Response:
    """中止する, on every step: the flow is cancelled in the engine and forgotten here."""
    form = await read_form(request)
    check_form_csrf(request, form)
    flow_id = request.cookies.get(flow_cookie(MAIL_CHANGE), "")
    if flow_id:
        await try_ask(request, FlowStep(kind=FlowKind.MAIL_CHANGE, step="cancel", flow_id=flow_id))
    response = render(request, "member/mail_change_cancelled.html", here=_MAIL_CHANGE_HOME)
    end_flow(response, MAIL_CHANGE)
    end_flow(response, MAIL_STAGE)
    return response


def flow_routes() -> list[web.RouteDef]:
    return [
        web.get("/portal/password", guide),
        web.get("/portal/password/details", password_details),
        web.post("/portal/password/details", password_send),
        web.post("/portal/password/verify", password_verify),
        web.get("/portal/password/new", password_new_form),
        web.post("/portal/password/new", password_set),
        web.get(_MAIL_CHANGE_HOME, mail_change_intro),
        web.get(f"{_MAIL_CHANGE_HOME}/details", mail_change_details),
        web.post(f"{_MAIL_CHANGE_HOME}/details", mail_change_check),
        web.post(f"{_MAIL_CHANGE_HOME}/search", mail_change_search),
        web.post(f"{_MAIL_CHANGE_HOME}/send", mail_change_send),
        web.get(f"{_MAIL_CHANGE_HOME}/passcode", mail_change_passcode_form),
        web.post(f"{_MAIL_CHANGE_HOME}/passcode", mail_change_passcode),
        web.get(f"{_MAIL_CHANGE_HOME}/new", mail_change_new_form),
        web.post(f"{_MAIL_CHANGE_HOME}/new", mail_change_new),
        web.post(f"{_MAIL_CHANGE_HOME}/cancel", mail_change_cancel),
    ]
