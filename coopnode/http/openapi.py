"""The OpenAPI 3.1 document, written from the route table and the msgspec types.

Each operation's `security` is written from its route's `access`, the same field the edge
enforces (`edge.py`): the staff token is HTTP bearer authentication (`staffToken`); a
session is its cookie (`portalSession`, `mypageSession`, …), with the CSRF header
(`csrfToken`) beside it for a change; an OAuth scope is the `walletOAuth` scheme (the
authorization-code flow with PKCE) with that scope. A route anybody may call has no
`security` (and the document none at its top).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

from coopnode import __version__
from coopnode.domain.identity import SessionKind
from coopnode.domain.staff import Permission
from coopnode.http.edge import (
    Access,
    ApiToken,
    OAuthScope,
    Route,
    SessionCookie,
    StaffRole,
    StaffToken,
)
from coopnode.http.errors import ErrorBody
from coopnode.http.identity_front import COOKIE_NAMES, CSRF_HEADER

_REF = "#/components/schemas/{name}"
_NOT_NOW_READ = "not now, nothing changed: `overloaded`, `unavailable` or `timeout`; send it again"
_NOT_NOW_CHANGE = (
    "not now: `overloaded` or `unavailable`; or `outcome_unknown`: the node could not "
    "confirm the change in time, and it may have been done or not (the node goes on "
    "with it). Send the same request with the same `key`: it answers what happened and "
    "is never done twice. Never send it again under a new key"
)


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema with its `$defs` (an enum, say) put in place: parameters sit
    outside `components`, where a `#/$defs/...` reference would point at nothing."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


STAFF_TOKEN_SCHEME = "staffToken"  # noqa: S105  # A scheme's name, not a token.
API_TOKEN_SCHEME = "apiToken"  # noqa: S105  # A scheme's name, not a token.
CSRF_SCHEME = "csrfToken"
OAUTH_SCHEME = "walletOAuth"
# Where a member consents to an app, and where the app redeems the code.
_OAUTH_AUTHORIZATION_URL = "/wallet/authorize"
_OAUTH_TOKEN_URL = "/oauth/token"  # noqa: S105  # A path, not a token.


def session_scheme(kind: SessionKind) -> str:
    return f"{kind.value}Session"


def security(access: Access, *, changes: bool) -> list[dict[str, list[str]]]:
    """The operation's security requirements: any one of them admits the caller."""
    requirements: list[dict[str, list[str]]] = []
    for credential in access:
        match credential:
            case StaffToken():
                requirements.append({STAFF_TOKEN_SCHEME: []})
            case SessionCookie(kind=kind):
                requirement: dict[str, list[str]] = {session_scheme(kind): []}
                if changes:
                    requirement[CSRF_SCHEME] = []
                requirements.append(requirement)
            case OAuthScope(name=scope):
                requirements.append({OAUTH_SCHEME: [scope]})
            case StaffRole(permission=permission):
                # OpenAPI 3.1 lets a non-OAuth requirement name roles: here, the one
                # permission the session's role must grant (`domain.staff`).
                staff = {session_scheme(SessionKind.STAFF): _roles(permission)}
                requirements.append({**staff, CSRF_SCHEME: []} if changes else staff)
            case ApiToken(permission=permission):
                requirements.append({API_TOKEN_SCHEME: [permission.value]})
    return requirements


def _roles(permission: Permission | None) -> list[str]:
    return [] if permission is None else [permission.value]


def _security_schemes(routes: list[Route]) -> dict[str, Any]:
    """The schemes the operations name, and no other."""
    scopes = {
        credential.name: credential.description
        for route in routes
        for credential in route.access
        if isinstance(credential, OAuthScope)
    }
    schemes: dict[str, Any] = {
        STAFF_TOKEN_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "The node's staff token: only to create the first administrator",
        },
        API_TOKEN_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A machine's API token (cn_…), made by an administrator with scopes: the "
                "permissions it is granted, which a requirement names"
            ),
        },
        **{
            session_scheme(kind): {
                "type": "apiKey",
                "in": "cookie",
                "name": COOKIE_NAMES[kind],
                "description": f"A {kind.value} session, set by its sign-in",
            }
            for kind in SessionKind
        },
        CSRF_SCHEME: {
            "type": "apiKey",
            "in": "header",
            "name": CSRF_HEADER,
            "description": "The session's CSRF token, answered at sign-in; every change needs it",
        },
        OAUTH_SCHEME: {
            "type": "oauth2",
            "description": "An app's access token for the member's wallet (PKCE, S256)",
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": _OAUTH_AUTHORIZATION_URL,
                    "tokenUrl": _OAUTH_TOKEN_URL,
                    "scopes": scopes,
                }
            },
        },
    }
    named = {
        name
        for route in routes
        for requirement in security(route.access, changes=route.changes)
        for name in requirement
    }
    return {name: scheme for name, scheme in schemes.items() if name in named}


def _success(route: Route, refs: dict[Any, Any]) -> dict[str, Any]:
    if route.status in (204, 302, 303):
        return {"description": "success, with no body"}
    if route.content_type == "text/event-stream":
        # Server-sent events: each event, as a client parses it, is its name and its data
        # (the route's response as JSON, when it names one).
        data: dict[str, Any] = {"type": "string"}
        if route.response is not None:
            data |= {"contentMediaType": "application/json", "contentSchema": refs[route.response]}
        event = {
            "type": "object",
            "properties": {"event": {"type": "string"}, "data": data},
            "required": ["data"],
        }
        content = {route.content_type: {"schema": event}}
    elif route.content_type != "application/json":
        content = {route.content_type: {"schema": {"type": "string"}}}
    else:
        content = {"application/json": {"schema": refs[route.response]}}
    return {"description": "success", "content": content}


def _operation(route: Route, refs: dict[Any, Any]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": {"type": kind}}
        for name, kind in route.query
    ]
    if route.query_type is not None:
        parameters += [
            {
                "name": field.encode_name,
                "in": "query",
                "required": field.required,
                "schema": _inline(msgspec.json.schema(field.type)),
            }
            for field in msgspec.structs.fields(route.query_type)
        ]
    error_type = ErrorBody if route.error is None else route.error
    error = {"content": {"application/json": {"schema": refs[error_type]}}}
    responses: dict[str, Any] = {
        str(route.status): _success(route, refs),
        "4XX": {"description": "refused, with a reason code; nothing changed", **error},
        "503": {
            "description": _NOT_NOW_READ if route.method == "GET" else _NOT_NOW_CHANGE,
            **error,
        },
    }
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": route.handler.__name__,
        "parameters": parameters,
        "responses": responses,
    }
    if route.request is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[route.request]}},
        }
    elif route.form is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": refs[route.form]}},
        }
    requirements = security(route.access, changes=route.changes)
    if requirements:
        operation["security"] = requirements
    return operation


def openapi_document(routes: Iterable[Route]) -> dict[str, Any]:
    routes = list(routes)
    types = {ErrorBody}
    for route in routes:
        types.update(
            t for t in (route.request, route.response, route.form, route.error) if t is not None
        )
    ordered = sorted(types, key=lambda t: t.__name__)
    schemas, components = msgspec.json.schema_components(ordered, ref_template=_REF)
    refs = dict(zip(ordered, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "CoopNode API", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": _security_schemes(routes),
        },
    }
