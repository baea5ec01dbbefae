"""The node's app in process over a real registry store and an in-process till hub, for
the console's tills and live API: no Ray, no wallet (these routes never call it)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
from aiohttp.test_utils import TestClient, TestServer

from coopnode.actors.notify.actor import LocalOutbox
from coopnode.actors.notify.outbox import Outbox
from coopnode.actors.registry.store import RegistryStore
from coopnode.actors.wallet.client import WalletClient
from coopnode.domain.till_frames import Decision
from coopnode.http.app import make_app
from coopnode.http.console.live import LiveBoard, live_board_key
from coopnode.http.identity_front import IdentityFront
from coopnode.http.tills.hub import TillHub
from coopnode.metrics import Metrics
from coopnode.settings import LiveSettings, Settings, TillSettings
from tests.http.test_edge import AcceptingNotifier, FakeIdentity
from tests.http.test_till_hub import InProcessRegistry

TOKEN = "t" * 32
# A machine's API token with every permission, as the fake identity engine holds it.
STAFF = {"Authorization": "Bearer token-machine"}


@dataclass
class Console:
    client: TestClient  # type: ignore[type-arg]
    hub: TillHub

    @property
    def board(self) -> LiveBoard:
        board: LiveBoard = self.client.app[live_board_key]
        return board

    def tap(self, till_id: str, decision: Decision, tapped_at_ms: int = 0) -> None:
        """A decision sent to a till, as the till channel records it."""
        self.hub.record_decision(
            decision, time.perf_counter(), self.hub.tills[till_id], tapped_at_ms
        )


async def console_app(tmp_path: Path, live: LiveSettings | None = None) -> AsyncIterator[Console]:
    store = RegistryStore(tmp_path / "registry", map_size_bytes=16 << 20, fsync=False)
    till = msgspec.structs.replace(TillSettings(), registry_refresh_s=3_600.0)
    # The sampler waits a minute between samples: the tests sample when they mean it.
    live = live or LiveSettings(sample_interval_s=60.0)
    settings = msgspec.structs.replace(Settings(), till=till, live=live)
    hub = TillHub(InProcessRegistry(store), till, Metrics())
    await hub.start(ready_timeout_s=30.0)
    identity = IdentityFront(
        client=FakeIdentity(), notifier=AcceptingNotifier(), outbox=LocalOutbox(Outbox(10))
    )
    wallet = WalletClient([], settings.wallet, Metrics())
    app = make_app(settings, wallet, Metrics(), TOKEN, hub, identity)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Console(client=client, hub=hub)
    finally:
        await client.close()
        await hub.stop()
        store.close()
