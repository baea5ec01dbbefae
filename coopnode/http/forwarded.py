"""A reverse proxy in front of the node: what it says about the request, believed from it only.

A proxy that terminates TLS (nginx, a load balancer) talks plain HTTP to the node and
says in `X-Forwarded-Proto` how the browser reached it and in `X-Forwarded-For` from
where. Anyone can send those headers, so the node believes them only from the peers of
`node.trusted_proxies`; then `request.scheme` (and `request.secure`, `request.url`) is
the browser's and `request.remote` the browser's address. From any other peer they are
ignored, and a request is what its own connection says.

Only the last value of each header counts: it is the one the trusted proxy wrote (nginx
appends to `X-Forwarded-For` with `$proxy_add_x_forwarded_for`); earlier values came
from the client and prove nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from coopnode.http.errors import Handler

_SCHEMES = ("http", "https")


def _last(value: str) -> str:
    return value.rsplit(",", 1)[-1].strip()


def _from_any(networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network], peer: str) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False  # A Unix socket, or no peer at all.
    return any(address in network for network in networks)


def forwarded_middleware(trusted_proxies: Sequence[str]) -> Middleware:
    """Take the scheme and client address from a trusted proxy's headers."""
    networks = [ipaddress.ip_network(proxy) for proxy in trusted_proxies]

    @web.middleware
    async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not networks or not _from_any(networks, request.remote or ""):
            return await handler(request)
        scheme = _last(request.headers.get("X-Forwarded-Proto", "")).lower()
        if scheme not in _SCHEMES:
            scheme = request.scheme
        remote = _last(request.headers.get("X-Forwarded-For", ""))
        try:
            remote = str(ipaddress.ip_address(remote))
        except ValueError:
            remote = request.remote or ""  # No address, or not one: the proxy's own.
        return await handler(request.clone(scheme=scheme, remote=remote))

    return forwarded
