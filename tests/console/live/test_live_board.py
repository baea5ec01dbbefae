"""The live board: figures from the tills' counters at each sample, and their stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from aiohttp import ClientResponse

from coopnode.domain.money import Reason
from coopnode.domain.till_frames import Decision
from coopnode.http.console.live import LiveBoard
from coopnode.http.console.live.board import LiveFigures
from coopnode.settings import LiveSettings
from tests.console.tills.inprocess import STAFF, Console, console_app
from tests.http.test_till_hub import Connection

APPROVED = Decision(seq=1, kind="tap", approved=True, amount_yen=430)
DECLINED = Decision(seq=2, kind="tap", approved=False, reason=Reason.INSUFFICIENT_FUNDS)


class Clock:
    def __init__(self) -> None:
        self.now_s = 1_000.0

    def __call__(self) -> float:
        return self.now_s


async def add_tills(console: Console, store: str, count: int) -> list[str]:
    added = []
    for _ in range(count):
        answer = await console.client.post(
            "/api/v1/console/tills", json={"store": store, "kind": "shop"}, headers=STAFF
        )
        added.append((await answer.json())["till"]["till_id"])
    return added


async def test_taps_per_minute_declines_and_the_wait_per_store(console: Console) -> None:
    clock = Clock()
    settings = LiveSettings(sample_interval_s=10.0, window_s=60, service_s_per_member=12.0)
    north = await add_tills(console, "north", 2)
    south = await add_tills(console, "south", 1)
    for till_id in [*north, *south]:
        console.hub.attach(Connection(till_id))
    board = LiveBoard(console.hub, settings, clock_s=clock)
    # 30 s: north's two tills answer 6 taps (one declined), south's 1.
    for _ in range(5):
        console.tap(north[0], APPROVED)
    console.tap(north[1], DECLINED)
    console.tap(south[0], APPROVED)
    clock.now_s += 30.0
    figures = board.sample()
    by_store = {store.store: store for store in figures.stores}
    assert figures.tills_connected == 3
    assert by_store["north"].taps_in_window == 6 and by_store["north"].taps_per_min == 12.0
    assert by_store["north"].declines_in_window == {"insufficient_funds": 1}
    assert figures.declines_in_window == {"insufficient_funds": 1}
    # ρ = 12/min · 12 s / (60 s · 2 tills) = 1.2: more than two tills can serve.
    assert by_store["north"].over_capacity and by_store["north"].wait_s is None
    # South: 2/min, one till, ρ = 0.4: Wq = 12 · 0.4 / 0.6 = 8 s.
    assert by_store["south"].taps_per_min == 2.0 and by_store["south"].wait_s == 8

    # A minute later with no taps, the window has moved past them.
    for _ in range(6):
        clock.now_s += 10.0
        figures = board.sample()
    by_store = {store.store: store for store in figures.stores}
    assert by_store["north"].taps_in_window == 0 and by_store["north"].declines_in_window == {}
    assert by_store["north"].wait_s == 0
    assert figures.taps_since_start == 7


async def read_event(response: ClientResponse) -> LiveFigures:
    lines = []
    while True:
        line = (await response.content.readline()).decode().rstrip("\n")
        if not line:
            break
        lines.append(line)
    assert lines[0] == "event: figures"
    return msgspec.json.decode(lines[1].removeprefix("data: "), type=LiveFigures)


async def test_the_stream_sends_the_figures_then_each_sample(console: Console) -> None:
    [till_id] = await add_tills(console, "north", 1)
    console.hub.attach(Connection(till_id))
    async with console.client.get(
        "/api/v1/console/live/events", headers={**STAFF, "Accept": "text/event-stream"}
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        first = await read_event(response)
        assert first.taps_since_start == 0
        console.tap(till_id, APPROVED)
        console.tap(till_id, DECLINED)
        console.board.sample()
        second = await read_event(response)
        assert second.taps_since_start == 2
        assert second.declines_in_window == {"insufficient_funds": 1}
        assert [store.tills_connected for store in second.stores] == [1]
    snapshot = await console.client.get("/api/v1/console/live", headers=STAFF)
    assert msgspec.json.decode(await snapshot.read(), type=LiveFigures) == second


@pytest.fixture
async def one_watcher(tmp_path: Path) -> AsyncIterator[Console]:
    async for made in console_app(tmp_path, LiveSettings(sample_interval_s=60.0, watchers_max=1)):
        yield made


async def test_no_more_watchers_than_the_bound(one_watcher: Console) -> None:
    headers = {**STAFF, "Accept": "text/event-stream"}
    async with one_watcher.client.get("/api/v1/console/live/events", headers=headers) as first:
        await read_event(first)
        second = await one_watcher.client.get("/api/v1/console/live/events", headers=headers)
        assert second.status == 503
        assert (await second.json())["reason"] == "overloaded"
    assert one_watcher.board.watchers <= 1


async def test_a_client_that_does_not_ask_for_a_stream_gets_one_event(console: Console) -> None:
    """Under the request timeout like any request: the figures once, and the end."""
    answer = await console.client.get("/api/v1/console/live/events", headers=STAFF)
    assert answer.status == 200
    body = await answer.read()
    assert body.startswith(b"event: figures\ndata: {") and body.endswith(b"}\n\n")
    assert body.count(b"event: figures") == 1
    assert console.board.watchers == 0
