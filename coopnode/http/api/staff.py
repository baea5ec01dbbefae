"""The staff-access JSON API (issue 13 §1): the first administrator, staff accounts'
roles and disabling, and machines' scoped API tokens.

    POST /api/v1/staff/bootstrap                 the staff token's one use: the first
                                                 administrator (and optionally a first
                                                 machine token); 409 once one exists
    GET  /api/v1/staff/accounts                  every staff account and its role
    POST /api/v1/staff/accounts/{staff_id}/role  a new role
    POST /api/v1/staff/accounts/{staff_id}/disable  sign-in refused, sessions ended
    GET  /api/v1/staff/tokens                    tokens: name, scopes, created, last used
    POST /api/v1/staff/tokens                    a new token, shown in this answer only
    POST /api/v1/staff/tokens/{token_id}/revoke  refused from the next call on

Creating a staff account is `POST /api/v1/staff/accounts` in `identity.py`, beside the
sign-in it leads to. The console's pages (`http.console.staff`) ask the same messages.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from coopnode.actors.identity.messages import (
    BootstrapAdministrator,
    Bootstrapped,
    Done,
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
from coopnode.domain.staff import Permission, Role
from coopnode.http.api.identity import StaffCreatedAnswer, qr_svg
from coopnode.http.edge import (
    STAFF_TOKEN,
    Body,
    Route,
    operation,
    read_body,
    staff_actor,
    staff_may,
)
from coopnode.http.identity_front import ask, json_response

StaffIdText = Annotated[str, msgspec.Meta(max_length=64)]
TokenName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
TokenIdText = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]


class BootstrapBody(Body, frozen=True):
    staff_id: StaffIdText
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]
    # A first machine token, made with the administrator (the load harness's): optional.
    token_name: Annotated[str, msgspec.Meta(max_length=64)] = ""
    token_scopes: list[Permission] = msgspec.field(default_factory=list)


class TokenAnswer(Body, frozen=True):
    """A new token: `token` is shown in this answer only; the node keeps its digest."""

    token_id: str
    name: str
    scopes: list[Permission]
    token: str


class BootstrapAnswer(Body, frozen=True):
    administrator: StaffCreatedAnswer
    token: TokenAnswer | None = None


class RoleBody(Body, frozen=True):
    role: Role


class TokenBody(Body, frozen=True):
    name: TokenName
    scopes: Annotated[list[Permission], msgspec.Meta(min_length=1)]


def token_answer(created: TokenCreated) -> TokenAnswer:
    return TokenAnswer(
        token_id=created.token_id, name=created.name, scopes=created.scopes, token=created.token
    )


async def bootstrap(request: web.Request) -> web.Response:
    body = await read_body(request, BootstrapBody)
    message = BootstrapAdministrator(
        actor=staff_actor(request),
        staff_id=body.staff_id,
        name=body.name,
        password=body.password,
        token_name=body.token_name,
        token_scopes=body.token_scopes,
    )
    reply = await ask(request, message)
    if not isinstance(reply, Bootstrapped):
        raise TypeError("the bootstrap answered with something else")
    staff = reply.staff
    administrator = StaffCreatedAnswer(
        staff_id=staff.staff_id,
        otpauth_uri=staff.otpauth_uri,
        secret=staff.secret,
        qr_svg=qr_svg(staff.otpauth_uri),
    )
    token = token_answer(reply.token) if reply.token is not None else None
    return json_response(BootstrapAnswer(administrator=administrator, token=token), 201)


async def list_staff(request: web.Request) -> web.Response:
    return json_response(await ask(request, StaffList()))


def _staff_id_of(request: web.Request) -> str:
    return operation({"staff_id": request.match_info["staff_id"]}, _StaffIdPath).staff_id


class _StaffIdPath(msgspec.Struct, frozen=True):
    staff_id: StaffIdText


class _TokenIdPath(msgspec.Struct, frozen=True):
    token_id: TokenIdText


async def set_role(request: web.Request) -> web.Response:
    body = await read_body(request, RoleBody)
    message = StaffSetRole(
        actor=staff_actor(request), staff_id=_staff_id_of(request), role=body.role
    )
    return json_response(await ask(request, message))


async def disable_staff(request: web.Request) -> web.Response:
    message = StaffDisable(actor=staff_actor(request), staff_id=_staff_id_of(request))
    return json_response(await ask(request, message))


async def list_tokens(request: web.Request) -> web.Response:
    return json_response(await ask(request, TokenList()))


async def create_token(request: web.Request) -> web.Response:
    body = await read_body(request, TokenBody)
    message = TokenCreate(actor=staff_actor(request), name=body.name, scopes=body.scopes)
    reply = await ask(request, message)
    if not isinstance(reply, TokenCreated):
        raise TypeError("token creation answered with something else")
    return json_response(token_answer(reply), 201)


async def revoke_token(request: web.Request) -> web.Response:
    token_id = operation({"token_id": request.match_info["token_id"]}, _TokenIdPath).token_id
    message = TokenRevoke(actor=staff_actor(request), token_id=token_id)
    return json_response(await ask(request, message))


_ACCOUNT = "/api/v1/staff/accounts/{staff_id}"
_STAFF_MANAGE = staff_may(Permission.STAFF_MANAGE)
_TOKENS_MANAGE = staff_may(Permission.TOKENS_MANAGE)

STAFF_ACCESS_ROUTES: tuple[Route, ...] = (
    Route(method="POST", path="/api/v1/staff/bootstrap", handler=bootstrap,
          request=BootstrapBody, response=BootstrapAnswer, status=201, access=STAFF_TOKEN,
          summary="The staff token's one use: the first administrator (409 once one exists)"),
    Route(method="GET", path="/api/v1/staff/accounts", handler=list_staff,
          response=StaffRoster, access=_STAFF_MANAGE,
          summary="Every staff account: its role, and whether it is disabled"),
    Route(method="POST", path=f"{_ACCOUNT}/role", handler=set_role, request=RoleBody,
          response=Done, access=_STAFF_MANAGE,
          summary="Change a staff member's role (audited)"),
    Route(method="POST", path=f"{_ACCOUNT}/disable", handler=disable_staff, response=Done,
          access=_STAFF_MANAGE,
          summary="Disable a staff account: no more sign-ins, its sessions end (audited)"),
    Route(method="GET", path="/api/v1/staff/tokens", handler=list_tokens,
          response=TokenRoster, access=_TOKENS_MANAGE,
          summary="Machines' API tokens: name, scopes, created, last used, revoked"),
    Route(method="POST", path="/api/v1/staff/tokens", handler=create_token,
          request=TokenBody, response=TokenAnswer, status=201, access=_TOKENS_MANAGE,
          summary="Make a scoped API token for a machine; the token is shown only here"),
    Route(method="POST", path="/api/v1/staff/tokens/{token_id}/revoke", handler=revoke_token,
          response=Done, access=_TOKENS_MANAGE,
          summary="Revoke an API token: refused from the next call on (audited)"),
)  # fmt: skip
