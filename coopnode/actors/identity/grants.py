"""The wallet's OAuth requests (FLOWS §5) as the identity actor receives them, and the
member's list of what they let the my-page do.

The protocol itself is `oauth.OAuthServer` (authlib over the identity store); this part
turns each request into its call, and lists and revokes the member's grants.
"""

from __future__ import annotations

import secrets

import msgspec

from coopnode.actors.identity.answers import refused
from coopnode.actors.identity.context import IdentityContext
from coopnode.actors.identity.messages import (
    ConsentInfo,
    Done,
    Grants,
    GrantView,
    IdentityReason,
    ListGrants,
    OAuthAnswer,
    OAuthConsent,
    OAuthDecide,
    OAuthIntrospect,
    OAuthRevoke,
    OAuthToken,
    Refused,
    RevokeGrant,
    TokenInfo,
)
from coopnode.actors.identity.oauth import OAuthServer


class OAuthGrants:
    def __init__(self, context: IdentityContext, client_secrets: dict[str, str]) -> None:
        self.context = context
        self.server = OAuthServer(context.bounds, context.store, context.clock, client_secrets)

    # The protocol's requests ------------------------------------------------------------

    def consent(self, request: OAuthConsent) -> ConsentInfo | Refused:
        return self.server.consent(request.member_no, request.http)

    def decide(self, request: OAuthDecide) -> OAuthAnswer | Refused:
        return self.server.decide(request.member_no, request.http, request.allow)

    def token(self, request: OAuthToken) -> OAuthAnswer:
        return self.server.token(request.http)

    def revoke(self, request: OAuthRevoke) -> OAuthAnswer:
        return self.server.revoke(request.http)

    def introspect(self, request: OAuthIntrospect) -> TokenInfo | Refused:
        return self.server.introspect(request.authorization, request.scope)

    # The member's grants ----------------------------------------------------------------

    def list_grants(self, request: ListGrants) -> Grants:
        clients = self.server.clients
        now_s = self.context.clock()
        with self.context.store.read() as tx:
            found = tx.grants_of(request.member_no)
        views = [
            GrantView(
                grant_id=token.grant_id,
                client_id=token.client_id,
                client_name=clients[token.client_id].name
                if token.client_id in clients
                else token.client_id,
                scope=token.scope,
                issued_at_s=token.issued_at_s,
                expires_at_s=token.expires_at_s,
                active=not token.revoked and now_s < token.expires_at_s,
            )
            for _, token in found
        ]
        return Grants(grants=views)

    def revoke_grant(self, request: RevokeGrant) -> Done | Refused:
        with self.context.store.write() as tx:
            for key, token in tx.grants_of(request.member_no):
                if secrets.compare_digest(token.grant_id, request.grant_id):
                    tx.put_oauth_token(key, msgspec.structs.replace(token, revoked=True))
                    return Done(message="access revoked")
        return refused(IdentityReason.NOT_FOUND, "no such grant")
