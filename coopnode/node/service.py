"""The node's life: start Ray and the shards, serve HTTP, stop cleanly on Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import ray
import uvloop
from aiohttp import web

from coopnode.actors.kernel.clock import system_ms
from coopnode.actors.kernel.link_tls import link_client_context
from coopnode.actors.wallet.chain import create_journal_key
from coopnode.actors.wallet.client import WalletClient
from coopnode.actors.wallet.store import LAYOUT_VERSION
from coopnode.http.app import make_app
from coopnode.http.tills.activity import TillActivity
from coopnode.http.tills.hub import TillHub
from coopnode.logs import get_logger
from coopnode.metrics import Metrics
from coopnode.node.backup_node import start_backups
from coopnode.node.cluster import create_registry, create_shards, start_ray
from coopnode.node.cluster_tls import cluster_tls_files
from coopnode.node.demo import DemoCoop, seed_demo
from coopnode.node.demo_till import DEMO_READER, DemoTill, bind_demo_cards
from coopnode.node.identity_node import IdentityNode, prepare_identity_secrets
from coopnode.node.kiosks import Kiosks, kiosk_resources
from coopnode.node.payments_node import PaymentsNode
from coopnode.node.restore import refuse_unfinished_restore
from coopnode.node.secrets_files import read_or_create_internal_secret, read_or_create_secret
from coopnode.node.tls import ServerTls, server_tls
from coopnode.settings import Settings, SettingsError

log = get_logger(__name__)

# Starting Ray and its actors takes seconds on a small machine; a minute is a broken start.
SHARDS_READY_TIMEOUT_S = 120.0


class Layout(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    shard_count: int
    # How the shards' records are laid out (wallet_store.LAYOUT_VERSION); files from
    # before the field existed are layout 1.
    wallet_layout: int = 1


def check_layout(settings: Settings) -> None:
    """The shard count is fixed for the life of a data directory: refuse to change it.

    Files written in an older record layout are refused here, before Ray starts, with what
    to do about them."""
    refuse_unfinished_restore(settings.data_path)
    path = settings.data_path / "wallet" / "layout.json"
    wanted = Layout(shard_count=settings.wallet.shard_count, wallet_layout=LAYOUT_VERSION)
    if path.exists():
        found = msgspec.json.decode(path.read_bytes(), type=Layout)
        if found.wallet_layout != wanted.wallet_layout:
            raise SettingsError(
                f"the wallet files in {path.parent} are of layout {found.wallet_layout}, "
                f"written by an older CoopNode; this version reads layout "
                f"{wanted.wallet_layout}. Move the data directory {settings.data_path} aside "
                "to start afresh"
            )
        if found != wanted:
            raise SettingsError(
                f"wallet.shard_count is {wanted.shard_count} but {path} holds "
                f"{found.shard_count} shards; the count cannot change for a data directory"
            )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.encode(wanted))


async def _stopping(part: str, stop: Callable[..., Awaitable[Any]], *args: Any) -> None:
    """Stop one part of the node, saying so: a stop that hangs names its part in the log."""
    log.info("stopping part", part=part)
    await stop(*args)


def link_token_path(settings: Settings) -> Path:
    """The secret of the wallet's data links: a cluster's is given to every host."""
    if settings.cluster.link_token_file:
        return Path(settings.cluster.link_token_file)
    return settings.data_path / "wallet" / "link-token"


def serve(settings: Settings, *, demo: bool) -> None:
    """Run the node until SIGINT or SIGTERM."""
    if not settings.cluster.placed:
        # On a cluster the shards' files are on their hosts, and each shard checks its own
        # (shard index, count and layout) when it opens them.
        check_layout(settings)
    # Checked before Ray starts, so that a bad certificate or key stops the node at once.
    tls = server_tls(settings.node)
    # The cluster's files were checked and given to Ray by the CLI; the front's end of the
    # wallet links presents this host's certificate and checks the shards'.
    cluster_files = cluster_tls_files(settings)
    link_tls = None if cluster_files is None else link_client_context(cluster_files)
    staff_token = read_or_create_secret(settings.staff_token_path, settings)
    prepare_identity_secrets(settings)
    log.info("starting ray", address=settings.node.ray_address or "local")
    readers = [kiosk.name for kiosk in settings.till.kiosks]
    if demo and settings.till.demo_till:
        readers.append(DEMO_READER)
    start_ray(settings, kiosk_resources(readers))
    link_token = read_or_create_internal_secret(link_token_path(settings))
    if not settings.wallet.journal_key_file:
        # The key that seals the journal's days is the node's own, made at its first start
        # (a named file is the operator's to give every host, and never made here).
        create_journal_key(settings.journal_key_path)
    try:
        shards = create_shards(settings, link_token)
        # uvloop: the front's CPU per till tap fell by about a tenth (benchmarks/tills.py).
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(
                _serve(settings, shards, staff_token, link_token, tls, link_tls=link_tls, demo=demo)
            )
    finally:
        log.info("stopping part", part="ray")
        ray.shutdown()
        log.info("node stopped")


async def _serve(
    settings: Settings,
    shards: list[Any],
    staff_token: str,
    link_token: str,
    tls: ServerTls | None,
    *,
    link_tls: ssl.SSLContext | None,
    demo: bool,
) -> None:
    """Start every part, serve until a signal, and stop them in the reverse order.

    Each part is pushed on one exit stack as soon as it has started, so a failure half
    way through the start, or in one part's stop, still stops every part started before
    it (the stack goes on with the others and raises the first error at the end).
    """
    # Ctrl-C or SIGTERM are the node's from the first moment: one that comes while the
    # parts start lets the start finish and then stops everything cleanly. Installed
    # only once the readers had started, a Ctrl-C sent as soon as node.url appeared (the
    # kiosks start after it) left a test's node running until the test gave up.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with contextlib.AsyncExitStack() as parts:
        metrics = Metrics()
        wallet = WalletClient(
            shards, settings.wallet, metrics, link_token=link_token, link_tls=link_tls
        )
        parts.push_async_callback(_stopping, "wallet", wallet.close)
        await wallet.wait_ready(SHARDS_READY_TIMEOUT_S)
        tills = TillHub(
            create_registry(settings),
            settings.till,
            metrics,
            TillActivity(settings.live.forwarded_kept_per_till, system_ms),
        )
        await tills.start(SHARDS_READY_TIMEOUT_S)
        parts.push_async_callback(_stopping, "tills", tills.stop)
        demo_coop = await seed_demo(wallet, settings) if demo else None
        if demo_coop is not None:
            await bind_demo_cards(tills, demo_coop)
        identity = await IdentityNode.start(settings, SHARDS_READY_TIMEOUT_S)
        parts.push_async_callback(
            _stopping, "identity", identity.stop, settings.node.shutdown_grace_s
        )
        if demo_coop is not None:
            await identity.enrol_demo(demo_coop)
        payments = await PaymentsNode.start(settings, wallet, SHARDS_READY_TIMEOUT_S)
        parts.push_async_callback(_stopping, "payments", payments.stop)
        backups = await start_backups(settings, SHARDS_READY_TIMEOUT_S)
        app = make_app(
            settings,
            wallet,
            metrics,
            staff_token,
            tills,
            identity.front,
            payments.charging,
            payments.webhook_key,
            backups,
        )
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=logging.getLogger("aiohttp.access") if settings.log.access_log else None,
            shutdown_timeout=settings.node.shutdown_grace_s,
        )
        await runner.setup()
        parts.push_async_callback(_stopping, "http", runner.cleanup)
        # The tills' connections close before the runner waits for its handlers, which
        # would otherwise wait out the grace for every till's open WebSocket.
        parts.push_async_callback(_stopping, "tills", tills.stop)
        site = web.TCPSite(
            runner,
            settings.node.host,
            settings.node.port,
            ssl_context=None if tls is None else tls.context,
        )
        await site.start()
        # Everything made so far (Ray's state, the registry copy, the app) lives as long
        # as the node: keep it out of the collector's passes, which otherwise walk it
        # again and again on the tap path (the collector took about a tenth of the
        # front's CPU at 2,000 taps/s before this).
        gc.freeze()
        url = _announce(settings, runner, tls is not None)
        await _start_readers(parts, _kiosk_settings(settings, tls), url, tills, demo_coop)
        log.info(
            "node ready",
            url=url,
            shards=settings.wallet.shard_count,
            staff_credentials_file=str(settings.staff_token_path),
        )
        await stop.wait()
        log.info("stopping: no new requests; finishing those in flight")


async def _start_readers(
    parts: contextlib.AsyncExitStack,
    settings: Settings,
    url: str,
    tills: TillHub,
    demo_coop: DemoCoop | None,
) -> None:
    """The kiosks' reader actors, the demo's among them with its emulated cards; each
    stopped by `parts` (the demo till's cards before the kiosks' readers)."""
    kiosk_list = list(settings.till.kiosks)
    demo_till = None
    if demo_coop is not None and settings.till.demo_till:
        demo_till = DemoTill(settings, tills, demo_coop)
        kiosk_list.append(await demo_till.kiosk())
    kiosks = Kiosks(settings, url, kiosk_list)
    await kiosks.start()
    parts.push_async_callback(_stopping, "kiosks", kiosks.stop)
    if demo_till is not None:
        parts.push_async_callback(_stopping, "demo till", demo_till.stop)
        demo_till.present_cards()


def _kiosk_settings(settings: Settings, tls: ServerTls | None) -> Settings:
    """The kiosks of a TLS node verify it by its own certificate's SHA-256, unless the
    settings say how (a CA file or another pin): the node knows which certificate it
    serves, and tells its reader actors over Ray, not over the network they check."""
    till = settings.till
    if tls is None or till.agent_tls_ca_file or till.agent_tls_pin_sha256:
        return settings
    pinned = msgspec.structs.replace(till, agent_tls_pin_sha256=tls.cert_sha256)
    return msgspec.structs.replace(settings, till=pinned)


def _announce(settings: Settings, runner: web.AppRunner, https: bool) -> str:
    """Write the URL the node listens on, for tools and tests started with port 0."""
    host, port = runner.addresses[0][:2]
    url = f"{'https' if https else 'http'}://{host}:{port}"
    # Written beside and renamed into place: a tool polling for the file never reads it
    # half-written (empty), which it would take for a node without a URL.
    path = settings.data_path / "node.url"
    partial = path.with_name("node.url.partial")
    partial.write_text(url + "\n", encoding="ascii")
    partial.replace(path)
    return url


def node_url(data_dir: Path) -> str:
    return (data_dir / "node.url").read_text(encoding="ascii").strip()
