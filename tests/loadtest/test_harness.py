"""The harness's open loop against a slow endpoint, and each scenario against a real node."""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest
from aiohttp import web

from coopnode.loadtest.harness import (
    HTTP_CONNECTIONS,
    Naming,
    Target,
    books_balanced,
    close,
    play,
    prepare,
)
from coopnode.loadtest.scenarios import Scenario, build_workload, load_scenario, parse_scenario
from tests.loadtest.test_openloop import serving
from tests.nodeproc import NodeProcess

SLOW = b"""
name = "slow"
duration_s = 2.0
mix = { charge_card = 1.0 }
[profile]
peak_rate_per_s = 100.0
arrival = "fixed"
points = [[0.0, 0.2], [0.5, 1.0], [1.0, 1.0]]
[population]
members = 10
"""
SERVICE_S = 0.02
# Member numbers of each scenario's run, apart from one another and from other tests'.
PREFIXES = {"lunch-rush": 4101, "term-start": 4102, "mixed": 4103}


async def test_a_rising_profile_keeps_its_schedule_against_a_slow_endpoint() -> None:
    """Requests leave on the profile's schedule although the server serves one at a time.

    The server takes 20 ms a request (50/s) while the profile offers up to 100/s, so a
    queue builds in front of it: a closed-loop client would send no faster than 50/s and
    report 20 ms latencies; the harness sends on schedule and its latencies include the
    time spent waiting in that queue.
    """
    scenario = parse_scenario(SLOW)
    ops = build_workload(scenario, 100.0, 2.0, seed=0)
    arrivals: list[float] = []
    lock = asyncio.Lock()
    # Nothing is answered until as many requests as the harness has connections are in:
    # a client that waited for answers before sending more would never get there.
    all_connections_busy = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        if len(arrivals) == HTTP_CONNECTIONS:
            all_connections_busy.set()
        await all_connections_busy.wait()
        async with lock:
            await asyncio.sleep(SERVICE_S)
        return web.json_response({"ok": True})

    async with serving(handler) as url:
        target = Target(url, "token", scenario, Naming(prefix=1234))
        figures = await play(target, ops, 100.0, 2.0, progress=False)
    result = figures.by_kind["charge_card"]
    assert len(ops) > HTTP_CONNECTIONS
    assert result.completed == len(ops) == len(arrivals)
    assert len(ops) * SERVICE_S > 2.5
    # The last requests waited behind the queue: their latency includes that wait.
    backlog_s = len(ops) * SERVICE_S - 2.0
    assert result.latency_max_ms > 0.7 * backlog_s * 1000
    assert result.latency_p50_ms > 2 * SERVICE_S * 1000
    # The per-second offered counts rise with the profile.
    assert figures.offered_per_second[1] > figures.offered_per_second[0]


def small(scenario: Scenario) -> Scenario:
    """The scenario shrunk to a few seconds' work for the suite."""
    population = msgspec.structs.replace(
        scenario.population,
        members=40,
        accounts=min(scenario.population.accounts, 2),
        lost_cards=min(scenario.population.lost_cards, 2),
    )
    tills = msgspec.structs.replace(scenario.tills, count=min(scenario.tills.count, 4))
    return msgspec.structs.replace(scenario, population=population, tills=tills)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lunch-rush", "term-start", "mixed"])
async def test_a_short_run_of_each_scenario_keeps_the_books_balanced(
    node: NodeProcess, name: str
) -> None:
    scenario = small(load_scenario(name))
    target = Target(node.url, node.token, scenario, Naming(prefix=PREFIXES[name]))
    ops = build_workload(scenario, 40.0, 2.0, scenario.seed)
    async with target.session() as session:
        try:
            await prepare(target, session)
            figures = await play(target, ops, 40.0, 2.0, progress=False)
        finally:
            await close(target)
    assert figures.operations == len(ops) > 0
    assert figures.overall.errors == 0, figures.overall.errors_by_reason
    assert figures.overall.completed == len(ops)
    if scenario.population.lost_cards and "tap" in figures.by_kind:
        assert figures.by_kind["report_lost"].completed == scenario.population.lost_cards
    assert await books_balanced(target)
