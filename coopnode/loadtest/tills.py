"""Open-loop load over the till channel: simulated tills, one sealed frame per tap.

The HTTP generator (`openloop.py`) sends requests; a till sends frames on a WebSocket it
keeps open, so this is its WebSocket twin. Every simulated till connects and passes the
node's Ed25519 challenge like a real one; taps are then spread round-robin over the tills
at a fixed total rate, each tap its own frame sealed with the till's session key (never
several taps in one message),
and each latency runs from the tap's *intended* send time to its `Decision`, so a node
that falls behind is seen queueing (no coordinated omission). The figures use
`openloop`'s report types and verdicts, so both generators are judged alike.

Frames are sealed before a run starts, so that the generator spends nothing on them
during the measured window.

    python -m coopnode.loadtest.tills --setup SETUP.json --rate-fixed 2000 --duration 10
    python -m coopnode.loadtest.tills --setup SETUP.json --search --rate 2000
    python -m coopnode.loadtest.tills --setup SETUP.json --closed-tills 64 --duration 20

The last is closed loop, for capacity: each of the first 64 tills keeps one tap in flight
and sends the next when the decision comes (as each pgbench client runs one transaction
after another), so the rate is whatever the node sustains.

The setup file (`TillLoadSetup`) names the node, the tills with their keys and the cards;
with `fronts`, the tills are dealt out over a cluster's fronts in turn (`fronts.py`).

Long, and kept whole: simulated tills and their recorder share the sealed frames.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from hdrh.histogram import HdrHistogram
from nacl.signing import SigningKey

from coopnode.domain.till_frames import (
    Challenge,
    CloseCode,
    Decision,
    DenyUpdate,
    TapBody,
    Welcome,
    frame_encoder,
    node_frame_decoder,
    seal_body,
)
from coopnode.loadtest.fronts import front_of_till
from coopnode.loadtest.openloop import (
    ERROR_FRACTION_MAX_DEFAULT,
    LATENCY_HIGHEST_US,
    LATENCY_LOWEST_US,
    LATENCY_SIGNIFICANT_DIGITS,
    SCHEDULE_START_DELAY_S,
    RunResult,
    SearchResult,
    SearchStep,
    Verdict,
    collector_paused,
    event_loop_factory,
    judge_step,
)
from coopnode.loadtest.pacing import Pacer
from coopnode.till_keys import open_session_key, sign_auth

# A run waits this long after its last send for the stragglers; later is a timeout.
DRAIN_TIMEOUT_S = 10.0
# Sends on the select() loop land within ~0.3 ms when the generator has a core to itself;
# beside a busy node on two cores 2 ms is the fair threshold for "late".
LAG_THRESHOLD_MS = 2.0
# The generator yields to its readers after this many sends in a row when behind.
BURST_YIELD_EVERY = 32
AUTH_TIMEOUT_S = 10.0
# A front learns of a till registered through another front from the registry, within
# `till.registry_refresh_s` (5 s by default); a minute of refusals means it never will.
CONNECT_PATIENCE_S = 60.0
# How long a till refused as unknown waits before it connects again.
CONNECT_RETRY_S = 0.5


class TillSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    till_id: str
    signing_key_hex: str


class TillLoadSetup(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    url: str
    tills: list[TillSpec]
    idms: list[str]
    amount_yen: int = 100
    # Where each till's sequence numbers start: a second load process against the same
    # tills must not reuse the first one's numbers (the node would refuse them as replays).
    first_seq: int = 1
    # A cluster's fronts, when the tills are spread over several: till i connects to
    # fronts[i mod n]. Empty: every till connects to `url`.
    fronts: list[str] = []

    def front_urls(self) -> list[str]:
        return self.fronts or [self.url]


class TillRefused(RuntimeError):
    """The node closed a till's connection before welcoming it; `code` says why."""

    def __init__(self, till_id: str, code: int | None) -> None:
        super().__init__(f"{till_id}: the node closed the connection (code {code})")
        self.code = code


