"""The aiohttp application: one factory, routes in one place, access checked at one edge
(`edge.Route.serve`), errors answered by one middleware."""

from __future__ import annotations

import functools
import time

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from coopnode.actors.backup.client import BackupClient
from coopnode.actors.wallet.books_client import BooksReader
from coopnode.actors.wallet.client import WalletClient
from coopnode.http.api.backups import BACKUP_ROUTES, backup_client_key
from coopnode.http.api.counter import COUNTER_ROUTES
from coopnode.http.api.counter_taps import COUNTER_TAP_ROUTES, CounterTaps, counter_taps_key
from coopnode.http.api.desk import DESK_ROUTES
from coopnode.http.api.dev_outbox import DEV_ROUTES, outbox_key
from coopnode.http.api.identity import IDENTITY_ROUTES
from coopnode.http.api.konbini import (
    KONBINI_ROUTES,
    charging_key,
    konbini_key_key,
    konbini_routes,
    payments_settings_key,
)
from coopnode.http.api.oauth import OAUTH_ROUTES
from coopnode.http.api.staff import STAFF_ACCESS_ROUTES
from coopnode.http.api.wallet import (
    ROUTES,
    MemberStatusHook,
    member_status_hook_key,
    wallet_client_key,
)
from coopnode.http.console.books import BOOKS_ROUTES, books_reader_key
from coopnode.http.console.journal import JOURNAL_ROUTES
from coopnode.http.console.live import LIVE_ROUTES, LiveBoard
from coopnode.http.console.live.routes import setup_live
from coopnode.http.console.parts import setup_console
from coopnode.http.console.tills import TILLS_CONSOLE_ROUTES, PendingKeys, pending_keys_key
from coopnode.http.edge import Route, staff_token_key
from coopnode.http.errors import error_middleware, timeout_middleware
from coopnode.http.forwarded import forwarded_middleware
from coopnode.http.hardening import setup_hardening
from coopnode.http.identity_front import (
    IdentityFront,
    identity_key,
    notifier_key,
)
from coopnode.http.openapi import openapi_document
from coopnode.http.portal.routes import setup_portal
from coopnode.http.tills.api import TILL_ROUTES
from coopnode.http.tills.channel import till_hub_key, till_websocket
from coopnode.http.tills.hub import TillHub
from coopnode.metrics import Metrics
from coopnode.payments.charging import Charging
from coopnode.settings import Environment, Settings

metrics_key = web.AppKey("metrics", Metrics)
openapi_key = web.AppKey("openapi", bytes)
# The API's route table as served: each route behind its access (`Route.serve`).
api_routes_key: web.AppKey[tuple[Route, ...]] = web.AppKey("api_routes")


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


def _identity_routes(
    app: web.Application, settings: Settings, identity: IdentityFront
) -> tuple[Route, ...]:
    """Members, staff and OAuth; the development outbox only in development."""
    app[identity_key] = identity.client
    app[notifier_key] = identity.notifier
    routes = IDENTITY_ROUTES + OAUTH_ROUTES
    if identity.outbox is not None and settings.node.environment is Environment.DEVELOPMENT:
        app[outbox_key] = identity.outbox
        routes += DEV_ROUTES
    return routes


def _console_till_routes(
    app: web.Application, settings: Settings, tills: TillHub
) -> tuple[Route, ...]:
    """The console's tills page and live lunch view (issue 13 §3, §7): they read the till
    hub, so they are served where it is."""
    live = settings.live
    app[pending_keys_key] = PendingKeys(
        live.key_download_ttl_s, live.key_downloads_pending_max, time.monotonic
    )
    setup_live(app, LiveBoard(tills, live))
    return TILLS_CONSOLE_ROUTES + LIVE_ROUTES


def make_app(
    settings: Settings,
    wallet: WalletClient,
    metrics_registry: Metrics,
    staff_token: str,
    tills: TillHub | None = None,
    identity: IdentityFront | None = None,
    charging: Charging | None = None,
    konbini_webhook_key: str = "",
    backups: BackupClient | None = None,
) -> web.Application:
    middlewares = [error_middleware, timeout_middleware(settings.http.request_timeout_s)]
    if settings.node.trusted_proxies:
        # Behind a reverse proxy: its X-Forwarded-* headers, from it only.
        middlewares.insert(1, forwarded_middleware(settings.node.trusted_proxies))
    app = web.Application(client_max_size=settings.http.body_max_bytes, middlewares=middlewares)
    setup_hardening(
        app,
        production=settings.node.environment is Environment.PRODUCTION,
        public_urls=(settings.identity.portal_base_url,),
    )
    app[wallet_client_key] = wallet
    app[metrics_key] = metrics_registry
    app[staff_token_key] = staff_token
    # The till channel and the card and till API need the registry; without it (tests of
    # the wallet alone) the node serves the wallet API only.
    routes = ROUTES + (TILL_ROUTES if tills is not None else ()) + JOURNAL_ROUTES
    if identity is not None:
        routes += _identity_routes(app, settings, identity) + DESK_ROUTES + STAFF_ACCESS_ROUTES
        if tills is not None:
            # The counter (窓口) finds members by card too: it needs the registry's copy.
            app[counter_taps_key] = CounterTaps()
            routes += COUNTER_ROUTES + COUNTER_TAP_ROUTES
        # The member portal's pages sit on the identity engine and the wallet.
        setup_portal(app, settings)
        # The staff console's pages (issue 13), on the same engine, in their own room.
        setup_console(app)
        if charging is not None:
            # Charging (FLOWS §6): the portal's charge pages and the store network's webhook.
            app[charging_key] = charging
            app[konbini_key_key] = konbini_webhook_key
            app[payments_settings_key] = settings
            routes += KONBINI_ROUTES
            app.router.add_routes(konbini_routes(settings))
    # The accounts office's books (console/books); reconciliation needs the payments too.
    app[books_reader_key] = BooksReader(wallet)
    routes += BOOKS_ROUTES
    if backups is not None:
        app[backup_client_key] = backups
        routes += BACKUP_ROUTES
    if tills is not None:
        routes += _console_till_routes(app, settings, tills)
    app[api_routes_key] = routes
    app[openapi_key] = msgspec.json.encode(openapi_document(routes))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/openapi.json", openapi)
    for route in routes:
        # Who may call the route is checked here, before its handler runs.
        app.router.add_route(route.method, route.path, route.serve)
    if tills is not None:
        app[till_hub_key] = tills
        # Every suspension and resumption reaches the registry and the tills this way.
        sync: MemberStatusHook = functools.partial(tills.sync_suspended, wallet=wallet)
        app[member_status_hook_key] = sync
        app.router.add_get("/till/ws", till_websocket)
    return app
