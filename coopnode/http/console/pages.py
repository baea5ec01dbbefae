"""What every console page shares: the frame's rendering, the staff member's language,
the error page, forms, and `serve`, which checks a page's access before it runs.

Pages are server-rendered (Jinja2 with the i18n extension over the catalogues, as the
portal's) and work without JavaScript. The language is the one asked for (`?lang=`), the
one remembered (`cn_lang`, shared with the portal), or the co-op's default.

Access. A page is an edge `Route`; `serve` reads a posted form first, then asks the edge
to admit the caller with the form's `csrf` field as the session's CSRF token (a sign-in
form, before any session, carries the double-submit token of `portal.core` instead, which
its handler checks). A caller without a live staff session is sent to the sign-in page
and back afterwards; a staff member whose role lacks the permission gets the error page
(403) saying which permission it is.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web

from coopnode.catalogues import N_, catalogue, languages
from coopnode.domain.errors import InvalidInput
from coopnode.domain.staff import Permission
from coopnode.http.console.labels import CONSOLE_REFUSALS, PERMISSION_LABELS, ROLE_LABELS
from coopnode.http.console.room import console_menu_key
from coopnode.http.edge import (
    CALLER,
    Caller,
    Handler,
    Machine,
    Route,
    StaffMember,
    admit,
    permission_of,
)
from coopnode.http.errors import ApiError, IdentityRefused, PageError
from coopnode.http.identity_front import set_cookie
from coopnode.http.portal.core import (
    FORM_COOKIE,
    LANG_COOKIE,
    portal_settings_key,
    read_form,
)
from coopnode.http.portal.labels import refusal_text_id

console_templates_key = web.AppKey("console_templates", jinja2.Environment)
# The posted form of a page that changes something, read once by `serve`.
FORM: web.RequestKey[dict[str, str]] = web.RequestKey("console_form")
CSRF_FIELD = "csrf"
HOME = "/console"
SIGN_IN = "/console/sign-in"
STATIC = "/console/static/"


@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, message_id: str) -> str:
    return catalogue(context["lang"]).gettext(message_id)


@jinja2.pass_context
def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str, count: int) -> str:
    return catalogue(context["lang"]).ngettext(singular, plural, count)


def setup_templates(app: web.Application) -> None:
    """Jinja2 over the room's templates (an environment of its own, beside the portal's),
    newstyle gettext in the language of the page, and the label maps as globals."""
    environment = aiohttp_jinja2.setup(
        app,
        app_key=console_templates_key,
        loader=jinja2.PackageLoader("coopnode.http.console", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=_gettext, ngettext=_ngettext, newstyle=True
    )
    environment.filters["yen"] = lambda amount: f"{int(amount):,}"
    environment.filters["jst"] = jst
    environment.globals["languages"] = languages()
    environment.globals["language_names"] = {
        language: catalogue(language).gettext(N_("language.name")) for language in languages()
    }
    environment.globals["role_labels"] = ROLE_LABELS
    environment.globals["permission_labels"] = PERMISSION_LABELS


# Times on the console are the co-op's: Japan's, whatever the server's zone.
_JST = ZoneInfo("Asia/Tokyo")


def jst(at_s: float) -> str:
    """A time in seconds since the epoch as the co-op reads it: 2026-12-07 21:40 (JST)."""
    return datetime.fromtimestamp(at_s, _JST).strftime("%Y-%m-%d %H:%M")


def lang_of(request: web.Request) -> str:
    wanted = request.query.get("lang") or request.cookies.get(LANG_COOKIE, "")
    if wanted in languages():
        return wanted
    return request.app[portal_settings_key].default_lang


def text(request: web.Request, message_id: str, **values: object) -> str:
    return catalogue(lang_of(request)).text(message_id, **values)


def caller_of(request: web.Request) -> Caller | None:
    return request.get(CALLER)


def permissions_of(request: web.Request) -> frozenset[Permission]:
    """What the caller may do: a staff member's role's permissions, a token's scopes."""
    caller = caller_of(request)
    if isinstance(caller, StaffMember | Machine):
        return caller.permissions
    return frozenset()


