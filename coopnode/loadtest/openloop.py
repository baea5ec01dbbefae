"""An open-loop HTTP load generator, a capacity search built on it, and its command line.

Open loop means every request leaves at its scheduled time whether or not earlier ones have
answered, so a slow node meets a growing queue, as it would in the lunch-hour rush, rather
than a polite client that waits for it. Latency is measured from the time a request was
*meant* to leave, not from the time it left: a generator that measures from the actual send
hides the very queueing it caused ("coordinated omission"). Time a request spends waiting
for a free pooled connection is therefore part of its latency.

The generator also watches itself. It records how late each send was against its own
schedule and counts the sends later than a threshold, so a saturated generator (one core
of Python driving thousands of requests a second) is reported as such and never mistaken
for a slow node. Requests in flight are capped; a send that would exceed the cap is counted
as "dropped_by_generator" instead of being queued without bound.

Public surface:

    RequestSpec, RequestFactory, ResponseCheck   what each request is; what counts as an error
    schedule_offsets_s(...)                      the send schedule, fixed rate or Poisson
    run_open_loop(...) -> RunResult              one run at one offered rate
    judge_step(...) -> (Verdict, detail)         whether a run met the objective, and why not
    find_max_rate(...) -> SearchResult           geometric rate steps, then one bisection
    event_loop_factory(...), uvloop_factory()    the loop a generator process should run on
    main()                                       `python -m coopnode.loadtest.openloop --help`

Errors:

    ValueError
     └── LoadConfigError   an argument outside its bounds (rate, duration, connections, ...)

A failed request is an outcome, not an exception: it is counted by reason ("http_402",
"timeout", "connection", "protocol", "dropped_by_generator", or the reason `check` gave).

Long, and kept whole: the generator, its recorder and the search share one schedule
and one recorder, and `python -m coopnode.loadtest.openloop` is their command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import importlib
import math
import random
import secrets
import selectors
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Literal

import aiohttp
import msgspec
from hdrh.histogram import HdrHistogram
from yarl import URL

from coopnode.loadtest.pacing import Pacer

# The pool size most single-client benchmarks use; enough for a node answering in a few
# milliseconds to be driven at thousands of requests a second.
CONNECTIONS_DEFAULT = 64
# One process holding more sockets than this to one node runs into file-descriptor limits.
CONNECTIONS_MAX = 4096
# Requests in flight at once, pooled or waiting for a connection. Each costs a task and a
# few kilobytes; past this the node is so far behind that queueing more would only measure
# the generator's memory.
OUTSTANDING_MAX_DEFAULT = 10_000
# A request unanswered after this long counts as a "timeout"; it also bounds how long a run
# waits for its stragglers after the last scheduled send.
REQUEST_TIMEOUT_S_DEFAULT = 10.0
# A send later than this against its schedule counts as late. On the select() loop the
# command line runs on, sends land within about 0.3 ms; on a loop with millisecond timers
# (epoll, uvloop) lags up to 1.2 ms are routine, and 2 ms is the fairer threshold there.
SCHEDULE_LAG_THRESHOLD_MS_DEFAULT = 1.0
# select() cannot watch descriptors numbered 1024 or more; this many sockets leave room
# for the process's other descriptors.
SELECT_CONNECTIONS_MAX = 512
# The capacity search rejects a step in which more than this share of requests failed.
ERROR_FRACTION_MAX_DEFAULT = 0.01
# The capacity search rejects a step in which more than this share of sends were late:
# past it the generator, not the node, sets the pace.
LATE_FRACTION_MAX_DEFAULT = 0.01
# The pause between search steps lets the node finish background work from the last step.
PAUSE_BETWEEN_STEPS_S_DEFAULT = 0.5
# A search plan with more steps than this is a typo in its rates, not a benchmark.
SEARCH_STEPS_MAX = 64
# A run is a benchmark step, not a soak test; the maximum bounds the schedule's length.
DURATION_MIN_S = 0.01
DURATION_MAX_S = 3600.0
# Rates outside these are typos: below, a short run sends nothing; above is far beyond
# what one Python process can drive.
RATE_MIN_PER_S = 0.01
RATE_MAX_PER_S = 1_000_000.0
# Ten million requests in flight would be gigabytes of tasks; more is a typo.
OUTSTANDING_MAX_LIMIT = 10_000_000
# Latencies are recorded in microseconds from 1 µs to 60 s with 3 significant digits;
# anything slower is clamped to 60 s, which is far beyond any till's patience.
LATENCY_LOWEST_US = 1
LATENCY_HIGHEST_US = 60_000_000
LATENCY_SIGNIFICANT_DIGITS = 3
# The first send is scheduled this long after a run starts, so that opening the run does
# not make the first sends late.
SCHEDULE_START_DELAY_S = 0.05
# A generator behind its schedule yields to the event loop after this many sends in a row,
# so that responses are still read while it catches up.
BURST_YIELD_EVERY = 64
# The time series has one entry per window of this length.
WINDOW_S = 1.0
DROPPED_BY_GENERATOR = "dropped_by_generator"

Arrival = Literal["fixed", "poisson"]
Verdict = Literal["held", "p99", "errors", "generator"]
EventLoopKind = Literal["auto", "select", "uvloop", "asyncio"]


class LoadConfigError(ValueError):
    """An argument of a run or a search is outside its bounds."""


class RequestSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One request: the path is appended to the run's base URL; the body is JSON bytes."""

    method: str = "GET"
    path: str = "/"
    body: bytes | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)


