"""E-money registration (FLOWS §5) and the e-money pages the my-page shows.

Registration is the OAuth 2.0 authorization-code grant with PKCE of DESIGN.md: the
my-page (client `mypage`) sends the member to the wallet's consent screen; the member
signs in to the wallet with a one-time code, allows access (アクセスを許可する), and the
my-page redeems the code for an access token, kept in an `HttpOnly` cookie. Every e-money
page then needs both the my-page session and that token, introspected with the scope the
page needs (`wallet:read` to look, `wallet:pay` to move money, charge or suspend), so a
revoked grant locks the pages at once.

The protocol runs in the identity actor and is called in-process, as the JSON endpoints
of `http.oauth` call it; the client's registered redirect URI names the callback path,
which this node serves itself, so the browser is sent to that path on this node.

Long: the e-money pages share the member's OAuth token and its scopes.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from coopnode.actors.identity.messages import (
    ConsentInfo,
    FlowAnswer,
    FlowStep,
    GetProfile,
    OAuthAnswer,
    OAuthConsent,
    OAuthDecide,
    OAuthHttp,
    OAuthIntrospect,
    OAuthToken,
    Refused,
    SessionIssued,
    TokenInfo,
    WalletLoginStart,
)
from coopnode.catalogues import N_
from coopnode.domain.bounds import Cursor, parse_int
from coopnode.domain.errors import InvalidInput
from coopnode.domain.identity import FlowKind, SessionKind, WalletScope
from coopnode.domain.messages import (
    AmountYen,
    Booked,
    Declined,
    GetHistory,
    GetWallet,
    HistoryPage,
    Move,
    StatusChanged,
    Suspend,
    WalletView,
)
from coopnode.domain.money import MOVE_TARGETS, Purse
from coopnode.domain.rules import CoopRules
from coopnode.http.api.konbini import pending_konbini
from coopnode.http.api.wallet import set_member_status, wallet_client_key
from coopnode.http.errors import ApiError, IdentityRefused
from coopnode.http.identity_front import ask, session_id_of, set_cookie
from coopnode.http.portal.core import (
    IDEMPOTENCY_FIELD,
    PageError,
    check_form_csrf,
    end_flow,
    keep_flow,
    lang_of,
    open_session,
    page,
    portal_settings_key,
    read_form,
    refusal_text,
    render,
    require_flow,
    safe_next,
    see_other,
    signed_in,
    text,
)
from coopnode.http.portal.flows import try_ask
from coopnode.http.portal.labels import refusal_text_id
from coopnode.settings import Settings

SCOPE_READ = WalletScope.READ.value
SCOPE_PAY = WalletScope.PAY.value
CLIENT_ID = "mypage"
TOKEN_COOKIE = "cn_wallet_token"  # noqa: S105  # The cookie's name.
OAUTH_COOKIE = "cn_oauth"
WALLET = "wallet"
settings_key = web.AppKey("settings", Settings)
_PURSES_SHOWN = (Purse.BASE, Purse.CAFETERIA, Purse.TEXTBOOK, Purse.MEAL, Purse.POINTS)


def redirect_uri(request: web.Request) -> str:
    return request.app[settings_key].identity.oauth_clients[CLIENT_ID].redirect_uris[0]


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


def _oauth_http(request: web.Request, method: str, path: str, **parts: Any) -> OAuthHttp:
    uri = str(request.url.with_path(path).with_query(None))
    return OAuthHttp(method=method, uri=uri, **parts)


class WalletAccess(msgspec.Struct, frozen=True):
    member_no: str
    csrf: str


async def wallet_member(
    request: web.Request, scope: str, form: dict[str, str] | None = None
) -> WalletAccess:
    """The my-page member whose wallet token grants `scope`; otherwise registration."""
    who = await signed_in(request, (SessionKind.MYPAGE,), form)
    token = request.cookies.get(TOKEN_COOKIE, "")
    if not token:
        raise web.HTTPSeeOther("/mypage/home")
    try:
        info = await ask(request, OAuthIntrospect(authorization=f"Bearer {token}", scope=scope))
    except IdentityRefused as refusal:
        if refusal.status == 403:
            raise PageError(403, N_("error.wallet_not_connected")) from None
        raise web.HTTPSeeOther("/mypage/home") from None
    if not isinstance(info, TokenInfo) or info.member_no != who.subject:
        raise web.HTTPSeeOther("/mypage/home")
    return WalletAccess(member_no=who.subject, csrf=request.cookies.get("cn_csrf_mypage", ""))


async def _token_valid(request: web.Request, member_no: str) -> bool:
    token = request.cookies.get(TOKEN_COOKIE, "")
    if not token:
        return False
    reply = await try_ask(
        request, OAuthIntrospect(authorization=f"Bearer {token}", scope=SCOPE_READ)
    )
    return isinstance(reply, TokenInfo) and reply.member_no == member_no


# My page home and registration ------------------------------------------------------------


@page
async def mypage_home(request: web.Request) -> web.Response:
    who = await signed_in(request, (SessionKind.MYPAGE,))
    if await _token_valid(request, who.subject):
        raise web.HTTPSeeOther("/mypage/emoney")
    profile = await ask(request, GetProfile(member_no=who.subject))
    return render(
        request, "emoney/mypage_home.html", {"profile": profile}, session=SessionKind.MYPAGE
    )


@page
async def wallet_connect(request: web.Request) -> web.Response:
    """Start the grant: PKCE verifier and state in a cookie, then the consent screen."""
    await signed_in(request, (SessionKind.MYPAGE,))
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(16)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": redirect_uri(request),
            "scope": f"{SCOPE_READ} {SCOPE_PAY}",
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    response = see_other(f"/wallet/authorize?{query}")
    set_cookie(
        request, response, OAUTH_COOKIE, f"{state}.{verifier}", path="/mypage/wallet", max_age=600
    )
    return response


@page
async def wallet_authorize(request: web.Request) -> web.Response:
    """The consent screen: the client and what it asks for (§5 step 3)."""
    if not session_id_of(request, SessionKind.WALLET):
        raise web.HTTPSeeOther("/wallet/login?" + urlencode({"next": request.path_qs}))
    who = await signed_in(request, (SessionKind.WALLET,))
    http = _oauth_http(request, "GET", "/oauth/authorize", query=list(request.query.items()))
    consent = await ask(request, OAuthConsent(member_no=who.subject, http=http))
    if not isinstance(consent, ConsentInfo):
        raise TypeError("the consent screen answered with something else")
    context = {"consent": consent, "action": request.path_qs}
    return render(request, "emoney/wallet_consent.html", context, session=SessionKind.WALLET)


@page
async def wallet_decide(request: web.Request) -> web.Response:
    form = await read_form(request)
    who = await signed_in(request, (SessionKind.WALLET,), form)
    http = _oauth_http(request, "POST", "/oauth/authorize", query=list(request.query.items()))
    allow = form.get("decision") == "allow"
    reply = await ask(request, OAuthDecide(member_no=who.subject, http=http, allow=allow))
    if not isinstance(reply, OAuthAnswer):
        raise TypeError("the decision answered with something else")
    location = dict((name.lower(), value) for name, value in reply.headers).get("location", "")
    parts = urlsplit(location)
    if reply.status != 302 or not parts.path:
        raise PageError(400, N_("error.invalid_input"))
    # The registered redirect URI is this node's own callback (see the module's docstring).
    return see_other(f"{parts.path}?{parts.query}")


@page
async def wallet_callback(request: web.Request) -> web.Response:
    """Redeem the code with the PKCE verifier; keep the token for the e-money pages."""
    await signed_in(request, (SessionKind.MYPAGE,))
    saved = request.cookies.get(OAUTH_COOKIE, "")
    state, _, verifier = saved.partition(".")
    if request.query.get("error") or not state or request.query.get("state") != state:
        response = render(request, "emoney/mypage_denied.html", session=SessionKind.MYPAGE)
        response.del_cookie(OAUTH_COOKIE, path="/mypage/wallet")
        return response
    form = [
        ("grant_type", "authorization_code"),
        ("code", request.query.get("code", "")),
        ("redirect_uri", redirect_uri(request)),
        ("client_id", CLIENT_ID),
        ("code_verifier", verifier),
    ]
    reply = await ask(
        request, OAuthToken(http=_oauth_http(request, "POST", "/oauth/token", form=form))
    )
    if not isinstance(reply, OAuthAnswer) or reply.status != 200:
        raise PageError(400, N_("error.wallet_not_connected"))
    token = msgspec.json.decode(reply.body)["access_token"]
    response = see_other("/mypage/emoney?registered=1")
    set_cookie(request, response, TOKEN_COOKIE, token)
    response.del_cookie(OAUTH_COOKIE, path="/mypage/wallet")
    return response


# Wallet sign-in (§5 steps 1-2) ------------------------------------------------------------


@page
async def wallet_login_form(request: web.Request) -> web.Response:
    context = {"form": {"next": request.query.get("next", "")}}
    return render(request, "emoney/wallet_login.html", context)


@page
async def wallet_login(request: web.Request) -> web.Response:
    form = await read_form(request)
    check_form_csrf(request, form)
    identifier = form.get("identifier", "")
    reply = await try_ask(request, WalletLoginStart(identifier=identifier))
    if isinstance(reply, Refused) or not identifier:
        message = (
            refusal_text(request, reply)
            if isinstance(reply, Refused)
            else text(request, N_("error.required"))
        )
        return render(
            request,
            "emoney/wallet_login.html",
            {"form": form, "errors": {"identifier": message}},
            status=400,
        )
    if not isinstance(reply, FlowAnswer):
        raise TypeError("the wallet sign-in answered with something else")
    shown = reply.masked_mail or reply.masked_phone or identifier
    context = {"form": {"next": form.get("next", "")}, "to": shown}
    response = render(request, "emoney/wallet_code.html", context, here="/wallet/login")
    keep_flow(request, response, WALLET, reply.flow_id)
    return response


@page
async def wallet_verify(request: web.Request) -> web.Response:
    form = await read_form(request)
    check_form_csrf(request, form)
    flow_id = require_flow(request, WALLET)
    step = FlowStep(
        kind=FlowKind.WALLET_LOGIN,
        step="verify",
        flow_id=flow_id,
        code=form.get("code", ""),
        old_session_id=session_id_of(request, SessionKind.WALLET),
    )
    reply = await try_ask(request, step)
    if isinstance(reply, Refused):
        context = {
            "form": {"next": form.get("next", "")},
            "to": "",
            "errors": {"code": refusal_text(request, reply)},
        }
        return render(request, "emoney/wallet_code.html", context, status=400, here="/wallet/login")
    if not isinstance(reply, SessionIssued):
        raise TypeError("the wallet code answered with something else")
    response = see_other(safe_next(form.get("next", ""), "/mypage/home"))
    open_session(request, response, reply)
    end_flow(response, WALLET)
    return response


# E-money pages --------------------------------------------------------------------------


def declined_text(request: web.Request, declined: Declined, rules: CoopRules, purse: Purse) -> str:
    """A wallet's refusal in the member's words, with the co-op's bounds filled in."""
    yen = functools.partial(text, request, N_("common.yen"))
    return text(
        request,
        refusal_text_id(declined.reason.value),
        limit=yen(amount=f"{rules.purse_balance_max_yen[purse]:,}"),
        minimum=yen(amount=f"{rules.charge_min_yen:,}"),
        maximum=yen(amount=f"{rules.charge_max_yen:,}"),
    )


