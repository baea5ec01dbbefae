"""The kiosks of `till.kiosks`: card readers on the cluster's hosts, run as reader actors.

Each kiosk is a till staff registered beforehand (`coopnode admin till add … --key-out
FILE`, the file then put at `key_path` on the reader's host); the node starts a reader
actor for it on the host that holds the Ray resource `reader:<name>`, and stops it with
the node. `coopnode serve --demo` adds the demo till's reader as one more kiosk, `demo`.
On the embedded local Ray the one host holds every kiosk's resource. A kiosk sells to
its own front first and then to the other fronts of `till.agent_node_urls`; on a
cluster its actor outlives its front (Ray actors there are detached), so when the front
is lost the kiosk moves to the next one, and a front started again finds its kiosks
still selling. A kiosk
whose key file is missing or unreadable is logged and left out: the node and the other
tills go on. A reader not plugged in yet is waited for (`CardReader.start`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from coopnode.actors.kernel.ray_calls import ActorCallFailed, with_absolute_paths
from coopnode.logs import get_logger
from coopnode.reader.reader_actor import (
    reader_resource,
    start_reader_actor,
    stop_reader_actor,
    till_of,
)
from coopnode.settings import KioskSettings, Settings

log = get_logger(__name__)

# A reader actor opens its reader and its files within this time, or it is left out.
READER_START_S = 60.0
# How long a reader actor gets to stop its sales before it is killed.
READER_STOP_S = 5.0


def kiosk_resources(names: Iterable[str]) -> dict[str, float]:
    """The resources of the local Ray's one host: the readers of these kiosks."""
    return {reader_resource(name): 1 for name in names}


class Kiosks:
    """The reader actors of some kiosks (the settings' and the demo's), started and
    stopped together."""

    def __init__(self, settings: Settings, node_url: str, kiosks: list[KioskSettings]) -> None:
        self._settings = with_absolute_paths(settings)
        # This front first, then the cluster's other fronts, without repeating this one.
        others = [url for url in settings.till.agent_node_urls if url.rstrip("/") != node_url]
        self.node_urls = [node_url, *others]
        self._kiosks = kiosks
        self._actors: list[Any] = []

    async def start(self) -> None:
        """Start every kiosk's actor at once, then wait for each to sell or fail."""
        self._actors = [
            start_reader_actor(self._settings, kiosk, self.node_urls) for kiosk in self._kiosks
        ]
        await asyncio.gather(
            *(
                self._started(kiosk.name, actor)
                for kiosk, actor in zip(self._kiosks, self._actors, strict=True)
            )
        )

    async def _started(self, name: str, actor: Any) -> None:
        try:
            till_id = await till_of(actor, READER_START_S)
        except ActorCallFailed as failed:
            log.error("kiosk reader did not start", kiosk=name, error=str(failed))
            return
        log.info("kiosk reader selling", kiosk=name, till_id=till_id)

    async def stop(self) -> None:
        for actor in self._actors:
            await stop_reader_actor(actor, READER_STOP_S)
        self._actors.clear()