class SimTill:
    """One simulated till: an authenticated connection and the decisions it receives."""

    def __init__(self, url: str, spec: TillSpec, first_seq: int = 1) -> None:
        self.url = url.rstrip("/") + "/till/ws"
        self.till_id = spec.till_id
        self.key = SigningKey(bytes.fromhex(spec.signing_key_hex))
        self.next_seq = first_seq
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.session_key = b""
        self.intended: dict[int, float] = {}
        self.deny_seen: dict[str, float] = {}
        self.on_decision: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse) -> bytes:
        message = await ws.receive(timeout=AUTH_TIMEOUT_S)
        if message.type is not aiohttp.WSMsgType.BINARY:
            await ws.close()
            raise TillRefused(self.till_id, ws.close_code)
        data: bytes = message.data
        return data

    async def connect(self, session: aiohttp.ClientSession) -> Welcome:
        self.ws = ws = await session.ws_connect(self.url, max_msg_size=16 << 20, compress=0)
        challenge = node_frame_decoder.decode(await self._receive(ws))
        if not isinstance(challenge, Challenge):
            raise RuntimeError(f"{self.till_id}: expected a challenge")
        auth = sign_auth(self.key, challenge.nonce, self.till_id)
        await ws.send_bytes(frame_encoder.encode(auth))
        welcome = node_frame_decoder.decode(await self._receive(ws))
        if not isinstance(welcome, Welcome):
            raise RuntimeError(f"{self.till_id}: the node did not welcome the till")
        self.session_key = open_session_key(self.key, welcome.session_key_box)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return welcome

    async def connect_patiently(
        self, session: aiohttp.ClientSession, patience_s: float = CONNECT_PATIENCE_S
    ) -> Welcome:
        """Connect, again while the front does not know this till yet (see CONNECT_PATIENCE_S)."""
        deadline = time.monotonic() + patience_s
        while True:
            try:
                return await self.connect(session)
            except TillRefused as refused:
                waiting = refused.code in (CloseCode.UNKNOWN_TILL, CloseCode.TRY_AGAIN)
                if not waiting or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(CONNECT_RETRY_S)

    async def _read(self) -> None:
        if self.ws is None:
            return
        async for message in self.ws:
            if message.type is not aiohttp.WSMsgType.BINARY:
                break
            now_s = time.monotonic()
            frame = node_frame_decoder.decode(message.data)
            if isinstance(frame, Decision):
                intended_s = self.intended.pop(frame.seq, None)
                if intended_s is not None and self.on_decision is not None:
                    self.on_decision(intended_s, now_s, frame)
            elif isinstance(frame, DenyUpdate):
                for idm in frame.blocked:
                    self.deny_seen.setdefault(idm, now_s)

    def seal(self, body: TapBody) -> bytes:
        """A tap as a connected till sends it: sealed with the connection's session key."""
        return frame_encoder.encode(seal_body(self.session_key, body))

    def sign_taps(self, idms: Sequence[str], amount_yen: int) -> list[tuple[int, bytes]]:
        """Seal the next taps of this till now, before the run measures anything."""
        frames = []
        for idm in idms:
            body = TapBody(
                till_id=self.till_id,
                seq=self.next_seq,
                idm=idm,
                amount_yen=amount_yen,
                at_ms=time.time_ns() // 1_000_000,
            )
            frames.append((self.next_seq, self.seal(body)))
            self.next_seq += 1
        return frames

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


class _Recorder:
    def __init__(self) -> None:
        self.latency_us = HdrHistogram(
            LATENCY_LOWEST_US, LATENCY_HIGHEST_US, LATENCY_SIGNIFICANT_DIGITS
        )
        self.lag_us = HdrHistogram(
            LATENCY_LOWEST_US, LATENCY_HIGHEST_US, LATENCY_SIGNIFICANT_DIGITS
        )
        self.errors: Counter[str] = Counter()
        self.sent = 0
        self.completed = 0
        self.late_sends = 0
        self.max_lag_s = 0.0
        self.answered = 0
        self.expected = 0
        self.start_s = 0.0
        self.all_answered = asyncio.Event()

    def send(self, lag_s: float) -> None:
        self.sent += 1
        self.lag_us.record_value(_us(lag_s))
        self.max_lag_s = max(self.max_lag_s, lag_s)
        if lag_s > LAG_THRESHOLD_MS / 1000:
            self.late_sends += 1

    def decision(self, intended_s: float, now_s: float, decision: Decision) -> None:
        self.answered += 1
        if self.answered >= self.expected:
            self.all_answered.set()
        self.latency_us.record_value(_us(now_s - intended_s))
        if decision.approved:
            self.completed += 1
        else:
            self.errors[str(decision.reason)] += 1