def coop_rules_of(request: web.Request, coop: str) -> CoopRules:
    coops = request.app[settings_key].coops
    rules = coops.get(coop)
    if rules is None:
        raise PageError(500, N_("error.unavailable"))
    return rules


async def wallet_view(request: web.Request, member_no: str) -> WalletView:
    result = await request.app[wallet_client_key].submit(GetWallet(member_no=member_no))
    if isinstance(result, Declined):
        raise PageError(
            503 if result.reason.value in ("overloaded", "unavailable") else 404,
            f"error.{result.reason.value}",
        )
    if not isinstance(result, WalletView):
        raise TypeError("the wallet answered with something else")
    return result


def emoney_render(
    request: web.Request,
    template: str,
    access: WalletAccess,
    menu: str,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> web.Response:
    values = {"menu": menu, "purses": _PURSES_SHOWN, **context}
    return render(
        request,
        template,
        values,
        status=status,
        session=SessionKind.MYPAGE,
        here=f"/mypage/emoney{'' if menu == 'home' else '/' + menu}",
    )


def local_time(request: web.Request, at_s: float, timezone: str = "Asia/Tokyo") -> str:
    moment = datetime.datetime.fromtimestamp(at_s, ZoneInfo(timezone))
    return moment.strftime("%Y-%m-%d %H:%M")


@page
async def emoney_home(request: web.Request) -> web.Response:
    access = await wallet_member(request, SCOPE_READ)
    view = await wallet_view(request, access.member_no)
    context = {
        "view": view,
        "registered": request.query.get("registered") == "1",
        "charged": request.query.get("charged") == "1",
        "pending": await pending_konbini(request, access.member_no),
    }
    return emoney_render(request, "emoney/home.html", access, "home", context)


def _months(now_s: float, count: int = 12) -> list[str]:
    today = datetime.date.fromtimestamp(now_s)
    year, month = today.year, today.month
    months = []
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return months


@page
async def emoney_history(request: web.Request) -> web.Response:
    access = await wallet_member(request, SCOPE_READ)
    month = request.query.get("month", "")
    before = parse_int(request.query.get("before", "") or "0", Cursor, "before")
    try:
        op = GetHistory(
            member_no=access.member_no,
            before_seq=before,
            month=month,
            limit=request.app[portal_settings_key].history_page_lines,
        )
        op = msgspec.convert(msgspec.to_builtins(op), GetHistory)
    except msgspec.ValidationError:
        raise PageError(400, N_("error.invalid_input")) from None
    result = await request.app[wallet_client_key].submit(op)
    if not isinstance(result, HistoryPage):
        raise PageError(503, N_("error.unavailable"))
    lines = [(line, local_time(request, line.at_ms / 1000)) for line in result.lines]
    context = {
        "lines": lines,
        "month": month,
        "months": _months(time.time()),
        "next_before": result.next_before_seq,
        "before": before,
    }
    return emoney_render(request, "emoney/history.html", access, "history", context)


@page
async def emoney_move_form(request: web.Request) -> web.Response:
    access = await wallet_member(request, SCOPE_PAY)
    view = await wallet_view(request, access.member_no)
    return emoney_render(
        request, "emoney/move.html", access, "move", {"view": view, "targets": _targets()}
    )


def _targets() -> list[Purse]:
    return [purse for purse in (Purse.CAFETERIA, Purse.TEXTBOOK) if purse in MOVE_TARGETS]


@page
async def emoney_move(request: web.Request) -> web.Response:
    form = await read_form(request)
    access = await wallet_member(request, SCOPE_PAY, form)
    errors: dict[str, str] = {}
    target = form.get("to_purse", "")
    if target not in [purse.value for purse in _targets()]:
        errors["to_purse"] = text(request, N_("error.purse_not_allowed"))
    try:
        amount = parse_int(form.get("amount_yen", ""), AmountYen, "amount_yen")
    except InvalidInput:
        amount = 0
        errors["amount_yen"] = text(request, N_("error.invalid_input"))
    done = ""
    if not errors:
        key = f"move:{form.get(IDEMPOTENCY_FIELD, '')[:60]}"
        op = Move(
            key=key,
            member_no=access.member_no,
            from_purse=Purse.BASE,
            to_purse=Purse(target),
            amount_yen=amount,
        )
        result = await request.app[wallet_client_key].submit(op)
        if isinstance(result, Declined):
            rules = coop_rules_of(request, (await wallet_view(request, access.member_no)).coop)
            errors["amount_yen"] = declined_text(request, result, rules, Purse(target))
        elif isinstance(result, Booked):
            done = text(
                request,
                N_("move.done"),
                amount=text(request, N_("common.yen"), amount=f"{amount:,}"),
                purse=text(request, f"purse.{target}"),
            )
    view = await wallet_view(request, access.member_no)
    context = {
        "view": view,
        "targets": _targets(),
        "form": form if errors else {},
        "errors": errors,
        "done": done,
    }
    return emoney_render(
        request, "emoney/move.html", access, "move", context, status=400 if errors else 200
    )


@page
async def emoney_notices(request: web.Request) -> web.Response:
    access = await wallet_member(request, SCOPE_READ)
    lang = lang_of(request)
    notices = [
        (
            notice.date,
            notice.title_ja if lang == "ja" else notice.title_en,
            notice.body_ja if lang == "ja" else notice.body_en,
        )
        for notice in request.app[portal_settings_key].notices
    ]
    return emoney_render(request, "emoney/notices.html", access, "notices", {"notices": notices})


@page
async def emoney_suspend_form(request: web.Request) -> web.Response:
    access = await wallet_member(request, SCOPE_PAY)
    view = await wallet_view(request, access.member_no)
    context = {"view": view, "done": False, "confirm": False}
    return emoney_render(request, "emoney/suspend.html", access, "suspend", context)


@page
async def emoney_suspend(request: web.Request) -> web.Response:
    """Suspend the account, in two steps: the first post asks the member to confirm
    (what stops, and that resuming needs the counter), the second suspends."""
    form = await read_form(request)
    access = await wallet_member(request, SCOPE_PAY, form)
    if form.get("confirm", "") != "yes":
        view = await wallet_view(request, access.member_no)
        context = {"view": view, "done": False, "confirm": True}
        return emoney_render(request, "emoney/suspend.html", access, "suspend", context)
    try:
        result = await set_member_status(request.app, Suspend(member_no=access.member_no))
    except ApiError:
        raise PageError(503, N_("error.unavailable")) from None
    if not isinstance(result, StatusChanged):
        raise PageError(503, N_("error.unavailable"))
    view = await wallet_view(request, access.member_no)
    context = {"view": view, "done": True, "confirm": False}
    return emoney_render(request, "emoney/suspend.html", access, "suspend", context)


def wallet_routes() -> list[web.RouteDef]:
    return [
        web.get("/mypage/home", mypage_home),
        web.get("/mypage/wallet/connect", wallet_connect),
        web.get("/mypage/wallet/callback", wallet_callback),
        web.get("/wallet/authorize", wallet_authorize),
        web.post("/wallet/authorize", wallet_decide),
        web.get("/wallet/login", wallet_login_form),
        web.post("/wallet/login", wallet_login),
        web.post("/wallet/login/verify", wallet_verify),
        web.get("/mypage/emoney", emoney_home),
        web.get("/mypage/emoney/history", emoney_history),
        web.get("/mypage/emoney/move", emoney_move_form),
        web.post("/mypage/emoney/move", emoney_move),
        web.get("/mypage/emoney/notices", emoney_notices),
        web.get("/mypage/emoney/suspend", emoney_suspend_form),
        web.post("/mypage/emoney/suspend", emoney_suspend),
    ]
