"""The open-loop generator against small aiohttp servers started in the test.

Each test asserts something a closed-loop generator, or one that measures latency from
the actual send, would get wrong: requests reach a slow server on schedule, the queue in
front of it shows in the latencies, and a saturated server is found by the search.
What a test asserts holds however slow the machine is: answers are held by the server
until the generator has done what is being tested, and timings are asserted as lower
bounds, which a slower machine only exceeds by more.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import msgspec
import pytest
from aiohttp import web

from coopnode.loadtest.openloop import (
    LoadConfigError,
    RequestSpec,
    find_max_rate,
    judge_step,
    run_open_loop,
    schedule_offsets_s,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

GET = RequestSpec()
# Sends later than this count as late. The test loop waits in epoll, whose millisecond
# timeouts make lags near 1 ms routine, and the machine's two cores are shared with other
# work, which delays a runnable process by several milliseconds at times. A closed-loop
# generator would fall behind by hundreds of milliseconds in these tests.
LAG_THRESHOLD_MS = 25.0


def get_root(index: int) -> RequestSpec:
    return GET


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    """Serve `handler` for every path on a free local port; yield the base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def serialized(service_s: float, arrivals: list[float]) -> Handler:
    """A handler that serves one request at a time, each taking `service_s`.

    It notes when each request arrived, before it joins the queue for the lock.
    """
    lock = asyncio.Lock()

    async def handler(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        async with lock:
            await asyncio.sleep(service_s)
        return web.json_response({"ok": True})

    return handler


async def answer_ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def test_requests_leave_on_schedule_though_no_answer_has_come() -> None:
    # The server answers nothing until all 40 requests of the run have reached it: an
    # open-loop generator sends them all; one that waits for answers would send one and
    # time out. Then it serves them one at a time, 50 ms each.
    arrivals: list[float] = []
    every_request_in = asyncio.Event()
    serve = serialized(0.05, arrivals)

    arrived = 0

    async def held_until_all_arrived(request: web.Request) -> web.StreamResponse:
        nonlocal arrived
        arrived += 1
        if arrived == 40:
            every_request_in.set()
        await every_request_in.wait()
        return await serve(request)

    async with serving(held_until_all_arrived) as url:
        result = await run_open_loop(
            url, get_root, 40, 1.0, 64, schedule_lag_threshold_ms=LAG_THRESHOLD_MS
        )

    assert (result.scheduled, result.sent, result.completed, result.errors) == (40, 40, 40, 0)
    assert len(arrivals) == 40
    # Latency counts from the intended send, so the wait for the last arrival and the
    # queue behind the one-at-a-time server are in it: the last request waits at least
    # its 40 services of 50 ms minus the 39/40 s that it was meant to leave after the first.
    assert result.latency_max_ms > 40 * 50 - 975
    assert result.elapsed_s > 2.0


async def test_one_connection_queues_in_the_client_and_the_queue_is_measured() -> None:
    # 40 requests at 40/s over one connection to a server that serves 20/s: it needs 2 s
    # for what is offered in 1 s, so request i, meant to leave at i/40 s, answers no
    # sooner than (i + 1) × 50 ms; a slower machine only makes the waits longer.
    arrivals: list[float] = []
    async with serving(serialized(0.05, arrivals)) as url:
        result = await run_open_loop(
            url, get_root, 40, 1.0, 1, schedule_lag_threshold_ms=LAG_THRESHOLD_MS
        )

    assert (result.scheduled, result.sent, result.completed, result.errors) == (40, 40, 40, 0)
    # Latency counts from the intended send, so the queue's wait is in it: the last
    # request waits about 40 × 50 ms − 39/40 s ≈ 1 s, far beyond one 50 ms service.
    assert result.latency_p50_ms > 250
    assert result.latency_p99_ms > 700
    assert result.latency_max_ms > 40 * 50 - 975
    assert result.elapsed_s > 1.8


async def test_fixed_rate_sends_rate_times_duration_paced_over_the_run() -> None:
    arrivals: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        return web.json_response({"ok": True})

    async with serving(handler) as url:
        result = await run_open_loop(
            url, get_root, 200, 1.0, schedule_lag_threshold_ms=LAG_THRESHOLD_MS
        )

    assert (result.scheduled, result.sent, result.completed) == (200, 200, 200)
    assert result.achieved_rate_per_s == pytest.approx(200)
    # Paced, not burst: the last request leaves 199/200 s after the first at the earliest
    # (a generator that sent at once would have them all in within milliseconds).
    assert max(arrivals) - min(arrivals) > 0.99 - LAG_THRESHOLD_MS / 1000
    assert sum(window.completed for window in result.time_series) == 200


def test_fixed_schedule_is_evenly_spaced() -> None:
    offsets_s = list(schedule_offsets_s(100, 0.1))
    assert offsets_s == pytest.approx([index / 100 for index in range(10)])


async def test_poisson_schedule_is_reproducible_from_its_seed() -> None:
    first = list(schedule_offsets_s(500, 2.0, "poisson", seed=7))
    again = list(schedule_offsets_s(500, 2.0, "poisson", seed=7))
    other = list(schedule_offsets_s(500, 2.0, "poisson", seed=8))

    assert first == again
    assert first != other
    assert 850 <= len(first) <= 1150
    assert first == sorted(first)
    assert first[0] > 0
    assert first[-1] < 2.0
    # Exponential gaps have a coefficient of variation near 1; fixed gaps have none.
    gaps = [later - earlier for earlier, later in itertools.pairwise(first)]
    assert 0.8 < statistics.stdev(gaps) / statistics.mean(gaps) < 1.2

    async with serving(answer_ok) as url:
        result = await run_open_loop(url, get_root, 200, 0.5, arrival="poisson", seed=3)
    assert result.scheduled == len(list(schedule_offsets_s(200, 0.5, "poisson", seed=3)))
    assert result.completed == result.scheduled


async def test_errors_are_counted_by_reason() -> None:
    answered = 0

    async def every_other_declined(request: web.Request) -> web.Response:
        nonlocal answered
        answered += 1
        if answered % 2 == 0:
            return web.json_response({"error": "declined"}, status=402)
        if answered % 5 == 0:
            return web.json_response({"ok": False})
        return web.json_response({"ok": True})

    def check(status: int, body: bytes) -> str | None:
        return None if msgspec.json.decode(body) == {"ok": True} else "not_ok"

    async with serving(every_other_declined) as url:
        result = await run_open_loop(url, get_root, 100, 1.0, check=check)

    # Of 100 answers the even ones are 402; odd multiples of 5 (5, 15, ..., 95) fail check.
    assert result.errors_by_reason == {"http_402": 50, "not_ok": 10}
    assert (result.completed, result.errors) == (40, 60)
    assert result.error_fraction() == pytest.approx(0.6)


async def test_timeouts_refusals_and_the_outstanding_cap_are_counted() -> None:
    answer = asyncio.Event()

    async def stuck(request: web.Request) -> web.Response:
        await answer.wait()  # No answer before every request of both runs has ended.
        return web.json_response({"ok": True})

    async with serving(stuck) as url:
        timed_out = await run_open_loop(url, get_root, 20, 0.25, request_timeout_s=0.2)
        # The first three requests stay outstanding until well after the generator has
        # offered the other seven (within 0.25 s): each of those finds the cap reached.
        capped = await run_open_loop(
            url, get_root, 40, 0.25, outstanding_max=3, request_timeout_s=3.0
        )
        answer.set()
    assert timed_out.errors_by_reason == {"timeout": 5}
    # A timed-out request is recorded at its elapsed time, a lower bound of its latency.
    assert timed_out.latency_p50_ms >= 200
    assert capped.errors_by_reason == {"timeout": 3, "dropped_by_generator": 7}
    assert (capped.sent, capped.dropped_by_generator) == (3, 7)

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    refused = await run_open_loop(f"http://127.0.0.1:{closed_port}", get_root, 20, 0.25)
    assert refused.errors_by_reason == {"connection": 5}


async def test_judge_blames_the_generator_before_the_node() -> None:
    async with serving(answer_ok) as url:
        result = await run_open_loop(url, get_root, 50, 0.2)
    # The measured run only supplies a well-formed result; its figures are set here.
    met = msgspec.structs.replace(result, late_sends=0, errors=0, latency_p99_ms=5.0)
    behind = msgspec.structs.replace(met, late_sends=met.sent, latency_p99_ms=900.0)
    slow = msgspec.structs.replace(met, latency_p99_ms=900.0)
    failing = msgspec.structs.replace(met, errors=2, latency_p99_ms=900.0)

    assert judge_step(met, 100.0)[0] == "held"
    assert judge_step(behind, 100.0)[0] == "generator"
    assert judge_step(failing, 100.0)[0] == "errors"
    assert judge_step(slow, 100.0)[0] == "p99"


async def test_capacity_search_finds_a_rate_between_half_and_all_of_capacity() -> None:
    # A server that "holds" 100 requests a second: at rates above that it keeps every
    # answer 3 s, far beyond the 1 s objective; below it, it answers at once. The verdicts
    # are the server's by construction: only a machine stalled for a second could blur them.
    over_capacity_hold_s = 3.0
    indices: list[int] = []
    step_of_index: list[float] = []

    def factory(index: int) -> RequestSpec:
        indices.append(index)
        return RequestSpec(headers={"Idempotency-Key": f"key-{index}"})

    async def rated(request: web.Request) -> web.Response:
        index = int(request.headers["Idempotency-Key"].removeprefix("key-"))
        if step_of_index[index] > 100:
            await asyncio.sleep(over_capacity_hold_s)
        return web.json_response({"ok": True})

    # Steps of 1 s: 30, 60 and 120 requests, then the midpoint 90: which step each
    # request index belongs to is known before the search starts.
    for rate in (30, 60, 120, 90):
        step_of_index.extend([rate] * rate)

    async with serving(rated) as url:
        search = await find_max_rate(
            url,
            factory,
            start_rate=30,
            step_factor=2,
            p99_objective_ms=1_000,
            duration_s=1.0,
            max_rate=400,
            schedule_lag_threshold_ms=LAG_THRESHOLD_MS,
            late_fraction_max=1.0,
            pause_between_steps_s=0.1,
        )

    assert search.max_rate_held_per_s == 90
    assert search.limited_by == "p99"
    rates = [step.rate_per_s for step in search.steps]
    assert rates == [30, 60, 120, 90]
    assert [step.verdict for step in search.steps] == ["held", "held", "p99", "held"]
    # Indices continue across steps, so keys derived from them never repeat.
    assert indices == list(range(len(indices))) and len(indices) == len(step_of_index)


async def test_bounds_are_checked() -> None:
    with pytest.raises(LoadConfigError):
        await run_open_loop("http://127.0.0.1:1", get_root, 0, 1.0)
    with pytest.raises(LoadConfigError):
        await run_open_loop("http://127.0.0.1:1", get_root, 10, 1.0, connections=0)
    with pytest.raises(LoadConfigError):
        await find_max_rate("http://127.0.0.1:1", get_root, 1, 1.01, 10, 1.0, 1e5)


async def test_command_line_drives_the_trivial_server_from_separate_processes() -> None:
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coopnode.loadtest.trivial",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        announced = await asyncio.wait_for(server.stdout.readline(), timeout=10)
        port = int(announced.decode().removeprefix("listening on "))
        generator = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "coopnode.loadtest.openloop",
            "--url",
            f"http://127.0.0.1:{port}/",
            "--rate",
            "100",
            "--duration",
            "0.5",
            "--method",
            "POST",
            "--body",
            '{"amount_yen": 480}',
            "--unique-header",
            "Idempotency-Key",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(generator.communicate(), timeout=20)
    finally:
        server.terminate()
        await server.wait()

    assert generator.returncode == 0, stderr.decode()
    # Stdout is exactly one JSON document; the readable line goes to stderr.
    document = msgspec.json.decode(stdout)
    assert document["mode"] == "run"
    assert document["result"]["completed"] == 50
    assert document["result"]["errors_by_reason"] == {}
    assert b"offered 100/s fixed" in stderr
