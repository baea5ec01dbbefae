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
"""

from __future__ import annotations

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


async def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    production = request.app[secure_cookies_key]
    for name, value in (_PRODUCTION_HEADERS if production else _HEADERS).items():
        response.headers.setdefault(name, value)


def setup_hardening(app: web.Application, *, production: bool) -> None:
    """Secure cookies and HSTS in production; the other headers on every answer."""
    app[secure_cookies_key] = production
    app.on_response_prepare.append(_secure_headers)