RequestFactory = Callable[[int], RequestSpec]
# Given the status and body of a 2xx response, returns why it is an error, or None.
ResponseCheck = Callable[[int, bytes], str | None]


class WindowStats(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What completed in one window of the run, by the time each response arrived."""

    second: int
    completed: int
    errors: int
    throughput_per_s: float
    p50_ms: float
    p99_ms: float


class RunResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The outcome of one run. Latencies count from each request's intended send time."""

    base_url: str
    arrival: str
    offered_rate_per_s: float
    duration_s: float
    connections: int
    # Requests the schedule called for, requests actually sent, and successful answers.
    scheduled: int
    sent: int
    completed: int
    errors: int
    errors_by_reason: dict[str, int]
    # Successful answers per second of the schedule's duration.
    achieved_rate_per_s: float
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    latency_p999_ms: float
    latency_max_ms: float
    latency_mean_ms: float
    schedule_lag_threshold_ms: float
    late_sends: int
    schedule_lag_p99_ms: float
    schedule_lag_max_ms: float
    # The p99 counted from each request's actual send instead of its scheduled one: the
    # latency with the generator's own lateness taken out, for deciding whom to blame
    # when the objective broke, never for the objective itself.
    sent_to_answer_p99_ms: float = 0.0
    dropped_by_generator: int
    # From the first scheduled send to the last answer.
    elapsed_s: float
    time_series: list[WindowStats]

    def error_fraction(self) -> float:
        return self.errors / self.scheduled if self.scheduled else 0.0

    def late_fraction(self) -> float:
        return self.late_sends / self.sent if self.sent else 0.0

    def to_dict(self) -> dict[str, Any]:
        built: dict[str, Any] = msgspec.to_builtins(self)
        return built

    def format_line(self) -> str:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.errors_by_reason.items()))
        return (
            f"offered {self.offered_rate_per_s:.0f}/s {self.arrival}"
            f" | achieved {self.achieved_rate_per_s:.1f}/s"
            f" | sent {self.sent}/{self.scheduled}"
            f" | errors {self.errors}{f' ({reasons})' if reasons else ''}"
            f" | latency ms p50 {self.latency_p50_ms:.2f} p90 {self.latency_p90_ms:.2f}"
            f" p99 {self.latency_p99_ms:.2f} p99.9 {self.latency_p999_ms:.2f}"
            f" max {self.latency_max_ms:.2f}"
            f" | late sends {self.late_sends} (>{self.schedule_lag_threshold_ms:g} ms,"
            f" max lag {self.schedule_lag_max_ms:.2f} ms)"
        )


