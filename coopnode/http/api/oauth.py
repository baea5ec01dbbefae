"""The wallet's OAuth 2.0 endpoints (FLOWS §5) and the member-facing wallet they guard.

    GET  /oauth/authorize    the consent screen's content, for a member signed in to the
                             wallet (a `cn_wallet` session): the client and its scopes
    POST /oauth/authorize    the member's decision; answers 302 to the client's
                             redirect URI with a code (or `error=access_denied`)
    POST /oauth/token        RFC 6749 §4.1.3 with PKCE (RFC 7636), form-encoded
    POST /oauth/revoke       RFC 7009

The protocol itself runs in the identity actor (authlib, see `actors/identity/oauth.py`).
The member's wallet is then reached with a bearer token whose scope the edge checks on
every request before the handler runs (`edge.OAuthScope`): `wallet:read` for the
balances and the history, `wallet:pay` for moving money between purses and for
suspending the account (アカウント停止).
"""

from __future__ import annotations

import functools
from typing import Literal

import msgspec
from aiohttp import web

from coopnode.actors.identity.messages import (
    ConsentInfo,
    OAuthAnswer,
    OAuthConsent,
    OAuthDecide,
    OAuthHttp,
    OAuthRevoke,
    OAuthToken,
)
from coopnode.catalogues import ENGLISH, catalogue
from coopnode.catalogues.labels import WALLET_SCOPE_LABELS
from coopnode.domain.identity import SessionKind, WalletScope
from coopnode.domain.messages import (
    Booked,
    GetHistory,
    GetWallet,
    HistoryPage,
    HistoryQuery,
    Move,
    StatusChanged,
    Suspend,
    WalletView,
)
from coopnode.http.api.wallet import (
    MoveRequest,
    answer,
    set_member_status,
    wallet_client_key,
)
from coopnode.http.edge import (
    PUBLIC,
    Handler,
    OAuthScope,
    Route,
    calling_member,
    read_body,
    read_query,
    sessions,
)
from coopnode.http.errors import ApiError, retry_after
from coopnode.http.forms import read_urlencoded
from coopnode.http.identity_front import ask, json_response

# The document describes each scope in the catalogues' English, as the consent screen does.
SCOPE_READ = OAuthScope(
    name=WalletScope.READ,
    description=catalogue(ENGLISH).text(WALLET_SCOPE_LABELS[WalletScope.READ]),
)
SCOPE_PAY = OAuthScope(
    name=WalletScope.PAY,
    description=catalogue(ENGLISH).text(WALLET_SCOPE_LABELS[WalletScope.PAY]),
)
# The consent screen and the member's decision: a wallet session, and its CSRF token.
_WALLET_SESSION = sessions(SessionKind.WALLET)
# The largest form the token and revocation endpoints read; theirs are a few hundred bytes.
_FORM_FIELDS_MAX = 16
# A code, a verifier and a redirect URI are a few hundred bytes; a token form never more.
_FORM_BODY_MAX_BYTES = 8192


class DecisionBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    decision: Literal["allow", "deny"]


class TokenAnswer(msgspec.Struct, frozen=True):
    """RFC 6749 §5.1, for the OpenAPI document."""

    access_token: str
    token_type: str
    expires_in: int
    scope: str


class TokenForm(msgspec.Struct, frozen=True):
    """RFC 6749 §4.1.3 with RFC 7636's verifier: the token endpoint's form, for the
    OpenAPI document (authlib reads the form itself)."""

    grant_type: Literal["authorization_code"]
    code: str
    redirect_uri: str
    client_id: str
    code_verifier: str


class RevokeForm(msgspec.Struct, frozen=True):
    """RFC 7009 §2.1: the revocation endpoint's form, for the OpenAPI document."""

    token: str
    client_id: str
    token_type_hint: str = ""


class Revoked(msgspec.Struct, frozen=True):
    """RFC 7009 §2.2: a revocation answers 200 with an empty object, known token or not."""


class OAuthError(msgspec.Struct, frozen=True, omit_defaults=True):
    """RFC 6749 §5.2: how the token and revocation endpoints refuse, whatever the cause
    (a malformed form, a busy node), so that an OAuth client reads one shape."""

    error: str
    error_description: str = ""


