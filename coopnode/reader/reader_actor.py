"""The reader actor's second home: a card reader and its till agent in a Ray actor.

A till's reader usually lives in the till agent a cashier runs (`coopnode till run`), on
the till's own machine. Where the reader is plugged into a host of the node's Ray
cluster instead (a counter kiosk, a small cafeteria whose till is the node, the demo),
the node runs the same reader and the same agent as a Ray actor, placed on that host by
a custom resource naming its reader (`reader:<name>`: the host is started with it, e.g.
`ray start --resources='{"reader:kiosk-1": 1}'`), and restarted by Ray if it dies.

Such a kiosk sells one set amount per tap. Its taps take the till channel like any
till's, over the cluster's network to the front: the card registry, the deny list and
the replay windows live in the front, and a tap that bypassed them would bypass the
checks they make. Its sequence counter and offline queue are an LMDB on the reader's
host (`<data_dir>/till/<till id>`), so a restarted actor goes on where it stopped and
forwards what it sold while the front was out of reach.

The actor runs the agent on an event loop of its own, in a thread started by
`__init__`, so that a restart by Ray starts selling again with no call from the front.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import msgspec
import ray

from coopnode.actors.kernel.ray_calls import answer_of, named_actor
from coopnode.logs import configure_logging, get_logger
from coopnode.reader.felica import CardReader
from coopnode.reader.reader_taps import ReaderTaps, fixed_price_loop
from coopnode.reader.till_agent import TillAgent
from coopnode.reader.till_key import TillKeyFile, read_key_file
from coopnode.reader.till_state import TillState
from coopnode.settings import KioskSettings, Settings

log = get_logger(__name__)


def reader_resource(name: str) -> str:
    """The Ray resource a host holding reader `name` is started with."""
    return f"reader:{name}"


class ReaderActor:
    def __init__(self, settings_json: bytes, kiosk_json: bytes, node_urls: list[str]) -> None:
        settings = msgspec.json.decode(settings_json, type=Settings)
        kiosk = msgspec.json.decode(kiosk_json, type=KioskSettings)
        configure_logging(settings.log)
        self._settings = settings
        self._kiosk = kiosk
        # Its front's URL first, then the cluster's other fronts (`till.agent_node_urls`).
        self._node_urls = node_urls
        self._loop = asyncio.new_event_loop()
        self._ready: Future[str] = Future()
        self._stopped = asyncio.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"coopnode-reader-{kiosk.name}", daemon=True
        )
        self._thread.start()

    def till_id(self, timeout_s: float) -> str:
        """The till this reader sells for, once its agent runs; raises if it failed."""
        return self._ready.result(timeout=timeout_s)

    def stop(self, timeout_s: float) -> None:
        """Stop selling: the reader closes, the queue stays on disk for the next start."""
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._sell())
        except BaseException as error:
            if not self._ready.done():
                self._ready.set_exception(error)
            log.exception("reader actor stopped by an error", kiosk=self._kiosk.name)
        finally:
            self._loop.close()

    async def _sell(self) -> None:
        kiosk, settings = self._kiosk, self._settings
        key_file = read_key_file(Path(kiosk.key_path))
        reader = CardReader(msgspec.structs.replace(settings.reader, device_path=kiosk.device_path))
        # A kiosk's reader may be plugged in later: the actor waits for it, selling
        # nothing until then, rather than failing for good.
        reader.start(wait_for_device=True)
        try:
            state = TillState(
                settings.data_path / "till" / key_file.till_id,
                settings.till.agent_lmdb_map_size_mib * 1024 * 1024,
                fsync=settings.wallet.fsync,
            )
            try:
                await self._sell_with(key_file, ReaderTaps(reader), state)
            finally:
                state.close()
        finally:
            reader.stop()

    async def _sell_with(self, key_file: TillKeyFile, taps: ReaderTaps, state: TillState) -> None:
        kiosk = self._kiosk
        agent = TillAgent(key_file, self._node_urls, self._settings.till, state, taps)
        await agent.start()
        work = asyncio.get_running_loop().create_task(
            fixed_price_loop(agent, taps, kiosk.fixed_amount_yen)
        )
        log.info("reader actor selling", kiosk=kiosk.name, till_id=key_file.till_id)
        self._ready.set_result(key_file.till_id)
        try:
            await self._stopped.wait()
        finally:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            await agent.stop()


async def till_of(actor: Any, timeout_s: float) -> str:
    """The till id a reader actor sells for, once its agent runs (raises if it failed)."""
    till_id: str = await answer_of(actor.till_id.remote(timeout_s), None)
    return till_id


async def stop_reader_actor(actor: Any, timeout_s: float) -> None:
    """Stop the actor's sales (its queue stays on disk), then the actor itself."""
    try:
        await answer_of(actor.stop.remote(timeout_s), None)
    except Exception as error:  # A reader that died or never started has nothing to stop.
        log.info("reader actor was not running", error=type(error).__name__)
    ray.kill(actor, no_restart=True)


def start_reader_actor(settings: Settings, kiosk: KioskSettings, node_urls: list[str]) -> Any:
    """Create the reader actor of `kiosk` on the host whose Ray node holds the reader's
    resource (`reader_resource`); its till agent sells to the first of `node_urls` that
    takes it (its own front first)."""
    return named_actor(
        ReaderActor,
        f"reader-{kiosk.name}",
        settings,
        msgspec.json.encode(settings),
        msgspec.json.encode(kiosk),
        node_urls,
        resources={reader_resource(kiosk.name): 1},
    )
