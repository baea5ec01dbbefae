"""The aiohttp application: one factory, routes in one place, errors in one middleware."""

from __future__ import annotations

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from coopnode.actors.wallet_client import WalletClient
from coopnode.http.errors import error_middleware, timeout_middleware
from coopnode.http.openapi import openapi_document
from coopnode.http.wallet_api import ROUTES, staff_token_key, wallet_client_key
from coopnode.metrics import Metrics
from coopnode.settings import Settings

metrics_key = web.AppKey("metrics", Metrics)
openapi_key = web.AppKey("openapi", bytes)


async def healthz(request: web.Request) -> web.Response:
    """Ready only when every wallet shard answers."""
    answers = await request.app[wallet_client_key].health()
    ready = all(answer is not None for answer in answers)
    body = {
        "ready": ready,
        "shards": [None if answer is None else msgspec.to_builtins(answer) for answer in answers],
    }
    return web.json_response(body, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[metrics_key].registry)
    response = web.Response(body=body)
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[openapi_key], content_type="application/json")


def make_app(
    settings: Settings, wallet: WalletClient, metrics_registry: Metrics, staff_token: str
) -> web.Application:
    app = web.Application(
        client_max_size=settings.http.body_max_bytes,
        middlewares=[error_middleware, timeout_middleware(settings.http.request_timeout_s)],
    )
    app[wallet_client_key] = wallet
    app[metrics_key] = metrics_registry
    app[staff_token_key] = staff_token
    app[openapi_key] = msgspec.json.encode(openapi_document(ROUTES))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/openapi.json", openapi)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    return app