def _us(seconds: float) -> int:
    return min(max(round(seconds * 1e6), LATENCY_LOWEST_US), LATENCY_HIGHEST_US)


def _ms(histogram: Any, percentile: float) -> float:
    if histogram.get_total_count() == 0:
        return 0.0
    return float(histogram.get_value_at_percentile(percentile)) / 1000.0


async def run_tills(
    tills: list[SimTill], idms: list[str], amount_yen: int, rate_per_s: float, duration_s: float
) -> RunResult:
    """Send `rate_per_s` taps a second for `duration_s`, round-robin over the tills."""
    count = math.floor(rate_per_s * duration_s + 1e-9)
    rng = random.Random(f"{rate_per_s}-{tills[0].next_seq}")
    per_till = [
        till.sign_taps([rng.choice(idms) for _ in range(count // len(tills) + 1)], amount_yen)
        for till in tills
    ]
    recorder = _Recorder()
    recorder.expected = count
    for till in tills:
        till.on_decision = recorder.decision
    with collector_paused():
        await _send_schedule(tills, per_till, recorder, rate_per_s, count)
    end_s = time.monotonic()
    recorder.errors["timeout"] += count - recorder.answered
    for till in tills:
        till.intended.clear()
    return _result(tills, recorder, rate_per_s, duration_s, count, end_s - recorder.start_s)


async def _send_schedule(
    tills: list[SimTill],
    per_till: list[list[tuple[int, bytes]]],
    recorder: _Recorder,
    rate_per_s: float,
    count: int,
) -> None:
    """Send the sealed frames on schedule, then wait for the last decisions."""
    start_s = recorder.start_s = time.monotonic() + SCHEDULE_START_DELAY_S
    pacer = Pacer(BURST_YIELD_EVERY)
    for index in range(count):
        intended_s = start_s + index / rate_per_s
        await pacer.until(intended_s)
        till = tills[index % len(tills)]
        seq, frame = per_till[index % len(tills)][index // len(tills)]
        till.intended[seq] = intended_s
        recorder.send(time.monotonic() - intended_s)
        if till.ws is not None:
            await till.ws.send_bytes(frame)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(recorder.all_answered.wait(), DRAIN_TIMEOUT_S)


def _result(
    tills: list[SimTill],
    recorder: _Recorder,
    rate_per_s: float,
    duration_s: float,
    count: int,
    elapsed_s: float,
) -> RunResult:
    errors = {reason: number for reason, number in recorder.errors.items() if number}
    return RunResult(
        base_url=tills[0].url,
        arrival="fixed",
        offered_rate_per_s=rate_per_s,
        duration_s=duration_s,
        connections=len(tills),
        scheduled=count,
        sent=recorder.sent,
        completed=recorder.completed,
        errors=sum(errors.values()),
        errors_by_reason=errors,
        achieved_rate_per_s=recorder.completed / duration_s,
        latency_p50_ms=_ms(recorder.latency_us, 50.0),
        latency_p90_ms=_ms(recorder.latency_us, 90.0),
        latency_p99_ms=_ms(recorder.latency_us, 99.0),
        latency_p999_ms=_ms(recorder.latency_us, 99.9),
        latency_max_ms=_ms(recorder.latency_us, 100.0),
        latency_mean_ms=float(recorder.latency_us.get_mean_value()) / 1000.0,
        schedule_lag_threshold_ms=LAG_THRESHOLD_MS,
        late_sends=recorder.late_sends,
        schedule_lag_p99_ms=_ms(recorder.lag_us, 99.0),
        schedule_lag_max_ms=recorder.max_lag_s * 1000.0,
        dropped_by_generator=0,
        elapsed_s=elapsed_s,
        time_series=[],
    )


class ClosedRunResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A closed-loop run: latencies count from each tap's send, which waited for the last."""

    tills: int
    duration_s: float
    approved: int
    errors: int
    errors_by_reason: dict[str, int]
    # Approved taps per second, from the first send to the last decision.
    approved_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_p999_ms: float
    latency_max_ms: float
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        built: dict[str, Any] = msgspec.to_builtins(self)
        return built

    def format_line(self) -> str:
        return (
            f"closed loop, {self.tills} tills | approved {self.approved_per_s:.1f}/s"
            f" | errors {self.errors} | latency ms p50 {self.latency_p50_ms:.2f}"
            f" p99 {self.latency_p99_ms:.2f} p99.9 {self.latency_p999_ms:.2f}"
        )


class _ClosedTill:
    """One till of a closed-loop run: its next tap leaves when its last one is decided."""

    def __init__(self, till: SimTill, recorder: _Recorder) -> None:
        self.till = till
        self.recorder = recorder
        self.waiting: dict[int, asyncio.Future[Decision]] = {}
        till.on_decision = self.decided

    def decided(self, sent_s: float, now_s: float, decision: Decision) -> None:
        future = self.waiting.pop(decision.seq, None)
        if future is None or future.done():
            return  # The answer to a tap that timed out: already counted.
        self.recorder.latency_us.record_value(_us(now_s - sent_s))
        future.set_result(decision)

    async def drive(
        self, idms: list[str], rng: random.Random, amount_yen: int, end_s: float
    ) -> None:
        loop = asyncio.get_running_loop()
        if self.till.ws is None:
            raise RuntimeError(f"{self.till.till_id} is not connected")
        # At least one tap, as each pgbench client runs at least one transaction.
        while True:
            seq, frame = self.till.sign_taps([rng.choice(idms)], amount_yen)[0]
            future: asyncio.Future[Decision] = loop.create_future()
            self.waiting[seq] = future
            self.till.intended[seq] = time.monotonic()
            self.recorder.sent += 1
            await self.till.ws.send_bytes(frame)
            try:
                decision = await asyncio.wait_for(future, DRAIN_TIMEOUT_S)
            except TimeoutError:
                self.waiting.pop(seq, None)
                self.till.intended.pop(seq, None)
                self.recorder.errors["timeout"] += 1
            else:
                if decision.approved:
                    self.recorder.completed += 1
                else:
                    self.recorder.errors[str(decision.reason)] += 1
            if time.monotonic() >= end_s:
                return


async def run_closed(
    tills: list[SimTill], idms: list[str], amount_yen: int, duration_s: float
) -> ClosedRunResult:
    """Each till sends a tap, waits for its decision and sends the next, for `duration_s`."""
    recorder = _Recorder()
    rng = random.Random(f"closed-{len(tills)}-{tills[0].next_seq}")
    drivers = [_ClosedTill(till, recorder) for till in tills]
    with collector_paused():
        start_s = time.monotonic()
        end_s = start_s + duration_s
        await asyncio.gather(*(d.drive(idms, rng, amount_yen, end_s) for d in drivers))
        elapsed_s = time.monotonic() - start_s
    for till in tills:
        till.on_decision = None
    errors = {reason: number for reason, number in recorder.errors.items() if number}
    return ClosedRunResult(
        tills=len(tills),
        duration_s=duration_s,
        approved=recorder.completed,
        errors=sum(errors.values()),
        errors_by_reason=errors,
        approved_per_s=recorder.completed / elapsed_s,
        latency_p50_ms=_ms(recorder.latency_us, 50.0),
        latency_p99_ms=_ms(recorder.latency_us, 99.0),
        latency_p999_ms=_ms(recorder.latency_us, 99.9),
        latency_max_ms=_ms(recorder.latency_us, 100.0),
        elapsed_s=elapsed_s,
    )


def judge_till_step(result: RunResult, objective_ms: float) -> tuple[Verdict, str]:
    """A search step's verdict, by the capacity harness's rule (harness.judge).

    Latencies count from each tap's scheduled send, so a late send's lag is inside the
    latency judged: it can make the node look slower, never faster. A step that met the
    objective therefore held however late the generator was; one that broke it while the
    generator was behind is put down to the generator (openloop.judge_step).
    """
    verdict, detail = judge_step(result, objective_ms)
    within = result.latency_p99_ms <= objective_ms
    if verdict == "generator" and within and result.error_fraction() <= ERROR_FRACTION_MAX_DEFAULT:
        return "held", (
            f"p99 {result.latency_p99_ms:.2f} ms <= {objective_ms:g} ms although the {detail}"
            ", inside the latency"
        )
    return verdict, detail


async def search_tills(
    tills: list[SimTill],
    setup: TillLoadSetup,
    start_rate: float,
    step_factor: float,
    objective_ms: float,
    duration_s: float,
    max_rate: float,
) -> SearchResult:
    """Raise the rate geometrically until p99 breaks the objective, then bisect once.

    A broken step is run once more before it counts (as the capacity harness does): one
    stall of a shared two-core machine would otherwise end the search on its own. Steps
    are judged as the capacity harness judges them (`judge_till_step`)."""
    steps: list[SearchStep] = []
    held = 0.0
    broken: SearchStep | None = None

    async def attempt(rate: float) -> SearchStep:
        result = await run_tills(tills, setup.idms, setup.amount_yen, rate, duration_s)
        verdict, detail = judge_till_step(result, objective_ms)
        done = SearchStep(rate_per_s=rate, verdict=verdict, detail=detail, result=result)
        steps.append(done)
        print(done.format_line(), file=sys.stderr, flush=True)
        await asyncio.sleep(0.5)
        return done

    async def step(rate: float) -> SearchStep:
        done = await attempt(rate)
        return done if done.held else await attempt(rate)

    rate = start_rate
    while rate <= max_rate:
        done = await step(rate)
        if not done.held:
            broken = done
            break
        held = rate
        rate *= step_factor
    if broken is not None and held > 0:
        middle = await step((held + broken.rate_per_s) / 2)
        held = middle.rate_per_s if middle.held else held
    return SearchResult(
        max_rate_held_per_s=held,
        p99_objective_ms=objective_ms,
        limited_by=broken.verdict if broken is not None else "max_rate",
        steps=steps,
    )


async def connect_all(setup: TillLoadSetup, session: aiohttp.ClientSession) -> list[SimTill]:
    urls = setup.front_urls()
    tills = [
        SimTill(urls[front_of_till(index, len(urls))], spec, setup.first_seq)
        for index, spec in enumerate(setup.tills)
    ]
    await asyncio.gather(*(till.connect_patiently(session) for till in tills))
    return tills


async def _main(args: argparse.Namespace, setup: TillLoadSetup) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        tills = await connect_all(setup, session)
        try:
            document: dict[str, Any] = {}
            if args.rate_fixed:
                fixed = await run_tills(
                    tills, setup.idms, setup.amount_yen, args.rate_fixed, args.duration
                )
                print(fixed.format_line(), file=sys.stderr, flush=True)
                document["fixed"] = fixed.to_dict()
            if args.closed_tills:
                closed = await run_closed(
                    tills[: args.closed_tills], setup.idms, setup.amount_yen, args.duration
                )
                print(closed.format_line(), file=sys.stderr, flush=True)
                document["closed"] = closed.to_dict()
            if args.search:
                search = await search_tills(
                    tills, setup, args.rate, args.step_factor, args.objective_ms,
                    args.search_duration, args.max_rate,
                )  # fmt: skip
                document["search"] = search.to_dict()
            return document
        finally:
            await asyncio.gather(*(till.close() for till in tills))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coopnode.loadtest.tills", description=__doc__)
    parser.add_argument("--setup", required=True, help="a TillLoadSetup JSON file")
    parser.add_argument("--rate-fixed", type=float, default=0.0, help="one run at this rate")
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds of the fixed or closed run"
    )
    parser.add_argument(
        "--closed-tills", type=int, default=0, help="one closed-loop run with this many tills"
    )
    parser.add_argument("--search", action="store_true", help="find the highest rate that held")
    parser.add_argument("--rate", type=float, default=2_000.0, help="search: first rate")
    parser.add_argument("--step-factor", type=float, default=1.25)
    parser.add_argument("--objective-ms", type=float, default=10.0)
    parser.add_argument("--search-duration", type=float, default=6.0)
    parser.add_argument("--max-rate", type=float, default=40_000.0)
    # uvloop by default: on two cores shared with the node, the generator's CPU per tap
    # halves against select() (about 100 µs instead of 200 µs), which leaves the node
    # more room; its timers count whole milliseconds, so a send may leave up to about a
    # millisecond late, and that lag is inside the latency measured (never hidden).
    parser.add_argument(
        "--loop",
        choices=["auto", "select", "uvloop", "asyncio"],
        default="uvloop",
        help="the generator's event loop (see openloop.event_loop_factory)",
    )
    args = parser.parse_args(argv)
    _, loop_factory = event_loop_factory(args.loop, connections=256)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        setup = msgspec.json.decode(Path(args.setup).read_bytes(), type=TillLoadSetup)
        if not 0 <= args.closed_tills <= len(setup.tills):
            parser.error(f"--closed-tills {args.closed_tills}: the setup has {len(setup.tills)}")
        document = runner.run(_main(args, setup))
    sys.stdout.write(msgspec.json.encode(document).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
