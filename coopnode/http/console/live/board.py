"""The live board: samples the front's till counters at a fixed interval and keeps the
latest figures for the watchers.

Nothing here runs per tap. At each interval the sampler sums the tills' counters
(`tills/activity.py`) by store, keeps the sums in a ring of the last `window_s` seconds,
and computes each store's taps in the window, its declines by reason in the window, its
connected tills and its queue-wait estimate (`domain/queue_wait.py`). The figures are
encoded once as JSON and every watcher is woken to send the same bytes: a watcher costs
one write per interval, whatever the tap rate.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable

import msgspec
from aiohttp import web

from coopnode.domain.queue_wait import estimate_wait
from coopnode.http.tills.hub import TillHub
from coopnode.settings import LiveSettings

# Live boards never wait on the ring for more samples than this, whatever the settings
# say: the settings bound window over interval to at most 3,000 (600 s at 0.2 s).
_SAMPLES_MAX = 3_002


class StoreFigures(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    store: str
    tills_connected: int
    taps_in_window: int
    taps_per_min: float
    declines_in_window: dict[str, int]  # reason → count
    utilisation: float
    wait_s: int | None  # None: no till connected, or over capacity
    over_capacity: bool


class LiveFigures(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    at_ms: int
    window_s: int
    sample_interval_s: float
    service_s_per_member: float
    tills_connected: int
    stores: list[StoreFigures]
    declines_in_window: dict[str, int]
    taps_since_start: int


class _Sample:
    __slots__ = ("at_s", "declines", "taps")

    def __init__(self, at_s: float, taps: dict[str, int], declines: dict[tuple[str, str], int]):
        self.at_s = at_s
        self.taps = taps
        self.declines = declines


class WatchersFull(Exception):
    """As many live views are open as `live.watchers_max` allows."""


class LiveBoard:
    def __init__(
        self,
        hub: TillHub,
        settings: LiveSettings,
        *,
        clock_s: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._hub = hub
        self._settings = settings
        self._clock_s = clock_s
        self._wall_ms = wall_ms
        kept = min(_SAMPLES_MAX, int(settings.window_s / settings.sample_interval_s) + 2)
        self._samples: deque[_Sample] = deque(maxlen=kept)
        self._samples.append(self._take())
        self._changed = asyncio.Event()
        self._stopped = False
        self.watchers = 0
        self.version = 0
        self.figures = self._figures(self._samples[-1], self._samples[0])
        self.latest = msgspec.json.encode(self.figures)

    def _take(self) -> _Sample:
        taps: dict[str, int] = {}
        declines: dict[tuple[str, str], int] = {}
        for counters in list(self._hub.activity.tills.values()):
            taps[counters.store] = taps.get(counters.store, 0) + counters.taps
            for reason, count in list(counters.declines.items()):
                key = (counters.store, reason)
                declines[key] = declines.get(key, 0) + count
        return _Sample(self._clock_s(), taps, declines)

    def sample(self) -> LiveFigures:
        """Take a sample, compute the figures and wake every watcher."""
        now = self._take()
        self._samples.append(now)
        # The baseline is the newest sample at or before the window's start, so that the
        # window is whole (or, just after the start, as long as the board has run).
        window_start_s = now.at_s - self._settings.window_s
        while len(self._samples) > 2 and self._samples[1].at_s <= window_start_s:
            self._samples.popleft()
        self.figures = self._figures(now, self._samples[0])
        self.latest = msgspec.json.encode(self.figures)
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()
        return self.figures

    def _connected_by_store(self) -> dict[str, int]:
        connected: dict[str, int] = {}
        for till_id in list(self._hub.connections):
            till = self._hub.tills.get(till_id)
            if till is not None:
                connected[till.store] = connected.get(till.store, 0) + 1
        return connected

    def _figures(self, now: _Sample, oldest: _Sample) -> LiveFigures:
        connected = self._connected_by_store()
        elapsed_s = now.at_s - oldest.at_s
        stores: list[StoreFigures] = []
        all_declines: dict[str, int] = {}
        for store in sorted(set(now.taps) | set(connected)):
            taps = now.taps.get(store, 0) - oldest.taps.get(store, 0)
            per_min = taps * 60.0 / elapsed_s if elapsed_s > 0 else 0.0
            declines = {
                reason: count - oldest.declines.get((at, reason), 0)
                for (at, reason), count in sorted(now.declines.items())
                if at == store and count > oldest.declines.get((at, reason), 0)
            }
            for reason, count in declines.items():
                all_declines[reason] = all_declines.get(reason, 0) + count
            wait = estimate_wait(
                per_min, connected.get(store, 0), self._settings.service_s_per_member
            )
            stores.append(
                StoreFigures(
                    store=store,
                    tills_connected=connected.get(store, 0),
                    taps_in_window=taps,
                    taps_per_min=round(per_min, 1),
                    declines_in_window=declines,
                    utilisation=round(wait.utilisation, 2),
                    wait_s=wait.wait_s,
                    over_capacity=wait.over_capacity,
                )
            )
        return LiveFigures(
            at_ms=self._wall_ms(),
            window_s=self._settings.window_s,
            sample_interval_s=self._settings.sample_interval_s,
            service_s_per_member=self._settings.service_s_per_member,
            tills_connected=sum(connected.values()),
            stores=stores,
            declines_in_window=dict(sorted(all_declines.items())),
            taps_since_start=sum(now.taps.values()),
        )

    async def run(self) -> None:
        """Sample at the interval until stopped."""
        while not self._stopped:
            await asyncio.sleep(self._settings.sample_interval_s)
            self.sample()

    def stop(self) -> None:
        """End the sampler's loop and every watcher's stream."""
        self._stopped = True
        self._changed.set()

    async def watch(self) -> AsyncGenerator[bytes, None]:
        """The latest figures now, then each new figures, until the board stops. At most
        `watchers_max` at once (WatchersFull)."""
        if self.watchers >= self._settings.watchers_max:
            raise WatchersFull(f"{self.watchers} live views are open; close one")
        self.watchers += 1
        try:
            seen = self.version
            yield self.latest
            while not self._stopped:
                changed = self._changed
                if self.version == seen:
                    await changed.wait()
                if self._stopped:
                    return
                seen = self.version
                yield self.latest
        finally:
            self.watchers -= 1


live_board_key = web.AppKey("live_board", LiveBoard)
