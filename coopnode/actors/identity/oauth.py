"""The wallet's OAuth 2.0 authorization server (FLOWS §5), built on authlib.

The e-money wallet is the authorization server and the co-op's my-page its client. The
member signs in to the wallet with a one-time code, then consents to two scopes:

    wallet:read   read the balance and the history
    wallet:pay    pay with the wallet (and move money between purses)

authlib supplies the protocol: RFC 6749's authorization-code grant, RFC 7636's PKCE
(required here, S256 only, for every client), RFC 6750's bearer-token validation with
scope checks, and RFC 7009's revocation. This module supplies what authlib leaves to the
framework: the request and response adapters and the storage callbacks, which read and
write the identity store inside one LMDB transaction per request, so a code is redeemed
at most once even when two token requests race.

authlib's server is synchronous; it runs on the identity actor's thread like every other
store access. Codes and tokens are stored by their SHA-256 only. authlib logs issued
tokens at debug level, so its logger is held at WARNING whatever the node's level is.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from typing import Any

import msgspec
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    AuthorizationServer,
    ClientMixin,
    InvalidRequestError,
    OAuth2Request,
    ResourceProtector,
    TokenMixin,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge

from coopnode.actors.identity.answers import known_reason, refused
from coopnode.actors.identity.messages import (
    ConsentInfo,
    IdentityReason,
    OAuthAnswer,
    OAuthHttp,
    Refused,
    ScopeInfo,
    TokenInfo,
)
from coopnode.actors.identity.store import IdentityStore, Tx
from coopnode.catalogues.labels import WALLET_SCOPE_TEXTS
from coopnode.domain.identity import (
    OAuthCodeRecord,
    OAuthTokenRecord,
    digest,
)
from coopnode.settings import IdentitySettings, OAuthClientSettings

# authlib logs token dicts at debug level; no level of the node may let them through.
logging.getLogger("authlib").setLevel(logging.WARNING)

SCOPES: dict[str, str] = {scope.value: text for scope, text in WALLET_SCOPE_TEXTS.items()}
# 256 bits; the token is a bearer credential.
_TOKEN_BYTES = 32
_CODE_BYTES = 32


class _Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, client_id: str, settings: OAuthClientSettings, secret: str) -> None:
        self.client_id = client_id
        self.name = settings.name
        self.redirect_uris = list(settings.redirect_uris)
        self.secret = secret

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Only a client with one registered URI may leave it out (RFC 6749 §3.1.2.3).
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        wanted = (scope or "").split() or list(SCOPES)
        return " ".join(name for name in SCOPES if name in wanted)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return bool(self.secret) and hmac.compare_digest(client_secret, self.secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.secret:
            return method in ("client_secret_basic", "client_secret_post")
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


class _Code(AuthorizationCodeMixin):  # type: ignore[misc]
    def __init__(self, key: bytes, record: OAuthCodeRecord) -> None:
        self.key = key
        self.record = record
        self.code_challenge = record.code_challenge
        self.code_challenge_method = record.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.record.redirect_uri

    def get_scope(self) -> str:
        return self.record.scope


class _Token(TokenMixin):  # type: ignore[misc]
    def __init__(self, key: bytes, record: OAuthTokenRecord, now_s: float) -> None:
        self.key = key
        self.record = record
        self._now_s = now_s

    def check_client(self, client: _Client) -> bool:
        return bool(client.client_id == self.record.client_id)

    def get_scope(self) -> str:
        return self.record.scope

    def get_expires_in(self) -> int:
        return int(self.record.expires_at_s - self.record.issued_at_s)

    def is_expired(self) -> bool:
        return self._now_s >= self.record.expires_at_s

    def is_revoked(self) -> bool:
        return self.record.revoked

    def get_user(self) -> str:
        return self.record.member_no


class _Request(OAuth2Request):  # type: ignore[misc]
    """authlib's request built from what the front forwarded."""

    def __init__(self, http: OAuthHttp) -> None:
        headers = {"Authorization": http.authorization} if http.authorization else {}
        super().__init__(method=http.method, uri=http.uri, headers=headers)
        self._args = dict(http.query)
        self._form = dict(http.form)
        merged = {**self._args, **self._form}
        self.payload = BasicOAuth2Payload(merged)
        # Repeated parameters are refused by authlib (RFC 6749 §3.1); it needs the lists.
        datalist: dict[str, list[str]] = {}
        for name, value in [*http.query, *http.form]:
            datalist.setdefault(name, []).append(value)
        self.payload._datalist = datalist

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE for every client, with S256 only: RFC 9700 §2.1.1 forbids "plain" in practice."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge'")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256")
        super().validate_code_challenge(grant, redirect_uri)


