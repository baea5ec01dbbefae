"""What every portal page shares: rendering, language, forms, CSRF, sessions and flows.

Pages are server-rendered with jinja2 through aiohttp-jinja2 and work without JavaScript;
a small script only keeps a form from being sent twice. Every string comes from the
message catalogues (`coopnode.catalogues`, through Jinja2's i18n extension: `_("id")` in a
template), in Japanese unless the member chose another language with a catalogue
(`?lang=en` or the language link, remembered in the `cn_lang` cookie).

CSRF. A form sent by a signed-in member carries the session's CSRF token, which the
identity engine checks (`CheckSession` with the token). A form sent before sign-in carries
a random token that must equal the one in the `cn_form` cookie (double submit): another
site can make the browser send the cookie but cannot read it to copy it into a form, and
`SameSite=Lax` keeps the cookie off cross-site posts anyway.

Flows (mail change, password, sign-ins) keep their flow id in an `HttpOnly` cookie named
after the flow, never in a URL or a page, so a shared screen or an access log cannot
hand the flow to someone else.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from coopnode.actors.identity.messages import CheckSession, Principal, Refused, SessionIssued
from coopnode.catalogues import JAPANESE, N_, catalogue, languages
from coopnode.domain.errors import InvalidInput
from coopnode.domain.identity import SessionKind
from coopnode.http.errors import FormRefused, IdentityRefused
from coopnode.http.errors import PageError as PageError  # The pages raise it from here.
from coopnode.http.forms import read_urlencoded
from coopnode.http.identity_front import (
    ask,
    session_id_of,
    set_cookie,
    set_session_cookie,
)
from coopnode.http.portal.labels import TEMPLATE_LABELS, refusal_text_id
from coopnode.settings import PortalSettings

LANG_COOKIE = "cn_lang"
FORM_COOKIE = "cn_form"
CSRF_FIELD = "csrf"
IDEMPOTENCY_FIELD = "idem"
portal_settings_key = web.AppKey("portal_settings", PortalSettings)

PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, message_id: str) -> str:
    return catalogue(context["lang"]).gettext(message_id)


@jinja2.pass_context
def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str, count: int) -> str:
    return catalogue(context["lang"]).ngettext(singular, plural, count)


def setup_templates(app: web.Application) -> None:
    """Jinja2 over the room's templates, with the i18n extension (newstyle gettext: `_("id",
    name=value)` fills `%(name)s` and escapes the value) in the language of the page being
    rendered (its `lang`), and the label maps as globals."""
    environment = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("coopnode.http.portal", "templates"),
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
    environment.globals.update(TEMPLATE_LABELS)
    environment.globals["languages"] = languages()
    # Each language's name in itself, for the language links.
    environment.globals["language_names"] = {
        language: catalogue(language).gettext(N_("language.name")) for language in languages()
    }


def lang_of(request: web.Request) -> str:
    """The language of the page: the one asked for, then the one remembered, when a
    catalogue holds it; else the co-op's default."""
    wanted = request.query.get("lang") or request.cookies.get(LANG_COOKIE, "")
    if wanted in languages():
        return wanted
    return request.app[portal_settings_key].default_lang


def text(request: web.Request, message_id: str, **values: object) -> str:
    """A text in the language of the request's page, `%(name)s` filled from `values`."""
    return catalogue(lang_of(request)).text(message_id, **values)


def _form_token(request: web.Request) -> tuple[str, bool]:
    """The double-submit token of this browser, and whether it is new."""
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
    session: SessionKind | None = None,
    here: str | None = None,
) -> web.Response:
    """Render a page with what every page needs; `here` is where the language link returns
    (a GET address: a page answering a POST names the page its flow starts from).
    """
    lang = lang_of(request)
    if session is not None:
        csrf, new_token = request.cookies.get(f"cn_csrf_{session.value}", ""), False
    else:
        csrf, new_token = _form_token(request)
    if here is None:
        here = request.path_qs if request.method == "GET" else "/portal"
    values = {
        "store_name": functools.partial(store_name, request),
        "lang": lang,
        "here": here,
        "csrf": csrf,
        "idem": secrets.token_urlsafe(16),
        "errors": {},
        "form": {},
        **(context or {}),
    }
    response = aiohttp_jinja2.render_template(template, request, values, status=status)
    response.headers["Cache-Control"] = "no-store"
    if new_token:
        set_cookie(request, response, FORM_COOKIE, csrf)
    if request.query.get("lang") in languages():
        set_cookie(request, response, LANG_COOKIE, request.query["lang"])
    return response


def store_name(request: web.Request, store: str) -> str:
    """A store as members know it (its name in the portal settings), never its id: in
    Japanese on a Japanese page and in English on any other (the settings hold those two)."""
    lang = lang_of(request)
    for known in request.app[portal_settings_key].stores:
        if known.store == store:
            return known.name_ja if lang == JAPANESE else known.name_en
    return text(request, N_("store.unknown"))


def home_of(request: web.Request) -> tuple[str, str]:
    """Where an error page leads back to, and the words of that link: the page the visitor
    came through (a guardian to the guardian's page, not the member portal)."""
    path = request.path
    if path.startswith(("/mypage", "/wallet")):
        return "/mypage", N_("common.go_mypage")
    guardian = bool(session_id_of(request, SessionKind.GUARDIAN))
    member = bool(session_id_of(request, SessionKind.PORTAL))
    if path.startswith("/portal/guardian") or (guardian and not member):
        home = "/portal/guardian/home" if guardian else "/portal/guardian"
        return home, N_("common.go_guardian")
    return ("/portal/home" if member else "/portal"), N_("common.go_home")


def error_page(request: web.Request, text_of_error: str, status: int) -> web.Response:
    home, home_key = home_of(request)
    context = {"message": text_of_error, "home": home, "home_key": home_key}
    # The language link shows the same page again; after a form, the way back.
    here = request.path_qs if request.method == "GET" else home
    return render(request, "frame/error.html", context, status=status, here=here)


# Paths that answer machines (JSON, the till channel, metrics): their errors stay JSON.
_MACHINE_PREFIXES = (
    "/api/",
    "/oauth/",
    "/webhooks/",
    "/till/",
    "/healthz",
    "/metrics",
    "/dev/outbox",
)


@web.middleware
async def page_not_found(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """An address that is no page (404), or a form's address opened directly (405), answers
    a page in the member's language with the way back; the API's paths keep their JSON."""
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as error:
        if request.path.startswith(_MACHINE_PREFIXES):
            raise
        key = N_("error.page_not_found") if error.status == 404 else N_("error.open_directly")
        answer = error_page(request, text(request, key), error.status)
        if isinstance(error, web.HTTPMethodNotAllowed):
            answer.headers["Allow"] = ", ".join(sorted(error.allowed_methods))
        return answer


def refusal_text(request: web.Request, refused: Refused) -> str:
    values: dict[str, object] = {
        "attempts_left": refused.attempts_left if refused.attempts_left is not None else 0,
        "retry_after_s": refused.retry_after_s,
    }
    return text(request, refusal_text_id(refused.reason), **values)


def page(handler: PageHandler) -> PageHandler:
    """Answer a refusal or a `PageError` that a handler did not catch with the error page."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except IdentityRefused as refusal:
            if refusal.status == 401:
                raise web.HTTPSeeOther(sign_in_path(request)) from None
            return error_page(request, refusal_text(request, refusal.refused), refusal.status)
        except PageError as error:
            return error_page(request, text(request, error.key, **error.values), error.status)
        except InvalidInput:
            return error_page(request, text(request, N_("error.invalid_input")), 400)

    return wrapped


def sign_in_path(request: web.Request) -> str:
    if request.path.startswith("/mypage"):
        return "/mypage"
    if request.path.startswith("/wallet"):
        return "/wallet/login"
    if request.path.startswith("/portal/guardian"):
        return "/portal/guardian/sign-in"
    return "/portal/sign-in"


async def read_form(request: web.Request) -> dict[str, str]:
    """The posted fields as text (`forms.read_urlencoded`): a form that is not one of this
    node's pages' is refused with the error page and changes nothing."""
    settings = request.app[portal_settings_key]
    try:
        fields = await read_urlencoded(
            request,
            fields_max=settings.form_fields_max,
            body_max_bytes=settings.form_body_max_bytes,
        )
    except FormRefused as refused:
        foreign = refused.reason == "foreign_origin"
        key = N_("error.foreign_origin") if foreign else N_("error.invalid_input")
        raise PageError(refused.status, key) from None
    return {name: value.strip() for name, value in fields}


def check_form_csrf(request: web.Request, form: Mapping[str, str]) -> None:
    """The double-submit check for forms sent before sign-in."""
    cookie = request.cookies.get(FORM_COOKIE, "")
    sent = form.get(CSRF_FIELD, "")
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise PageError(403, N_("error.csrf"))


async def signed_in(
    request: web.Request,
    kinds: tuple[SessionKind, ...],
    form: Mapping[str, str] | None = None,
) -> Principal:
    """The member of a session of one of `kinds`; a form must carry the session's token.

    A browser without a live session is sent to the sign-in page; a form without the
    right token gets the CSRF error page (and changes nothing).
    """
    for kind in kinds:
        session_id = session_id_of(request, kind)
        if not session_id:
            continue
        csrf = None if form is None else form.get(CSRF_FIELD, "")
        try:
            reply = await ask(
                request, CheckSession(kinds=(kind,), session_id=session_id, csrf_token=csrf)
            )
        except IdentityRefused as refusal:
            if refusal.status == 403:
                raise PageError(403, N_("error.csrf")) from None
            continue
        if isinstance(reply, Principal):
            return reply
    raise web.HTTPSeeOther(sign_in_path(request))


def open_session(request: web.Request, response: web.StreamResponse, issued: SessionIssued) -> None:
    """Set the session cookie and, beside it, the token its forms carry."""
    if not isinstance(response, web.Response):
        raise TypeError("a session is opened on a plain response")
    set_session_cookie(request, response, issued)
    set_cookie(request, response, f"cn_csrf_{issued.kind.value}", issued.csrf_token)


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


# Flows ------------------------------------------------------------------------------------


def flow_cookie(name: str) -> str:
    return f"cn_flow_{name}"


def flow_of(request: web.Request, name: str) -> str:
    return request.cookies.get(flow_cookie(name), "")


def keep_flow(request: web.Request, response: web.StreamResponse, name: str, flow_id: str) -> None:
    set_cookie(request, response, flow_cookie(name), flow_id)


def end_flow(response: web.StreamResponse, name: str) -> None:
    response.del_cookie(flow_cookie(name), path="/")


def require_flow(request: web.Request, name: str) -> str:
    flow_id = flow_of(request, name)
    if not flow_id:
        raise PageError(409, N_("error.flow_expired"))
    return flow_id


def is_local_path(location: str) -> bool:
    """Whether a redirect target taken from input stays on this node: one "/" first, never
    "//" (another host), no backslash (which browsers read as "/"), and no control character
    or whitespace (browsers drop a tab or a newline, so a slash, a tab and a slash lead to
    another host).
    """
    if not location.startswith("/") or location.startswith("//"):
        return False
    return not any(char == "\\" or char.isspace() or not char.isprintable() for char in location)


def safe_next(location: str, default: str) -> str:
    """Only a path on this node: never another site (an open redirect). A target with a
    line break is refused outright: it could only come from a forged link.
    """
    if "\r" in location or "\n" in location:
        raise web.HTTPBadRequest(text="the return address is not a path on this node")
    return location if is_local_path(location) else default


async def language(request: web.Request) -> web.Response:
    """The language link: remember the choice and go back to the page it was pressed on."""
    lang = request.match_info["lang"]
    if lang not in languages():
        raise web.HTTPNotFound()
    response = see_other(safe_next(request.query.get("next", ""), "/portal"))
    set_cookie(request, response, LANG_COOKIE, lang)
    return response