class SearchStep(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    rate_per_s: float
    verdict: Verdict
    detail: str
    result: RunResult

    @property
    def held(self) -> bool:
        return self.verdict == "held"

    def format_line(self) -> str:
        return f"[{self.verdict}: {self.detail}] {self.result.format_line()}"


class SearchResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The highest offered rate that held (0 if none did) and every step on the way."""

    max_rate_held_per_s: float
    p99_objective_ms: float
    # What stopped the search: a verdict of the failing step, or "max_rate".
    limited_by: str
    steps: list[SearchStep]

    def to_dict(self) -> dict[str, Any]:
        built: dict[str, Any] = msgspec.to_builtins(self)
        return built

    def format_line(self) -> str:
        return (
            f"max rate held {self.max_rate_held_per_s:.0f}/s"
            f" (p99 objective {self.p99_objective_ms:g} ms, limited by {self.limited_by},"
            f" {len(self.steps)} steps)"
        )


def schedule_offsets_s(
    rate_per_s: float, duration_s: float, arrival: Arrival = "fixed", seed: int = 0
) -> Iterator[float]:
    """Yield each request's send time in seconds from the start of the run, in order.

    Fixed arrivals are evenly spaced; Poisson arrivals have exponential gaps drawn from a
    generator seeded with `seed`, so the same seed gives the same schedule.
    """
    if arrival == "fixed":
        # The epsilon keeps 0.1 s × 100/s from rounding down to 9 requests.
        count = math.floor(rate_per_s * duration_s + 1e-9)
        return (index / rate_per_s for index in range(count))
    if arrival == "poisson":
        return _poisson_offsets_s(rate_per_s, duration_s, random.Random(seed))
    raise LoadConfigError(f"arrival must be 'fixed' or 'poisson', not {arrival!r}")


def _poisson_offsets_s(
    rate_per_s: float, duration_s: float, generator: random.Random
) -> Iterator[float]:
    offset_s = generator.expovariate(rate_per_s)
    while offset_s < duration_s:
        yield offset_s
        offset_s += generator.expovariate(rate_per_s)


def _new_histogram() -> Any:
    return HdrHistogram(LATENCY_LOWEST_US, LATENCY_HIGHEST_US, LATENCY_SIGNIFICANT_DIGITS)


def _to_us(seconds: float) -> int:
    return min(max(round(seconds * 1e6), LATENCY_LOWEST_US), LATENCY_HIGHEST_US)


def _percentile_ms(histogram: Any, percentile: float) -> float:
    if histogram.get_total_count() == 0:
        return 0.0
    return float(histogram.get_value_at_percentile(percentile)) / 1000.0


class Recorder:
    """Counts and histograms of one run, filled by the dispatcher and the request tasks.

    Completions are recorded at the time they happen, so the windows of the time series
    fill in order and only one is open at a time.
    """

    def __init__(self, start_s: float, lag_threshold_s: float) -> None:
        self.start_s = start_s
        self.lag_threshold_s = lag_threshold_s
        self.latency_us = _new_histogram()
        self.sent_to_answer_us = _new_histogram()
        self.lag_us = _new_histogram()
        self.errors: Counter[str] = Counter()
        self.sent = 0
        self.completed = 0
        self.late_sends = 0
        self.max_lag_s = 0.0
        self.series: list[WindowStats] = []
        self._window_index = 0
        self._window_latency_us = _new_histogram()
        self._window_completed = 0
        self._window_errors = 0

    def record_send(self, lag_s: float) -> None:
        self.sent += 1
        self.lag_us.record_value(_to_us(lag_s))
        self.max_lag_s = max(self.max_lag_s, lag_s)
        if lag_s > self.lag_threshold_s:
            self.late_sends += 1

    def record_outcome(
        self,
        intended_s: float,
        now_s: float,
        reason: str | None,
        measured: bool,
        sent_s: float | None = None,
    ) -> None:
        """Record one request's end; `measured` says whether its latency means anything.

        `sent_s` is when it really left (its scheduled time when not given).
        """
        self._advance_window(now_s)
        if measured:
            latency_us = _to_us(now_s - intended_s)
            self.latency_us.record_value(latency_us)
            self.sent_to_answer_us.record_value(
                _to_us(now_s - (intended_s if sent_s is None else sent_s))
            )
            self._window_latency_us.record_value(latency_us)
        if reason is None:
            self.completed += 1
            self._window_completed += 1
        else:
            self.errors[reason] += 1
            self._window_errors += 1

    def result(
        self,
        base_url: str,
        arrival: Arrival,
        rate_per_s: float,
        duration_s: float,
        connections: int,
        end_s: float,
    ) -> RunResult:
        dropped = self.errors[DROPPED_BY_GENERATOR]
        return RunResult(
            base_url=base_url,
            arrival=arrival,
            offered_rate_per_s=rate_per_s,
            duration_s=duration_s,
            connections=connections,
            scheduled=self.sent + dropped,
            sent=self.sent,
            completed=self.completed,
            errors=sum(self.errors.values()),
            errors_by_reason=dict(self.errors),
            achieved_rate_per_s=self.completed / duration_s,
            latency_p50_ms=_percentile_ms(self.latency_us, 50.0),
            latency_p90_ms=_percentile_ms(self.latency_us, 90.0),
            latency_p99_ms=_percentile_ms(self.latency_us, 99.0),
            latency_p999_ms=_percentile_ms(self.latency_us, 99.9),
            latency_max_ms=_percentile_ms(self.latency_us, 100.0),
            latency_mean_ms=float(self.latency_us.get_mean_value()) / 1000.0,
            schedule_lag_threshold_ms=self.lag_threshold_s * 1000.0,
            late_sends=self.late_sends,
            schedule_lag_p99_ms=_percentile_ms(self.lag_us, 99.0),
            schedule_lag_max_ms=max(self.max_lag_s, 0.0) * 1000.0,
            sent_to_answer_p99_ms=_percentile_ms(self.sent_to_answer_us, 99.0),
            dropped_by_generator=dropped,
            elapsed_s=max(end_s - self.start_s, 0.0),
            time_series=self.series,
        )

    def finish(self, now_s: float) -> None:
        self._advance_window(now_s)
        self._close_window()

    def _advance_window(self, now_s: float) -> None:
        index = max(0, int((now_s - self.start_s) / WINDOW_S))
        while self._window_index < index:
            self._close_window()

    def _close_window(self) -> None:
        self.series.append(
            WindowStats(
                second=self._window_index,
                completed=self._window_completed,
                errors=self._window_errors,
                throughput_per_s=self._window_completed / WINDOW_S,
                p50_ms=_percentile_ms(self._window_latency_us, 50.0),
                p99_ms=_percentile_ms(self._window_latency_us, 99.0),
            )
        )
        self._window_index += 1
        self._window_latency_us.reset()
        self._window_completed = 0
        self._window_errors = 0


def _classify(status: int, body: bytes, check: ResponseCheck | None) -> str | None:
    if not 200 <= status < 300:
        return f"http_{status}"
    return check(status, body) if check is not None else None


async def _send_one(
    session: aiohttp.ClientSession,
    recorder: Recorder,
    url: str,
    spec: RequestSpec,
    intended_s: float,
    check: ResponseCheck | None,
) -> None:
    # The send is timed when the task first runs, which is when the request really starts.
    sent_s = time.monotonic()
    recorder.record_send(sent_s - intended_s)
    reason: str | None
    measured = True
    try:
        async with session.request(
            spec.method, url, data=spec.body, headers=spec.headers
        ) as response:
            body = await response.read()
        reason = _classify(response.status, body, check)
    except TimeoutError:
        # A timed-out request is recorded at its elapsed time, a lower bound of its real
        # latency; leaving it out would hide exactly the slowest requests.
        reason = "timeout"
    except aiohttp.ClientConnectionError:
        # A refused or reset connection fails fast; its time says nothing about latency.
        reason, measured = "connection", False
    except aiohttp.ClientError:
        reason, measured = "protocol", False
    recorder.record_outcome(intended_s, time.monotonic(), reason, measured, sent_s)


async def _dispatch(
    session: aiohttp.ClientSession,
    recorder: Recorder,
    base_url: str,
    factory: RequestFactory,
    offsets_s: Iterator[float],
    first_index: int,
    outstanding_max: int,
    check: ResponseCheck | None,
) -> None:
    """Start each request at its scheduled time, then wait for every answer."""
    outstanding: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []

    def on_done(task: asyncio.Task[None]) -> None:
        outstanding.discard(task)
        if not task.cancelled() and (failure := task.exception()) is not None:
            failures.append(failure)

    pacer = Pacer(BURST_YIELD_EVERY)
    try:
        for position, offset_s in enumerate(offsets_s):
            intended_s = recorder.start_s + offset_s
            await pacer.until(intended_s)
            # A `check` that raises is a programmer error; hiding it would yield a wrong
            # figure, so the run stops with it.
            if failures:
                raise failures[0]
            if len(outstanding) >= outstanding_max:
                recorder.record_outcome(intended_s, time.monotonic(), DROPPED_BY_GENERATOR, False)
                continue
            spec = factory(first_index + position)
            send = _send_one(session, recorder, base_url + spec.path, spec, intended_s, check)
            task = asyncio.create_task(send)
            outstanding.add(task)
            task.add_done_callback(on_done)
        while outstanding:
            await asyncio.wait(set(outstanding))
        if failures:
            raise failures[0]
    finally:
        pending = list(outstanding)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Collect the generator's garbage before a run's schedule starts, then pause Python's
    cycle collector until its last answer.

    A full collection of the capacity harness's heap took 38–63 ms on the reference machine, long
    enough to make every send due meanwhile late (about 75 at 1,266 taps/s). Reference
    counting still frees everything that is not in a cycle, and a run's workload is
    bounded, so the cycles it leaves until the collector resumes are. (The till generator's
    full passes took 12–27 ms at 2,000 taps/s; the HTTP generator's grew to 290 ms over a
    run at 2,700 requests/s.)
    """
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check_bound(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise LoadConfigError(f"{name} must be between {low:g} and {high:g}, not {value!r}")


def _check_run_bounds(
    rate_per_s: float,
    duration_s: float,
    connections: int,
    outstanding_max: int,
    request_timeout_s: float,
    schedule_lag_threshold_ms: float,
) -> None:
    _check_bound("rate_per_s", rate_per_s, RATE_MIN_PER_S, RATE_MAX_PER_S)
    _check_bound("duration_s", duration_s, DURATION_MIN_S, DURATION_MAX_S)
    _check_bound("connections", connections, 1, CONNECTIONS_MAX)
    _check_bound("outstanding_max", outstanding_max, 1, OUTSTANDING_MAX_LIMIT)
    _check_bound("request_timeout_s", request_timeout_s, 0.001, LATENCY_HIGHEST_US / 1e6)
    _check_bound("schedule_lag_threshold_ms", schedule_lag_threshold_ms, 0.0, 60_000.0)


async def run_open_loop(
    base_url: str,
    factory: RequestFactory,
    rate_per_s: float,
    duration_s: float,
    connections: int = CONNECTIONS_DEFAULT,
    arrival: Arrival = "fixed",
    seed: int = 0,
    check: ResponseCheck | None = None,
    *,
    first_index: int = 0,
    outstanding_max: int = OUTSTANDING_MAX_DEFAULT,
    request_timeout_s: float = REQUEST_TIMEOUT_S_DEFAULT,
    schedule_lag_threshold_ms: float = SCHEDULE_LAG_THRESHOLD_MS_DEFAULT,
) -> RunResult:
    """Offer `rate_per_s` requests a second for `duration_s`, open loop, and measure them.

    Request `i` of the run is `factory(first_index + i)`; a 2xx response is an error when
    `check(status, body)` returns a reason. The run opens its own pool of `connections`
    and returns once every request has answered, failed or timed out.
    """
    _check_run_bounds(
        rate_per_s,
        duration_s,
        connections,
        outstanding_max,
        request_timeout_s,
        schedule_lag_threshold_ms,
    )
    offsets_s = schedule_offsets_s(rate_per_s, duration_s, arrival, seed)
    base_url = base_url.rstrip("/")
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=request_timeout_s)
    with collector_paused():
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            start_s = time.monotonic() + SCHEDULE_START_DELAY_S
            recorder = Recorder(start_s, schedule_lag_threshold_ms / 1000.0)
            await _dispatch(
                session, recorder, base_url, factory, offsets_s, first_index, outstanding_max,
                check,
            )  # fmt: skip
            end_s = time.monotonic()
    recorder.finish(end_s)
    return recorder.result(base_url, arrival, rate_per_s, duration_s, connections, end_s)


def judge_step(
    result: RunResult,
    p99_objective_ms: float,
    error_fraction_max: float = ERROR_FRACTION_MAX_DEFAULT,
    late_fraction_max: float = LATE_FRACTION_MAX_DEFAULT,
) -> tuple[Verdict, str]:
    """Say whether a run met the objective and, if not, what broke it."""
    # The generator is judged first: when it is behind its schedule, latencies counted
    # from that schedule include its own lag, and blaming the node would be wrong.
    if result.late_fraction() > late_fraction_max:
        return "generator", (
            f"generator behind schedule: {result.late_fraction():.1%} of sends later than"
            f" {result.schedule_lag_threshold_ms:g} ms (max lag"
            f" {result.schedule_lag_max_ms:.1f} ms)"
        )
    if result.error_fraction() > error_fraction_max:
        return "errors", f"errors {result.error_fraction():.2%} > {error_fraction_max:.2%}"
    if result.latency_p99_ms > p99_objective_ms:
        return "p99", f"p99 {result.latency_p99_ms:.2f} ms > {p99_objective_ms:g} ms"
    return "held", f"p99 {result.latency_p99_ms:.2f} ms <= {p99_objective_ms:g} ms"


def _geometric_rates(start_rate: float, step_factor: float, max_rate: float) -> list[float]:
    _check_bound("start_rate", start_rate, RATE_MIN_PER_S, RATE_MAX_PER_S)
    _check_bound("step_factor", step_factor, 1.05, 10.0)
    _check_bound("max_rate", max_rate, start_rate, RATE_MAX_PER_S)
    rates = [start_rate]
    while rates[-1] < max_rate:
        rates.append(min(rates[-1] * step_factor, max_rate))
        if len(rates) > SEARCH_STEPS_MAX:
            raise LoadConfigError(
                f"{start_rate:g}/s to {max_rate:g}/s by ×{step_factor:g} takes more than"
                f" {SEARCH_STEPS_MAX} steps; raise start_rate or step_factor"
            )
    return rates


class _Stepper:
    """Runs the steps of a search, continuing request indices from one step to the next."""

    def __init__(
        self,
        run: Callable[..., Awaitable[RunResult]],
        judge: Callable[[RunResult], tuple[Verdict, str]],
        pause_between_steps_s: float,
        on_step: Callable[[SearchStep], None] | None,
    ) -> None:
        self.steps: list[SearchStep] = []
        self._run = run
        self._judge = judge
        self._pause_between_steps_s = pause_between_steps_s
        self._on_step = on_step
        self._next_index = 0

    async def step(self, rate_per_s: float) -> SearchStep:
        if self.steps:
            await asyncio.sleep(self._pause_between_steps_s)
        result = await self._run(rate_per_s=rate_per_s, first_index=self._next_index)
        self._next_index += result.scheduled
        verdict, detail = self._judge(result)
        step = SearchStep(rate_per_s=rate_per_s, verdict=verdict, detail=detail, result=result)
        self.steps.append(step)
        if self._on_step is not None:
            self._on_step(step)
        return step


async def find_max_rate(
    base_url: str,
    factory: RequestFactory,
    start_rate: float,
    step_factor: float,
    p99_objective_ms: float,
    duration_s: float,
    max_rate: float,
    connections: int = CONNECTIONS_DEFAULT,
    arrival: Arrival = "fixed",
    seed: int = 0,
    check: ResponseCheck | None = None,
    *,
    bisect: bool = True,
    error_fraction_max: float = ERROR_FRACTION_MAX_DEFAULT,
    late_fraction_max: float = LATE_FRACTION_MAX_DEFAULT,
    outstanding_max: int = OUTSTANDING_MAX_DEFAULT,
    request_timeout_s: float = REQUEST_TIMEOUT_S_DEFAULT,
    schedule_lag_threshold_ms: float = SCHEDULE_LAG_THRESHOLD_MS_DEFAULT,
    pause_between_steps_s: float = PAUSE_BETWEEN_STEPS_S_DEFAULT,
    on_step: Callable[[SearchStep], None] | None = None,
) -> SearchResult:
    """Find the highest offered rate at which the node meets the p99 objective.

    Rates rise geometrically from `start_rate` by `step_factor` up to `max_rate` until a
    step breaks the objective (p99, errors, or the generator's own schedule); with `bisect`
    one more step at the midpoint of the last rate that held and the first that broke
    narrows the answer. Request indices continue across steps, so a factory that derives
    idempotency keys from them never repeats one.
    """
    rates = _geometric_rates(start_rate, step_factor, max_rate)
    _check_bound("pause_between_steps_s", pause_between_steps_s, 0.0, DURATION_MAX_S)
    run = functools.partial(
        run_open_loop,
        base_url,
        factory,
        duration_s=duration_s,
        connections=connections,
        arrival=arrival,
        seed=seed,
        check=check,
        outstanding_max=outstanding_max,
        request_timeout_s=request_timeout_s,
        schedule_lag_threshold_ms=schedule_lag_threshold_ms,
    )
    judge = functools.partial(
        judge_step,
        p99_objective_ms=p99_objective_ms,
        error_fraction_max=error_fraction_max,
        late_fraction_max=late_fraction_max,
    )
    stepper = _Stepper(run, judge, pause_between_steps_s, on_step)
    held_rate = 0.0
    broken: SearchStep | None = None
    for rate_per_s in rates:
        step = await stepper.step(rate_per_s)
        if not step.held:
            broken = step
            break
        held_rate = rate_per_s
    if bisect and broken is not None and held_rate > 0:
        step = await stepper.step((held_rate + broken.rate_per_s) / 2)
        if step.held:
            held_rate = step.rate_per_s
        else:
            broken = step
    return SearchResult(
        max_rate_held_per_s=held_rate,
        p99_objective_ms=p99_objective_ms,
        limited_by=broken.verdict if broken is not None else "max_rate",
        steps=stepper.steps,
    )


def uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when uvloop is installed, else None; it is optional."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _select_event_loop() -> asyncio.AbstractEventLoop:
    return asyncio.SelectorEventLoop(selectors.SelectSelector())


def event_loop_factory(
    kind: EventLoopKind = "auto", connections: int = CONNECTIONS_DEFAULT
) -> tuple[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The name and factory of the event loop a generator process should run on.

    A schedule is only as precise as the loop's timers. asyncio's default loop waits in
    epoll, whose timeout is in whole milliseconds, and uvloop's libuv timers count whole
    milliseconds too, so on either a send routinely lands up to about 1.2 ms late; a loop
    over select(), whose timeout is in microseconds, keeps sends within about 0.3 ms.
    "auto" therefore takes select() when the pool fits under its descriptor limit, then
    uvloop when it is installed (it is cheaper per request), then asyncio's default loop.
    """
    uvloop = uvloop_factory()
    if kind == "auto":
        if connections <= SELECT_CONNECTIONS_MAX:
            kind = "select"
        else:
            kind = "uvloop" if uvloop is not None else "asyncio"
    if kind == "select":
        if connections > SELECT_CONNECTIONS_MAX:
            raise LoadConfigError(
                f"the select loop serves at most {SELECT_CONNECTIONS_MAX} connections"
            )
        return "select", _select_event_loop
    if kind == "uvloop":
        if uvloop is None:
            raise LoadConfigError("uvloop is not installed")
        return "uvloop", uvloop
    return "asyncio", asyncio.new_event_loop


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m coopnode.loadtest.openloop",
        description=(
            "Open-loop HTTP load: one readable line per run on stderr, then one JSON"
            " document on stdout."
        ),
    )
    parser.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8080/path")
    parser.add_argument("--rate", type=float, default=1000.0, help="requests/s (search: start)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--method", default="GET", type=str.upper)
    parser.add_argument("--body", help="a JSON request body")
    parser.add_argument(
        "--header", action="append", default=[], help="'Name: value'; may be repeated"
    )
    parser.add_argument(
        "--unique-header", help="a header given a unique value per request (Idempotency-Key)"
    )
    parser.add_argument("--connections", type=int, default=CONNECTIONS_DEFAULT)
    parser.add_argument(
        "--loop",
        choices=("auto", "select", "uvloop", "asyncio"),
        default="auto",
        help="event loop; auto prefers select() for its microsecond timers",
    )
    parser.add_argument("--arrival", choices=("fixed", "poisson"), default="fixed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout-s", type=float, default=REQUEST_TIMEOUT_S_DEFAULT)
    parser.add_argument("--outstanding-max", type=int, default=OUTSTANDING_MAX_DEFAULT)
    parser.add_argument("--lag-threshold-ms", type=float, default=SCHEDULE_LAG_THRESHOLD_MS_DEFAULT)
    parser.add_argument("--search", action="store_true", help="find the highest rate that held")
    parser.add_argument("--objective-ms", type=float, default=15.0, help="search: p99 objective")
    parser.add_argument("--step-factor", type=float, default=1.5, help="search: rate multiplier")
    parser.add_argument("--max-rate", type=float, default=100_000.0, help="search: highest rate")
    parser.add_argument("--no-bisect", action="store_true", help="search: skip the bisection")
    return parser


def _cli_request(args: argparse.Namespace) -> tuple[str, RequestFactory]:
    """The base URL and request factory the command line describes."""
    url = URL(args.url)
    if not url.absolute or url.scheme not in ("http", "https"):
        raise LoadConfigError(f"--url must be an absolute http(s) URL, not {args.url!r}")
    headers: dict[str, str] = {}
    for line in args.header:
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise LoadConfigError(f"--header must look like 'Name: value', not {line!r}")
        headers[name.strip()] = value.strip()
    body: bytes | None = None
    if args.body is not None:
        body = args.body.encode()
        try:
            msgspec.json.decode(body)
        except msgspec.DecodeError as error:
            raise LoadConfigError(f"--body is not JSON: {error}") from error
        headers.setdefault("Content-Type", "application/json")
    path = url.raw_path_qs or "/"
    spec = RequestSpec(method=args.method, path=path, body=body, headers=headers)
    unique_header: str | None = args.unique_header
    if unique_header is None:
        return str(url.origin()), lambda index: spec
    # The prefix keeps keys unique across separate invocations against the same node.
    prefix = secrets.token_hex(6)

    def factory(index: int) -> RequestSpec:
        unique = {**headers, unique_header: f"{prefix}-{index}"}
        return RequestSpec(method=args.method, path=path, body=body, headers=unique)

    return str(url.origin()), factory


def _print_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def _cli_run(
    args: argparse.Namespace, base_url: str, factory: RequestFactory
) -> dict[str, Any]:
    bounds: dict[str, Any] = {
        "connections": args.connections,
        "arrival": args.arrival,
        "seed": args.seed,
        "outstanding_max": args.outstanding_max,
        "request_timeout_s": args.timeout_s,
        "schedule_lag_threshold_ms": args.lag_threshold_ms,
    }
    if not args.search:
        result = await run_open_loop(base_url, factory, args.rate, args.duration, **bounds)
        _print_line(result.format_line())
        return {"mode": "run", "result": result.to_dict()}
    search = await find_max_rate(
        base_url,
        factory,
        start_rate=args.rate,
        step_factor=args.step_factor,
        p99_objective_ms=args.objective_ms,
        duration_s=args.duration,
        max_rate=args.max_rate,
        bisect=not args.no_bisect,
        on_step=lambda step: _print_line(step.format_line()),
        **bounds,
    )
    _print_line(search.format_line())
    return {"mode": "search", "result": search.to_dict()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        loop_name, loop_factory = event_loop_factory(args.loop, args.connections)
        base_url, factory = _cli_request(args)
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            document = runner.run(_cli_run(args, base_url, factory))
    except LoadConfigError as error:
        parser.error(str(error))
    document["event_loop"] = loop_name
    sys.stdout.write(msgspec.json.encode(document).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