class _Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, owner: OAuthServer) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.owner = owner
        self.register_token_generator("default", owner.generate_token)
        self.register_grant(_CodeGrant, [_S256Only(required=True)])
        self.register_endpoint(_Revocation)

    def query_client(self, client_id: str) -> _Client | None:
        return self.owner.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.owner.save_token(token, request)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if not isinstance(request, OAuth2Request):
            raise TypeError("the OAuth server takes requests built by this module")
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> OAuthAnswer:
        if isinstance(body, (dict, list)):
            raw = msgspec.json.encode(body)
        else:
            raw = str(body or "").encode()
        return OAuthAnswer(status=status, headers=[(k, v) for k, v in headers], body=raw)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post"]  # noqa: RUF012

    @property
    def _owner(self) -> OAuthServer:
        owner: OAuthServer = self.server.owner
        return owner

    def generate_authorization_code(self) -> str:
        return secrets.token_urlsafe(_CODE_BYTES)

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        record = OAuthCodeRecord(
            client_id=request.client.client_id,
            member_no=str(request.user),
            redirect_uri=request.payload.redirect_uri or "",
            scope=request.scope,
            code_challenge=data.get("code_challenge", ""),
            code_challenge_method=data.get("code_challenge_method", ""),
            expires_at_s=self._owner.now_s() + self._owner.settings.oauth_code_ttl_s,
        )
        self._owner.tx.put_oauth_code(digest(code), record)

    def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
        """A live code not yet redeemed. A code presented again after it was redeemed has
        leaked: the token it gave is revoked (RFC 6749 §4.1.2) and the request refused."""
        key = digest(code)
        tx = self._owner.tx
        record = tx.oauth_code(key)
        if record is None or record.client_id != client.client_id:
            return None
        if record.redeemed_token_key:
            self._owner.revoke_key(record.redeemed_token_key)
        if self._owner.now_s() >= record.expires_at_s:
            tx.delete_oauth_code(key)
            return None
        return None if record.redeemed_token_key else _Code(key, record)

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        """Mark the code redeemed, with the token it gave, until that token expires."""
        issued = self._owner.issued_token
        if issued is None:
            raise RuntimeError("a code is redeemed only after its token was saved")
        token_key, token = issued
        redeemed = msgspec.structs.replace(
            authorization_code.record,
            redeemed_token_key=token_key,
            expires_at_s=max(authorization_code.record.expires_at_s, token.expires_at_s),
        )
        self._owner.tx.put_oauth_code(authorization_code.key, redeemed)

    def authenticate_user(self, authorization_code: _Code) -> str:
        return authorization_code.record.member_no


class _Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post"]  # noqa: RUF012

    def query_token(self, token_string: str, token_type_hint: str | None) -> _Token | None:
        owner: OAuthServer = self.server.owner
        return owner.find_token(token_string)

    def revoke_token(self, token: _Token, request: OAuth2Request) -> None:
        owner: OAuthServer = self.server.owner
        owner.revoke_key(token.key)


class _Validator(BearerTokenValidator):  # type: ignore[misc]
    def __init__(self, owner: OAuthServer) -> None:
        super().__init__()
        self.owner = owner

    def authenticate_token(self, token_string: str) -> _Token | None:
        return self.owner.find_token(token_string)


def _refused(error: OAuth2Error) -> Refused:
    """authlib's refusal as the room's: its code is an `IdentityReason` (every code of
    RFC 6749 and RFC 6750 that authlib raises is, and its status at the edge is authlib's:
    `tests/http/test_errors.py`); a code authlib might add later is `invalid_request`,
    named in the sentence."""
    code = str(error.error)
    description = str(error.description or code)
    reason = known_reason(code)
    if reason is None:
        return refused(IdentityReason.INVALID_REQUEST, f"{code}: {description}")
    return refused(reason, description)


