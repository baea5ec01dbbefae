"""OAuth: the requests the front hands to authlib in the actor, and the member's grants.

`OAuthAnswer` is not a refusal: it is the protocol's own HTTP answer (a redirect with a
code or an error, a token, RFC 6749's error body), whose status RFC 6749 sets and authlib
writes; the front sends it as it is.
"""

from __future__ import annotations

import msgspec

from coopnode.actors.identity.messages.base import IdentityMessage, Secret, Text
from coopnode.domain.messages import MemberNo


class OAuthHttp(IdentityMessage, frozen=True):
    """An OAuth request as the front received it, for authlib in the actor."""

    method: str
    uri: str
    query: list[tuple[str, str]] = msgspec.field(default_factory=list)
    form: list[tuple[str, str]] = msgspec.field(default_factory=list)
    authorization: Secret = ""


class OAuthConsent(IdentityMessage, frozen=True, tag="oauth_consent"):
    member_no: MemberNo
    http: OAuthHttp


class OAuthDecide(IdentityMessage, frozen=True, tag="oauth_decide"):
    member_no: MemberNo
    http: OAuthHttp
    allow: bool


class OAuthToken(IdentityMessage, frozen=True, tag="oauth_token"):
    http: OAuthHttp


class OAuthRevoke(IdentityMessage, frozen=True, tag="oauth_revoke"):
    http: OAuthHttp


class OAuthIntrospect(IdentityMessage, frozen=True, tag="oauth_introspect"):
    authorization: Secret
    scope: str


class ListGrants(IdentityMessage, frozen=True, tag="list_grants"):
    member_no: MemberNo


class RevokeGrant(IdentityMessage, frozen=True, tag="revoke_grant"):
    member_no: MemberNo
    grant_id: Text


class ScopeInfo(IdentityMessage, frozen=True):
    scope: str
    description: str


class ConsentInfo(IdentityMessage, frozen=True, tag="consent"):
    client_id: str
    client_name: str
    scopes: list[ScopeInfo]
    redirect_uri: str
    state: str


class OAuthAnswer(IdentityMessage, frozen=True, tag="oauth_answer"):
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class TokenInfo(IdentityMessage, frozen=True, tag="token_info"):
    member_no: str
    scope: str
    grant_id: str
    client_id: str


class GrantView(IdentityMessage, frozen=True):
    grant_id: str
    client_id: str
    client_name: str
    scope: str
    issued_at_s: float
    expires_at_s: float
    active: bool


class Grants(IdentityMessage, frozen=True, tag="grants"):
    grants: list[GrantView]
