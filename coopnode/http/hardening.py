"""What every answer of the node carries for browsers, in one place.

    X-Content-Type-Options   nosniff: a file is read as the type it is served with
    X-Frame-Options          DENY, with CSP `frame-ancestors 'none'`: no page (the OAuth
                             consent screen above all) can be framed to trick a click
    Referrer-Policy          same-origin: a page's address (with its query) never leaves
    Content-Security-Policy  scripts, styles and forms from this node only, no inline
                             script or style (the pages have none), no plugins
    Strict-Transport-Security  in production only, where the node is reached over HTTPS

Whether cookies are `Secure` is decided here too (`secure_cookies_key`), from the same
setting: in production every portal cookie is sent over HTTPS alone.

A form posted from another site is refused by its `Origin` (`foreign_origin`), beside the
CSRF token: the node's own origin is the request's scheme and host, or the public URL the
settings give (behind a reverse proxy that ends TLS). A browser that sends no `Origin`
(older ones, on a same-origin post) is let through to the token check; `Origin: null`
(a sandboxed frame, a data: page) is refused.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from coopnode.http.identity_front import secure_cookies_key

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)
# A year, the preload list's minimum: a browser that once reached the node over HTTPS
# never tries plain HTTP again within that time.
HSTS_MAX_AGE_S = 31_536_000

_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
}
_PRODUCTION_HEADERS = {
    **_HEADERS,
    "Strict-Transport-Security": f"max-age={HSTS_MAX_AGE_S}; includeSubDomains",
}


public_origins_key = web.AppKey("public_origins", frozenset[str])


def origin_of(url: str) -> str:
    """The scheme://host[:port] of a URL, as a browser writes it in `Origin`."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def foreign_origin(request: web.Request) -> str | None:
    """The `Origin` of a request sent from another site, or None when it is this node's own
    (or the browser sent none)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    own = {f"{request.scheme}://{request.host}".lower(), *request.app[public_origins_key]}
    return None if origin.lower() in own else origin


async def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    production = request.app[secure_cookies_key]
    for name, value in (_PRODUCTION_HEADERS if production else _HEADERS).items():
        response.headers.setdefault(name, value)


def setup_hardening(
    app: web.Application, *, production: bool, public_urls: tuple[str, ...] = ()
) -> None:
    """Secure cookies and HSTS in production; the other headers on every answer; the
    origins besides the request's own that forms may come from."""
    app[secure_cookies_key] = production
    app[public_origins_key] = frozenset(origin_of(url) for url in public_urls)
    app.on_response_prepare.append(_secure_headers)