class OAuthServer:
    """authlib's server over the identity store; every call is one LMDB transaction."""

    def __init__(
        self,
        settings: IdentitySettings,
        store: IdentityStore,
        clock: Callable[[], float],
        client_secrets: dict[str, str],
    ) -> None:
        self.settings = settings
        self.now_s = clock
        self._store = store
        self.clients = {
            client_id: _Client(client_id, client, client_secrets.get(client_id, ""))
            for client_id, client in settings.oauth_clients.items()
        }
        self._tx: Tx | None = None
        # The token saved in this request's transaction: the code it redeems records it.
        self.issued_token: tuple[bytes, OAuthTokenRecord] | None = None
        self._server = _Server(self)
        self._protector = ResourceProtector()
        self._protector.register_token_validator(_Validator(self))

    @property
    def tx(self) -> Tx:
        if self._tx is None:
            raise RuntimeError("OAuth storage used outside a request")
        return self._tx

    def _in_transaction(self, action: Callable[[], Any]) -> Any:
        with self._store.write() as tx:
            self._tx = tx
            self.issued_token = None
            try:
                return action()
            finally:
                self._tx = None
                self.issued_token = None

    # authlib's callbacks ------------------------------------------------------------------

    def generate_token(self, **kwargs: Any) -> dict[str, Any]:
        ttl_s = self.settings.oauth_token_ttl_s
        return {
            "token_type": "Bearer",
            "access_token": secrets.token_urlsafe(_TOKEN_BYTES),
            "expires_in": ttl_s,
            "scope": kwargs.get("scope") or "",
        }

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        now_s = self.now_s()
        record = OAuthTokenRecord(
            grant_id=secrets.token_urlsafe(12),
            client_id=request.client.client_id,
            member_no=str(request.user),
            scope=str(token.get("scope", "")),
            issued_at_s=now_s,
            expires_at_s=now_s + int(token["expires_in"]),
        )
        key = digest(str(token["access_token"]))
        self.tx.put_oauth_token(key, record)
        self.issued_token = (key, record)

    def revoke_key(self, key: bytes) -> None:
        """Revoke the token stored under `key`, if it is still stored."""
        record = self.tx.oauth_token(key)
        if record is not None and not record.revoked:
            self.tx.put_oauth_token(key, msgspec.structs.replace(record, revoked=True))

    def find_token(self, token_string: str) -> _Token | None:
        key = digest(token_string)
        record = self.tx.oauth_token(key)
        return None if record is None else _Token(key, record, self.now_s())

    # What the identity service calls ---------------------------------------------------------

    def consent(self, member_no: str, http: OAuthHttp) -> ConsentInfo | Refused:
        """Check an authorization request and say what the consent screen must show."""

        def check() -> ConsentInfo | Refused:
            try:
                grant = self._server.get_consent_grant(_Request(http), end_user=member_no)
            except OAuth2Error as error:
                return _refused(error)
            client: _Client = grant.client
            scopes = [
                ScopeInfo(scope=name, description=SCOPES[name])
                for name in grant.request.scope.split()
            ]
            return ConsentInfo(
                client_id=client.client_id,
                client_name=client.name,
                scopes=scopes,
                redirect_uri=str(grant.redirect_uri),
                state=str(grant.request.payload.state or ""),
            )

        result: ConsentInfo | Refused = self._in_transaction(check)
        return result

    def decide(self, member_no: str, http: OAuthHttp, allow: bool) -> OAuthAnswer | Refused:
        """The member allowed or refused: redirect to the client with a code or an error."""

        def run() -> OAuthAnswer | Refused:
            request = _Request(http)
            try:
                grant = self._server.get_consent_grant(request, end_user=member_no)
            except OAuth2Error as error:
                return _refused(error)
            answer: OAuthAnswer = self._server.create_authorization_response(
                request, grant_user=member_no if allow else None, grant=grant
            )
            return answer

        result: OAuthAnswer | Refused = self._in_transaction(run)
        return result

    def token(self, http: OAuthHttp) -> OAuthAnswer:
        answer: OAuthAnswer = self._in_transaction(
            lambda: self._server.create_token_response(_Request(http))
        )
        return answer

    def revoke(self, http: OAuthHttp) -> OAuthAnswer:
        answer: OAuthAnswer = self._in_transaction(
            lambda: self._server.create_endpoint_response("revocation", _Request(http))
        )
        return answer

    def introspect(self, authorization: str, scope: str) -> TokenInfo | Refused:
        """Check a bearer token for a resource request that needs `scope`."""

        def check() -> TokenInfo | Refused:
            request = _Request(
                OAuthHttp(method="GET", uri="http://127.0.0.1/", authorization=authorization)
            )
            try:
                token: _Token = self._protector.validate_request(scopes=[scope], request=request)
            except OAuth2Error as error:
                return _refused(error)
            return TokenInfo(
                member_no=token.record.member_no,
                scope=token.record.scope,
                grant_id=token.record.grant_id,
                client_id=token.record.client_id,
            )

        result: TokenInfo | Refused = self._in_transaction(check)
        return result