def _form_token(request: web.Request) -> tuple[str, bool]:
    token = request.cookies.get(FORM_COOKIE, "")
    if len(token) >= 16:
        return token, False
    return secrets.token_urlsafe(24), True


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    here: str | None = None,
) -> web.Response:
    """A page in the frame: the menu the caller's role allows, the language switch, and
    the token the page's forms carry (the staff session's, or before sign-in the form
    token); `here` is where the language switch returns (a GET address)."""
    caller = caller_of(request)
    staff = caller if isinstance(caller, StaffMember) else None
    if staff is not None:
        csrf, new_token = request.cookies.get("cn_csrf_staff", ""), False
    else:
        csrf, new_token = _form_token(request)
    allowed = permissions_of(request)
    menu = [entry for entry in request.app[console_menu_key] if entry.permission in allowed]
    values = {
        "lang": lang_of(request),
        "here": here or (request.path_qs if request.method == "GET" else HOME),
        "csrf": csrf,
        "staff": staff,
        "menu": menu,
        "errors": {},
        "form": {},
        **(context or {}),
    }
    response = aiohttp_jinja2.render_template(
        template, request, values, status=status, app_key=console_templates_key
    )
    response.headers["Cache-Control"] = "no-store"
    if new_token:
        set_cookie(request, response, FORM_COOKIE, csrf)
    if request.query.get("lang") in languages():
        set_cookie(request, response, LANG_COOKIE, request.query["lang"])
    return response


def error_page(request: web.Request, message: str, status: int) -> web.Response:
    return render(request, "frame/error.html", {"message": message}, status=status)


def refusal_text(
    request: web.Request, refusal: ApiError, permission: Permission | None = None
) -> str:
    """A refusal in the staff member's language: the console's words for staff refusals
    (a 403 names the permission the role lacks), the portal's for the rest."""
    if isinstance(refusal, PageError):
        return text(request, refusal.key, **refusal.values)
    if refusal.reason == "forbidden":
        lacking = text(request, PERMISSION_LABELS[permission]) if permission else ""
        return text(request, N_("console.error.forbidden"), permission=lacking)
    key = CONSOLE_REFUSALS.get(refusal.reason) or refusal_text_id(refusal.reason)
    return text(
        request,
        key,
        attempts_left=refusal.attempts_left or 0,
        retry_after_s=refusal.retry_after_s,
    )


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def sign_in_first(request: web.Request) -> web.Response:
    """To the sign-in page, and back to this page (a GET one) afterwards."""
    back = request.path_qs if request.method == "GET" else HOME
    return see_other(f"{SIGN_IN}?next={quote(back, safe='')}")


def serve(route: Route) -> Handler:
    """The page's handler as the app registers it: the form read, the access checked
    (as `Route.serve`, with the form's CSRF token), then the page; a refusal the page
    does not catch answers as the error page."""

    @functools.wraps(route.handler)
    async def page(request: web.Request) -> web.StreamResponse:
        try:
            form = await read_form(request) if route.changes else {}
            request[FORM] = form
            csrf = form.get(CSRF_FIELD, "") if route.changes else None
            request[CALLER] = await admit(
                request, route.access, changes=route.changes, form_csrf=csrf
            )
        except ApiError as refusal:
            if refusal.status == 401:
                return sign_in_first(request)
            lacking = permission_of(route.access)
            return error_page(request, refusal_text(request, refusal, lacking), _status(refusal))
        try:
            return await route.handler(request)
        except IdentityRefused as refusal:
            if refusal.status == 401:
                return sign_in_first(request)
            return error_page(request, refusal_text(request, refusal), refusal.status)
        except PageError as error:
            return error_page(request, refusal_text(request, error), error.page_status)
        except InvalidInput:
            return error_page(request, text(request, N_("error.invalid_input")), 400)

    return page


@web.middleware
async def console_not_found(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An address under /console that is no page (404), or a form's address opened
    directly (405), answers the console's error page, with the way to its home."""
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as error:
        if not request.path.startswith(f"{HOME}/") or request.path.startswith(STATIC):
            raise
        key = N_("error.page_not_found") if error.status == 404 else N_("error.open_directly")
        answer = error_page(request, text(request, key), error.status)
        if isinstance(error, web.HTTPMethodNotAllowed):
            answer.headers["Allow"] = ", ".join(sorted(error.allowed_methods))
        return answer


def _status(refusal: ApiError) -> int:
    return refusal.page_status if isinstance(refusal, PageError) else refusal.status