def answers_oauth_errors(handler: Handler) -> Handler:
    """Answer the node's own refusals (an unread form, a busy node) in RFC 6749 §5.2's
    shape, as authlib answers its."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as refused:
            body = OAuthError(error=refused.reason, error_description=refused.message)
            return web.Response(
                status=refused.status,
                body=msgspec.json.encode(body),
                content_type="application/json",
                headers={"Cache-Control": "no-store", **retry_after(refused)},
            )

    return wrapped


def _oauth_http(request: web.Request, form: list[tuple[str, str]]) -> OAuthHttp:
    return OAuthHttp(
        method=request.method,
        uri=str(request.url),
        query=list(request.query.items()),
        form=form,
        authorization=request.headers.get("Authorization", ""),
    )


async def _form(request: web.Request) -> list[tuple[str, str]]:
    return await read_urlencoded(
        request, fields_max=_FORM_FIELDS_MAX, body_max_bytes=_FORM_BODY_MAX_BYTES
    )


def _oauth_response(reply: object) -> web.Response:
    if not isinstance(reply, OAuthAnswer):
        raise TypeError("the OAuth server answered with something else")
    headers = {name: value for name, value in reply.headers if name.lower() != "content-type"}
    content_type = next(
        (value for name, value in reply.headers if name.lower() == "content-type"), None
    )
    # Tokens and codes must not be kept by caches (RFC 6749 §5.1).
    headers.setdefault("Cache-Control", "no-store")
    response = web.Response(status=reply.status, body=reply.body, headers=headers)
    if content_type is not None:
        response.content_type = content_type.split(";")[0]
    return response


async def authorize_consent(request: web.Request) -> web.Response:
    consent = OAuthConsent(member_no=calling_member(request), http=_oauth_http(request, []))
    return json_response(await ask(request, consent))


async def authorize_decide(request: web.Request) -> web.Response:
    body = await read_body(request, DecisionBody)
    decide = OAuthDecide(
        member_no=calling_member(request),
        http=_oauth_http(request, []),
        allow=body.decision == "allow",
    )
    return _oauth_response(await ask(request, decide))


@answers_oauth_errors
async def token(request: web.Request) -> web.Response:
    form = await _form(request)
    return _oauth_response(await ask(request, OAuthToken(http=_oauth_http(request, form))))


@answers_oauth_errors
async def revoke(request: web.Request) -> web.Response:
    form = await _form(request)
    return _oauth_response(await ask(request, OAuthRevoke(http=_oauth_http(request, form))))


async def member_wallet(request: web.Request) -> web.Response:
    op = GetWallet(member_no=calling_member(request))
    return answer(await request.app[wallet_client_key].submit(op))


async def member_history(request: web.Request) -> web.Response:
    query = read_query(request, HistoryQuery)
    op = GetHistory(member_no=calling_member(request), **msgspec.structs.asdict(query))
    return answer(await request.app[wallet_client_key].submit(op))


async def member_move(request: web.Request) -> web.Response:
    body = await read_body(request, MoveRequest)
    op = Move(member_no=calling_member(request), **msgspec.structs.asdict(body))
    return answer(await request.app[wallet_client_key].submit(op))


async def member_suspend(request: web.Request) -> web.Response:
    """アカウント停止: the member stops the wallet; only the co-op counter resumes it."""
    op = Suspend(member_no=calling_member(request))
    return answer(await set_member_status(request.app, op))


OAUTH_ROUTES: tuple[Route, ...] = (
    Route(method="GET", path="/oauth/authorize", handler=authorize_consent, response=ConsentInfo,
          access=_WALLET_SESSION,
          summary="§5: what the consent screen shows (a wallet session is needed)",
          query=(("response_type", "string"), ("client_id", "string"),
                 ("redirect_uri", "string"), ("scope", "string"), ("state", "string"),
                 ("code_challenge", "string"), ("code_challenge_method", "string"))),
    Route(method="POST", path="/oauth/authorize", handler=authorize_decide, request=DecisionBody,
          status=302, access=_WALLET_SESSION,
          summary="§5: allow (アクセスを許可する) or refuse; redirects to the client"),
    # The client is named in the form and proves itself with the PKCE verifier.
    Route(method="POST", path="/oauth/token", handler=token, form=TokenForm,
          response=TokenAnswer, error=OAuthError, access=PUBLIC,
          summary="Exchange a code and its PKCE verifier for an access token (form-encoded)"),
    Route(method="POST", path="/oauth/revoke", handler=revoke, form=RevokeForm,
          response=Revoked, error=OAuthError, access=PUBLIC,
          summary="Revoke an access token (RFC 7009, form-encoded)"),
    Route(method="GET", path="/api/v1/member/wallet", handler=member_wallet, response=WalletView,
          access=(SCOPE_READ,), summary="The member's balances (bearer token with wallet:read)"),
    Route(method="GET", path="/api/v1/member/wallet/history", handler=member_history,
          response=HistoryPage, access=(SCOPE_READ,), query_type=HistoryQuery,
          summary="The member's history (bearer token with wallet:read)"),
    Route(method="POST", path="/api/v1/member/wallet/moves", handler=member_move,
          request=MoveRequest, response=Booked, access=(SCOPE_PAY,),
          summary="Move money from base money to another purse (bearer token with wallet:pay)"),
    Route(method="POST", path="/api/v1/member/wallet/suspend", handler=member_suspend,
          response=StatusChanged, access=(SCOPE_PAY,),
          summary="Suspend the e-money account (bearer token with wallet:pay)"),
)  # fmt: skip
