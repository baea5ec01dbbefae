"""Staff accounts and machines' API tokens, for administrators (issue 13 §1).

    /console/staff                      every account, its role; a form for a new one
    /console/staff/{id}/role            a new role
    /console/staff/{id}/disable         no more sign-ins; its sessions end now
    /console/tokens                     every token: name, scopes, created, last used
    /console/tokens/{id}/revoke         refused from the next call on

A new account's authenticator enrolment (a QR code and the secret) and a new token are
shown once, on the page that answers the form, and kept nowhere in clear.
"""

from __future__ import annotations

import markupsafe
from aiohttp import web

from coopnode.actors.identity.messages import (
    CreateStaff,
    Done,
    StaffCreated,
    StaffDisable,
    StaffList,
    StaffRoster,
    StaffSetRole,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenRevoke,
    TokenRoster,
)
from coopnode.catalogues import N_
from coopnode.domain.staff import Permission, Role
from coopnode.http.api.identity import qr_svg
from coopnode.http.console.pages import FORM, refusal_text, render, see_other, text
from coopnode.http.console.room import ConsolePart, MenuEntry
from coopnode.http.edge import Route, staff_actor, staff_may
from coopnode.http.errors import IdentityRefused, PageError
from coopnode.http.identity_front import ask

STAFF = "/console/staff"
TOKENS = "/console/tokens"
SCOPE_FIELD = "scope."
# A staff member's name as the identity actor bounds it (`messages.base.Name`).
NAME_CHARS_MAX = 100


async def staff_list(request: web.Request) -> web.Response:
    return await _staff_page(request)


async def _staff_page(
    request: web.Request,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    roster = await ask(request, StaffList())
    if not isinstance(roster, StaffRoster):
        raise TypeError("the staff list answered with something else")
    context = {
        "roster": roster.staff,
        "roles": list(Role),
        "form": form or {"role": Role.COUNTER_CLERK.value},
        "errors": errors or {},
    }
    return render(request, "staff/list.html", context, status=status, here=STAFF)


def _role_of(form: dict[str, str]) -> Role:
    try:
        return Role(form.get("role", ""))
    except ValueError:
        raise PageError(400, N_("console.error.invalid_input")) from None


async def staff_create(request: web.Request) -> web.Response:
    form = request[FORM]
    shown = {"staff_id": form.get("staff_id", ""), "name": form.get("name", "")}
    shown["role"] = form.get("role", "")
    if not shown["name"] or len(shown["name"]) > NAME_CHARS_MAX:
        errors = {"staff": text(request, N_("console.error.invalid_input"))}
        return await _staff_page(request, form=shown, errors=errors, status=400)
    message = CreateStaff(
        actor=staff_actor(request),
        staff_id=shown["staff_id"],
        name=shown["name"],
        password=form.get("password", ""),
        role=_role_of(form),
    )
    try:
        reply = await ask(request, message)
    except IdentityRefused as refusal:
        errors = {"staff": refusal_text(request, refusal)}
        return await _staff_page(request, form=shown, errors=errors, status=refusal.status)
    if not isinstance(reply, StaffCreated):
        raise TypeError("staff creation answered with something else")
    context = {
        "created": reply,
        "role": message.role,
        "qr": markupsafe.Markup(qr_svg(reply.otpauth_uri)),  # noqa: S704  # segno's own SVG.
    }
    return render(request, "staff/created.html", context, status=201, here=STAFF)


async def staff_role(request: web.Request) -> web.Response:
    form = request[FORM]
    staff_id = request.match_info["staff_id"]
    message = StaffSetRole(actor=staff_actor(request), staff_id=staff_id, role=_role_of(form))
    reply = await ask(request, message)
    if not isinstance(reply, Done):
        raise TypeError("the role change answered with something else")
    return see_other(STAFF)


async def staff_disable(request: web.Request) -> web.Response:
    staff_id = request.match_info["staff_id"]
    await ask(request, StaffDisable(actor=staff_actor(request), staff_id=staff_id))
    return see_other(STAFF)


# Tokens -------------------------------------------------------------------------------------


async def _tokens_page(
    request: web.Request,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    roster = await ask(request, TokenList())
    if not isinstance(roster, TokenRoster):
        raise TypeError("the token list answered with something else")
    context = {
        "tokens": roster.tokens,
        "permissions": list(Permission),
        "form": form or {},
        "errors": errors or {},
    }
    return render(request, "staff/tokens.html", context, status=status, here=TOKENS)


async def token_list(request: web.Request) -> web.Response:
    return await _tokens_page(request)


async def token_create(request: web.Request) -> web.Response:
    form = request[FORM]
    scopes = [each for each in Permission if form.get(SCOPE_FIELD + each.value)]
    name = form.get("name", "")
    if not scopes:
        errors = {"scopes": text(request, N_("console.tokens.scopes_needed"))}
        return await _tokens_page(request, form=form, errors=errors, status=400)
    message = TokenCreate(actor=staff_actor(request), name=name, scopes=scopes)
    try:
        reply = await ask(request, message)
    except IdentityRefused as refusal:
        errors = {"name": refusal_text(request, refusal)}
        return await _tokens_page(request, form=form, errors=errors, status=refusal.status)
    if not isinstance(reply, TokenCreated):
        raise TypeError("token creation answered with something else")
    return render(request, "staff/token_created.html", {"created": reply}, status=201, here=TOKENS)


async def token_revoke(request: web.Request) -> web.Response:
    token_id = request.match_info["token_id"]
    await ask(request, TokenRevoke(actor=staff_actor(request), token_id=token_id))
    return see_other(TOKENS)


_STAFF_MANAGE = staff_may(Permission.STAFF_MANAGE)
_TOKENS_MANAGE = staff_may(Permission.TOKENS_MANAGE)

PART = ConsolePart(
    name="staff",
    routes=(
        Route(method="GET", path=STAFF, handler=staff_list, access=_STAFF_MANAGE,
              summary="Staff accounts and their roles"),
        Route(method="POST", path=STAFF, handler=staff_create, access=_STAFF_MANAGE,
              summary="Create a staff account"),
        Route(method="POST", path=f"{STAFF}/{{staff_id}}/role", handler=staff_role,
              access=_STAFF_MANAGE, summary="Change a staff member's role"),
        Route(method="POST", path=f"{STAFF}/{{staff_id}}/disable", handler=staff_disable,
              access=_STAFF_MANAGE, summary="Disable a staff account"),
        Route(method="GET", path=TOKENS, handler=token_list, access=_TOKENS_MANAGE,
              summary="Machines' API tokens"),
        Route(method="POST", path=TOKENS, handler=token_create, access=_TOKENS_MANAGE,
              summary="Make an API token"),
        Route(method="POST", path=f"{TOKENS}/{{token_id}}/revoke", handler=token_revoke,
              access=_TOKENS_MANAGE, summary="Revoke an API token"),
    ),
    menu=(
        MenuEntry(path=STAFF, label=N_("console.menu.staff"), permission=Permission.STAFF_MANAGE),
        MenuEntry(path=TOKENS, label=N_("console.menu.tokens"),
                  permission=Permission.TOKENS_MANAGE),
    ),
)  # fmt: skip
