"""The capacity harness's engine: open the population, play a workload open loop, search.

`prepare` opens the scenario's members, cards, tills and accounts through the staff API of
a running node. `play` then sends every operation of a workload at its scheduled time,
taps as signed frames over the real till channel and everything else as JSON requests,
whether or not earlier ones have answered; each latency runs from the intended send time
into openloop's HdrHistogram recorders, one per kind of operation, and the recorders also
count the sends that left late, so a generator that fell behind is reported as such.
A decline (a blocked card, an empty purse) is the node answering correctly: it is counted
by reason apart from errors (timeouts, refused connections, 5xx answers).

`search` replays the scenario at rising peak rates until the objective breaks.

A target may have several fronts (a cluster's): the tills and the requests are spread over
them (`fronts.py`), each front's share is measured apart as well as the whole, and the
population is opened and the books audited through the first.

Long, and kept whole: preparing a scenario, playing it and searching share one play
state; a split would pass it through every function.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
import msgspec
from nacl.signing import SigningKey

from coopnode.domain.money import TillKind
from coopnode.domain.till_frames import Decision, TapBody
from coopnode.loadtest.fronts import (
    FrontFigures,
    assign_fronts,
    front_of_till,
    tills_per_front,
)
from coopnode.loadtest.openloop import (
    LATE_FRACTION_MAX_DEFAULT,
    OUTSTANDING_MAX_DEFAULT,
    SCHEDULE_START_DELAY_S,
    Recorder,
    RunResult,
    Verdict,
    collector_paused,
    judge_step,
)
from coopnode.loadtest.pacing import Pacer
from coopnode.loadtest.scenarios import (
    MemberTraits,
    Op,
    OpKind,
    Scenario,
    build_workload,
    member_traits,
    till_kinds,
)
from coopnode.loadtest.tills import SimTill, TillSpec

# A send counts as late when it left more than this share of the objective's p99 after its
# scheduled time. Latencies count from the scheduled time, so a send's lag is inside the
# latency judged; what lateness threatens is only the blame for a broken objective, and a
# lag under a tenth of the objective cannot on its own have broken it. A tap judged at
# 10 ms is late after 2 ms (the floor), a card charge judged at 50 ms after 5 ms.
LATE_SHARE_OF_OBJECTIVE = 0.1
# Sends on the select() loop land within ~0.3 ms when the generator has a core to itself;
# beside a busy node on two cores, 2 ms is the floor of "late" (as in tills.py).
LATE_FLOOR_S = 0.002
# A run waits this long after its last send for the stragglers; later is a timeout.
DRAIN_TIMEOUT_S = 10.0
# A run kept its schedule when at most 1% of its sends were late, or this many: in a short
# run of a slow scenario one stall of the machine would otherwise exceed 1% on its own.
LATE_SENDS_ALLOWED = 5
REQUEST_TIMEOUT_S = 10.0
# The HTTP pool: enough for a node answering in milliseconds at thousands of requests/s.
HTTP_CONNECTIONS = 64
# Staff calls while opening the population run this many at once.
SETUP_CONCURRENCY = 32
# The generator yields to its readers after this many sends in a row when behind.
BURST_YIELD_EVERY = 32
PROGRESS_INTERVAL_S = 1.0
# Waiting for a mailed code in the development outbox gives up after this long.
OUTBOX_WAIT_S = 15.0
ACCOUNT_PASSWORD = "Harness-Kaede-2026!"  # noqa: S105  # Throwaway members of a load test.
DECLINE_STATUSES = frozenset({402, 409, 422})
_CODE = re.compile(r"(?:パスコード|確認コード|認証コード)：([0-9]{6})")
# Newcomers and accounts are numbered in blocks of their own, apart from the population.
_NEWCOMER_BASE = 50_000_000
_ACCOUNT_BASE = 90_000_000


def late_threshold_s(p99_objective_ms: float) -> float:
    """How late a send may leave before it counts against the generator, in seconds."""
    return max(LATE_FLOOR_S, LATE_SHARE_OF_OBJECTIVE * p99_objective_ms / 1000.0)


class HarnessError(RuntimeError):
    """The node refused to set up the population, or answered something unexpected."""


class Naming(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How a run names its members, cards and keys; the prefix keeps runs apart on one node."""

    prefix: int

    def member_no(self, index: int) -> str:
        return f"{self.prefix:04d}{index:08d}"

    def newcomer_no(self, index: int) -> str:
        return self.member_no(_NEWCOMER_BASE + index)

    def account_no(self, index: int) -> str:
        return self.member_no(_ACCOUNT_BASE + index)

    def account_mail(self, index: int) -> str:
        return f"lt{self.prefix}a{index}@student.demo-u.ac.jp"

    def newcomer_mail(self, index: int) -> str:
        return f"lt{self.prefix}n{index}@student.demo-u.ac.jp"

    def idm(self, index: int) -> str:
        return f"{self.prefix:04d}{index:012x}"


class RunFigures(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One run of a workload: figures for all operations and for each kind."""

    peak_rate_per_s: float
    offered_rate_per_s: float
    achieved_rate_per_s: float
    duration_s: float
    operations: int
    overall: RunResult
    by_kind: dict[str, RunResult]
    declines_by_reason: dict[str, dict[str, int]]
    meal_cap_reached: int
    offered_per_second: list[int]
    generator_kept_schedule: bool
    # Each front's share when the run was spread over several; empty with one front,
    # whose figures are the run's.
    by_front: list[FrontFigures] = []


class SearchStepFigures(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    peak_rate_per_s: float
    verdict: Verdict
    detail: str
    figures: RunFigures


class CapacitySearch(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    objective_kind: str
    p99_objective_ms: float
    max_rate_held_per_s: float
    limited_by: str
    steps: list[SearchStepFigures]


class Target:
    """A running node and what the harness opened on it, shared by every run."""

    def __init__(self, url: str | Sequence[str], token: str, scenario: Scenario,
                 naming: Naming) -> None:  # fmt: skip
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise HarnessError("a target needs at least one front")
        # Every front of the node; the first also opens the population and audits the books.
        self.urls = [front.rstrip("/") for front in urls]
        self.url = self.urls[0]
        self.token = token
        self.scenario = scenario
        self.naming = naming
        self.traits: MemberTraits = member_traits(scenario)
        self.kinds: list[TillKind] = till_kinds(scenario)
        self.tills: list[SimTill] = []
        self.runs = 0
        self.newcomers = 0

    def session(self) -> aiohttp.ClientSession:
        # Sign-ins answer with cookies that the harness has no use for; none are kept.
        return aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self.token}"},
            connector=aiohttp.TCPConnector(limit=HTTP_CONNECTIONS),
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            cookie_jar=aiohttp.DummyCookieJar(),
        )


async def _post(session: aiohttp.ClientSession, url: str, body: Any, expect: set[int]) -> Any:
    async with session.post(url, json=body) as response:
        answer = await response.json(content_type=None)
        if response.status not in expect:
            raise HarnessError(f"POST {url}: {response.status} {answer}")
        return answer


async def prepare(target: Target, session: aiohttp.ClientSession) -> None:
    """Open the population's wallets and cards, the tills, and the accounts with passwords."""
    scenario, naming, gate = target.scenario, target.naming, asyncio.Semaphore(SETUP_CONCURRENCY)
    population = scenario.population

    async def member(index: int) -> None:
        number = naming.member_no(index)
        if index in target.traits.low_balance:
            body: dict[str, Any] = {"deposits": {"base": population.low_balance_yen}}
        else:
            body = {"deposits": {"base": population.base_deposit_yen}}
        if index in target.traits.meal_plan and index not in target.traits.low_balance:
            body["meal_plan"] = population.meal_plan
            body["deposits"]["meal"] = population.meal_deposit_yen
        body |= {"key": f"lt-open-{number}", "member_no": number, "coop": "demo"}
        async with gate:
            await _post(session, target.url + "/api/v1/wallets", body, {200, 201})
            card = {"idm": naming.idm(index), "member_no": number}
            await _post(session, target.url + "/api/v1/cards", card, {200, 201})

    await asyncio.gather(*(member(index) for index in range(population.members)))
    specs = []
    for number, kind in enumerate(target.kinds):
        key = SigningKey.generate()
        body = {"store": f"lt-{kind.value}-{number % 8}", "kind": kind.value,
                "public_key_hex": bytes(key.verify_key).hex()}  # fmt: skip
        till = await _post(session, target.url + "/api/v1/tills", body, {201})
        specs.append(TillSpec(till_id=till["till_id"], signing_key_hex=bytes(key).hex()))
    for index in range(population.accounts):
        await _open_account(target, session, index)
    fronts = len(target.urls)
    target.tills = [
        SimTill(target.urls[front_of_till(index, fronts)], spec) for index, spec in enumerate(specs)
    ]
    # A front other than the first learns of the new tills and cards from the registry
    # a little later: a till it does not know yet is refused, and connects again.
    await asyncio.gather(*(till.connect_patiently(session) for till in target.tills))


def enrolment(number: str, mail: str, phone: str) -> dict[str, Any]:
    """An enrolment as staff import it at the start of term (FLOWS §0)."""
    return {
        "member_no": number, "name": "負荷 試験", "kana": "フカ シケン",
        "birth_date": "2007-04-02", "mail": mail, "phone": phone, "coop": "demo",
        "share_units": 10, "insurance": [{"label": "学生総合共済", "amount_yen": 14400}],
        "emoney_yen": 30000, "meal_plan": "meal-1000", "meal_yen": 96000,
    }  # fmt: skip


async def _outbox_code(
    target: Target, session: aiohttp.ClientSession, mail: str, after: int
) -> str:
    """The code in the first message to `mail` after `after` in the development outbox."""
    deadline = time.monotonic() + OUTBOX_WAIT_S
    while time.monotonic() < deadline:
        query = f"{target.url}/dev/outbox.json?to={mail}&after={after}"
        async with session.get(query) as response:
            if response.status != 200:
                raise HarnessError(
                    "accounts need the development outbox (/dev/outbox.json), which answered"
                    f" {response.status}: {(await response.text())[:200]}"
                )
            page = await response.json()
        for message in page["messages"]:
            if found := _CODE.search(message["body"]):
                return found.group(1)
        await asyncio.sleep(0.05)
    raise HarnessError(f"no code reached {mail} within {OUTBOX_WAIT_S:g} s")


async def _open_account(target: Target, session: aiohttp.ClientSession, index: int) -> None:
    """Enrol one member and set their password through the real password flow."""
    naming, url = target.naming, target.url
    mail = target.naming.account_mail(index)
    phone = f"090{naming.prefix:04d}{index:04d}"
    await _post(session, url + "/api/v1/members", enrolment(naming.account_no(index), mail, phone),
                {200, 201})  # fmt: skip
    async with session.get(f"{url}/dev/outbox.json?to=none@invalid.example") as response:
        after = int((await response.json())["last_sequence"]) if response.status == 200 else 0
    flow = await _post(session, url + "/api/v1/flows/password", {"mail": mail}, {200})
    code = await _outbox_code(target, session, mail, after)
    step = {"flow_id": flow["flow_id"], "code": code}
    await _post(session, url + "/api/v1/flows/password/verify", step, {200})
    body = {"flow_id": flow["flow_id"], "password": ACCOUNT_PASSWORD,
            "password_confirm": ACCOUNT_PASSWORD}  # fmt: skip
    await _post(session, url + "/api/v1/flows/password/set", body, {200})


def http_request(target: Target, op: Op, key: str) -> tuple[str, dict[str, Any] | None]:
    """The path and JSON body of an operation that is not a tap."""
    naming = target.naming
    if op.kind == "enrol":
        number = target.newcomers + op.member
        phone = f"070{(naming.prefix * 10_000 + number) % 100_000_000:08d}"
        mail = naming.newcomer_mail(number)
        return "/api/v1/members", enrolment(naming.newcomer_no(number), mail, phone)
    if op.kind == "password_start":
        return "/api/v1/flows/password", {
            "mail": naming.newcomer_mail(target.newcomers + op.member)
        }
    if op.kind == "sign_in":
        body = {"mail": naming.account_mail(op.member), "password": ACCOUNT_PASSWORD}
        return "/api/v1/mypage/login", body
    if op.kind == "report_lost":
        return f"/api/v1/cards/{naming.idm(op.member)}/lost", None
    source = "card" if op.kind == "charge_card" else "konbini"
    charge: dict[str, Any] = {"key": key, "purse": "base", "amount_yen": op.amount_yen,
                              "source": source, "reference": f"{source}-{key}"[:64]}  # fmt: skip
    return f"/api/v1/wallets/{naming.member_no(op.member)}/charges", charge


class _Play:
    """The recorders and bookkeeping of one run of a workload."""

    def __init__(self, target: Target, ops: list[Op], start_s: float) -> None:
        self.target = target
        self.ops = ops
        self.start_s = start_s
        threshold_s = late_threshold_s(target.scenario.objective.p99_ms)
        self.overall = Recorder(start_s, threshold_s)
        kinds = {op.kind for op in ops}
        self.by_kind = {kind: Recorder(start_s, threshold_s) for kind in kinds}
        fronts = len(target.urls)
        self.front_of_op = assign_fronts(ops, fronts)
        # With one front its figures are the run's: no recorders of its own (they would
        # cost the generator CPU beside the node for nothing).
        self.by_front: list[Recorder] = []
        self.by_front_kind: list[dict[OpKind, Recorder]] = []
        if fronts > 1:
            self.by_front = [Recorder(start_s, threshold_s) for _ in range(fronts)]
            self.by_front_kind = [
                {kind: Recorder(start_s, threshold_s) for kind in kinds} for _ in range(fronts)
            ]
        self.declines: dict[str, Counter[str]] = {}
        self.meal_cap_reached = 0
        self.taps_expected = sum(op.kind == "tap" for op in ops)
        self.taps_answered = 0
        self.all_taps_answered = asyncio.Event()
        self.tap_ops: dict[tuple[int, int], Op] = {}
        # When each tap's frame really left, by (till, seq).
        self.tap_sent_s: dict[tuple[int, int], float] = {}
        if self.taps_expected == 0:
            self.all_taps_answered.set()

    def recorders(self) -> list[Recorder]:
        """Every recorder of the run: the whole's, each kind's, each front's."""
        fronts = [recorder for kinds in self.by_front_kind for recorder in kinds.values()]
        return [self.overall, *self.by_kind.values(), *self.by_front, *fronts]

    def sent(self, kind: OpKind, intended_s: float, front: int = 0) -> float:
        """Record a send to `front` leaving now; returns the time it left."""
        sent_s = time.monotonic()
        self.overall.record_send(sent_s - intended_s)
        self.by_kind[kind].record_send(sent_s - intended_s)
        if self.by_front:
            self.by_front[front].record_send(sent_s - intended_s)
            self.by_front_kind[front][kind].record_send(sent_s - intended_s)
        return sent_s

    def outcome(self, kind: OpKind, intended_s: float, reason: str | None, decline: str | None,
                measured: bool = True, sent_s: float | None = None,
                front: int = 0) -> None:  # fmt: skip
        now_s = time.monotonic()
        self.overall.record_outcome(intended_s, now_s, reason, measured, sent_s)
        self.by_kind[kind].record_outcome(intended_s, now_s, reason, measured, sent_s)
        if self.by_front:
            self.by_front[front].record_outcome(intended_s, now_s, reason, measured, sent_s)
            self.by_front_kind[front][kind].record_outcome(
                intended_s, now_s, reason, measured, sent_s
            )
        if decline is not None:
            self.declines.setdefault(kind, Counter())[decline] += 1

    def on_decision(self, till: int, intended_s: float, now_s: float, decision: Decision) -> None:
        op = self.tap_ops.pop((till, decision.seq), None)
        sent_s = self.tap_sent_s.pop((till, decision.seq), None)
        self.taps_answered += 1
        if self.taps_answered >= self.taps_expected:
            self.all_taps_answered.set()
        if op is None:
            return
        decline = None if decision.approved else str(decision.reason or "declined")
        front = front_of_till(till, len(self.target.urls))
        self.outcome("tap", intended_s, None, decline, sent_s=sent_s, front=front)
        plan = op.member in self.target.traits.meal_plan
        cafeteria = self.target.kinds[till] is TillKind.CAFETERIA
        # The meal purse holds enough for the whole run, so a cafeteria tap it did not cover
        # in full was cut short by the plan's daily cap.
        if decision.approved and plan and cafeteria and decision.paid.meal < op.amount_yen:
            self.meal_cap_reached += 1


async def _send_http(play: _Play, session: aiohttp.ClientSession, op: Op, intended_s: float,
                     key: str, front: int) -> None:  # fmt: skip
    sent_s = play.sent(op.kind, intended_s, front)
    path, body = http_request(play.target, op, key)
    reason: str | None = None
    decline: str | None = None
    measured = True
    try:
        async with session.post(play.target.urls[front] + path, json=body) as response:
            answer = await response.read()
        if response.status in DECLINE_STATUSES:
            decline = _reason_of(answer, response.status)
        elif not 200 <= response.status < 300:
            reason = f"http_{response.status}"
    except TimeoutError:
        reason = "timeout"
    except aiohttp.ClientConnectionError:
        reason, measured = "connection", False
    except aiohttp.ClientError:
        reason, measured = "protocol", False
    play.outcome(op.kind, intended_s, reason, decline, measured, sent_s, front)


def _reason_of(answer: bytes, status: int) -> str:
    try:
        decoded = msgspec.json.decode(answer)
    except msgspec.DecodeError:
        return f"http_{status}"
    if isinstance(decoded, dict) and isinstance(decoded.get("reason"), str):
        return str(decoded["reason"])
    return f"http_{status}"


def _seal_taps(play: _Play) -> list[tuple[int, bytes] | None]:
    """Seal every tap before the run (with each till's session key, as a connected till
    does): the work would otherwise steal the node's CPU during the run."""
    frames: list[tuple[int, bytes] | None] = []
    at_ms = time.time_ns() // 1_000_000
    for op in play.ops:
        if op.kind != "tap":
            frames.append(None)
            continue
        till = play.target.tills[op.till]
        body = TapBody(till_id=till.till_id, seq=till.next_seq,
                       idm=play.target.naming.idm(op.member), amount_yen=op.amount_yen,
                       at_ms=at_ms)  # fmt: skip
        play.tap_ops[(op.till, till.next_seq)] = op
        frames.append((till.next_seq, till.seal(body)))
        till.next_seq += 1
    return frames


async def _dispatch(play: _Play, session: aiohttp.ClientSession,
                    frames: list[tuple[int, bytes] | None],
                    key_prefix: str) -> None:  # fmt: skip
    """Start each operation at its scheduled time, then wait for every answer."""
    outstanding: set[asyncio.Task[None]] = set()
    pacer = Pacer(BURST_YIELD_EVERY)
    for index, (op, frame) in enumerate(zip(play.ops, frames, strict=True)):
        intended_s = play.start_s + op.at_s
        front = play.front_of_op[index]
        await pacer.until(intended_s)
        if frame is not None:
            till = play.target.tills[op.till]
            till.intended[frame[0]] = intended_s
            play.tap_sent_s[(op.till, frame[0])] = play.sent("tap", intended_s, front)
            if till.ws is not None:
                await till.ws.send_bytes(frame[1])
            continue
        if len(outstanding) >= OUTSTANDING_MAX_DEFAULT:
            play.outcome(op.kind, intended_s, "dropped_by_generator", None, measured=False,
                         front=front)  # fmt: skip
            continue
        task = asyncio.create_task(
            _send_http(play, session, op, intended_s, f"{key_prefix}-{index}", front)
        )
        outstanding.add(task)
        task.add_done_callback(outstanding.discard)
    if outstanding:
        await asyncio.wait(set(outstanding))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(play.all_taps_answered.wait(), DRAIN_TIMEOUT_S)


async def _progress(play: _Play, label: str, duration_s: float) -> None:
    """A one-line progress bar on stderr, redrawn every second until cancelled."""
    width = 30
    # On a terminal the line is redrawn in place; in a log file each state is its own line.
    start, end = ("\r", "") if sys.stderr.isatty() else ("", "\n")
    while True:
        elapsed_s = max(time.monotonic() - play.start_s, 0.0)
        done = min(elapsed_s / duration_s, 1.0)
        bar = "#" * round(done * width) + "-" * (width - round(done * width))
        answered = play.overall.completed + sum(play.overall.errors.values())
        sys.stderr.write(
            f"{start}{label} [{bar}] {elapsed_s:5.1f}/{duration_s:g} s"
            f" sent {play.overall.sent} answered {answered}{end}"
        )
        sys.stderr.flush()
        await asyncio.sleep(PROGRESS_INTERVAL_S)


async def play(target: Target, ops: list[Op], peak_rate_per_s: float, duration_s: float,
               label: str = "", progress: bool = True) -> RunFigures:  # fmt: skip
    """Send every operation of `ops` at its time, open loop, and measure the answers."""
    target.runs += 1
    for till in target.tills:
        till.intended.clear()
    with collector_paused():
        async with target.session() as session:
            play = _Play(target, ops, time.monotonic() + SCHEDULE_START_DELAY_S)
            frames = _seal_taps(play)
            # Sealing took time; the schedule starts once it is done.
            play.start_s = time.monotonic() + SCHEDULE_START_DELAY_S
            for recorder in play.recorders():
                recorder.start_s = play.start_s
            for index, till in enumerate(target.tills):
                till.on_decision = _decision_hook(play, index)
            reporter = asyncio.create_task(_progress(play, label, duration_s)) if progress else None
            try:
                await _dispatch(play, session, frames, f"lt-{target.naming.prefix}-{target.runs}")
            finally:
                if reporter is not None:
                    reporter.cancel()
                    await asyncio.gather(reporter, return_exceptions=True)
                    sys.stderr.write("\n")
    target.newcomers += sum(op.kind == "enrol" for op in ops)
    fronts = len(target.urls)
    for (_, _), op in list(play.tap_ops.items()):
        # A tap the node never answered within the drain time is a timeout.
        play.outcome("tap", play.start_s + op.at_s, "timeout", None,
                     front=front_of_till(op.till, fronts))  # fmt: skip
    play.tap_ops.clear()
    play.tap_sent_s.clear()
    return _figures(play, peak_rate_per_s, duration_s)


def _decision_hook(play: _Play, till: int) -> Callable[[float, float, Decision], None]:
    def hook(intended_s: float, now_s: float, decision: Decision) -> None:
        play.on_decision(till, intended_s, now_s, decision)

    return hook


def _figures(play: _Play, peak_rate_per_s: float, duration_s: float) -> RunFigures:
    end_s = time.monotonic()
    offered = [0] * max(1, int(duration_s) + 1)
    for op in play.ops:
        offered[min(int(op.at_s), len(offered) - 1)] += 1
    play.overall.finish(end_s)
    overall = play.overall.result(
        play.target.url, play.target.scenario.profile.arrival, peak_rate_per_s, duration_s,
        len(play.target.tills) + HTTP_CONNECTIONS, end_s)  # fmt: skip
    by_kind: dict[str, RunResult] = {}
    for kind, recorder in sorted(play.by_kind.items()):
        recorder.finish(end_s)
        by_kind[kind] = recorder.result(
            play.target.url, play.target.scenario.profile.arrival, peak_rate_per_s, duration_s,
            len(play.target.tills) + HTTP_CONNECTIONS, end_s)  # fmt: skip
    return RunFigures(
        by_front=_front_figures(play, peak_rate_per_s, duration_s, end_s),
        peak_rate_per_s=peak_rate_per_s,
        offered_rate_per_s=len(play.ops) / duration_s,
        achieved_rate_per_s=overall.achieved_rate_per_s,
        duration_s=duration_s,
        operations=len(play.ops),
        overall=overall,
        by_kind=by_kind,
        declines_by_reason={kind: dict(counts) for kind, counts in sorted(play.declines.items())},
        meal_cap_reached=play.meal_cap_reached,
        offered_per_second=offered,
        generator_kept_schedule=overall.late_sends
        <= max(LATE_FRACTION_MAX_DEFAULT * overall.sent, LATE_SENDS_ALLOWED),
    )


def _front_figures(play: _Play, peak_rate_per_s: float, duration_s: float,
                   end_s: float) -> list[FrontFigures]:  # fmt: skip
    """Each front's share of the run, from its own recorders (none with one front)."""
    target, arrival = play.target, play.target.scenario.profile.arrival
    tills = tills_per_front(len(target.tills), len(target.urls))
    kinds = play.by_front_kind
    figures = []
    for front, recorder in enumerate(play.by_front):
        url, connections = target.urls[front], tills[front] + HTTP_CONNECTIONS

        def result(of: Recorder, url: str = url, connections: int = connections) -> RunResult:
            of.finish(end_s)
            return of.result(url, arrival, peak_rate_per_s, duration_s, connections, end_s)

        figures.append(
            FrontFigures(
                url=url,
                tills=tills[front],
                operations=sum(1 for assigned in play.front_of_op if assigned == front),
                overall=result(recorder),
                by_kind={kind: result(of) for kind, of in sorted(kinds[front].items())},
            )
        )
    return figures


def judge(scenario: Scenario, figures: RunFigures) -> tuple[Verdict, str]:
    """Whether a run met the scenario's objective and, if not, whether the node broke it.

    Latencies count from each send's scheduled time, so a late send's lag is inside the
    latency judged: it can make the node look slower, never faster. A run that met the
    objective therefore held however late the generator was. A run that broke it while
    the generator was behind its schedule is put down to the generator, unless the p99
    counted from the actual sends still breaks the objective by more than the generator's
    p99 lag (allowed once more, since a starved generator also reads its answers late):
    then the node broke it whatever the generator did.
    """
    objective = scenario.objective
    result = figures.by_kind.get(objective.kind)
    if result is None:
        return "errors", f"the run had no {objective.kind} operations to judge"
    verdict, detail = judge_step(result, objective.p99_ms, objective.error_share_max, 1.0)
    overall = figures.overall
    late = (
        f"{overall.late_sends} of {overall.sent} sends later than"
        f" {overall.schedule_lag_threshold_ms:g} ms (p99 lag {overall.schedule_lag_p99_ms:.1f},"
        f" max {overall.schedule_lag_max_ms:.1f} ms)"
    )
    if verdict == "held":
        return verdict, f"{detail}; {late}, inside the latency" if overall.late_sends else detail
    if figures.generator_kept_schedule:
        return verdict, detail
    net_ms = result.sent_to_answer_p99_ms - overall.schedule_lag_p99_ms
    if verdict == "p99" and net_ms > objective.p99_ms:
        return verdict, (
            f"{detail}; the node's own: {result.sent_to_answer_p99_ms:.2f} ms from the actual"
            f" sends although {late}"
        )
    return "generator", f"generator behind schedule: {late}; {detail}"


def step_workload(scenario: Scenario, rate: float, seed: int) -> tuple[list[Op], float]:
    """A search step's operations and seconds: long enough for its objective's p99 to count.

    A step lasts `search.step_duration_s`, or longer, up to `search.step_duration_max_s`,
    when that would give fewer than `search.objective_samples_min` operations of the
    objective's kind (term-start's first step: 18 card charges in 6 s, whose p99 is their
    maximum). Lost-card reports are left out: a card can only be reported lost once.
    """
    plan = scenario.search
    duration_s = plan.step_duration_s
    ops = build_workload(scenario, rate, duration_s, seed)
    samples = sum(op.kind == scenario.objective.kind for op in ops)
    if samples < plan.objective_samples_min and duration_s < plan.step_duration_max_s:
        wanted_s = duration_s * plan.objective_samples_min / max(samples, 1)
        duration_s = min(wanted_s, plan.step_duration_max_s)
        ops = build_workload(scenario, rate, duration_s, seed)
    return [op for op in ops if op.kind != "report_lost"], duration_s


async def search(target: Target, progress: bool = True) -> CapacitySearch:
    """Raise the peak rate geometrically until the objective breaks, then bisect once.

    Each step replays the scenario (`step_workload`) at a new peak rate with the step's own
    seed, so steps are reproducible.
    """
    scenario = target.scenario
    plan = scenario.search
    steps: list[SearchStepFigures] = []
    held, broken = 0.0, None

    async def step(rate: float) -> SearchStepFigures:
        ops, duration_s = step_workload(scenario, rate, scenario.seed + len(steps))
        label = f"{scenario.name} search {rate:.0f}/s"
        figures = await play(target, ops, rate, duration_s, label, progress)
        verdict, detail = judge(scenario, figures)
        done = SearchStepFigures(peak_rate_per_s=rate, verdict=verdict, detail=detail,
                                 figures=figures)  # fmt: skip
        steps.append(done)
        if progress:
            sys.stderr.write(f"  {verdict}: {detail}\n")
        await asyncio.sleep(0.5)
        return done

    async def confirmed(rate: float) -> SearchStepFigures:
        # On two cores shared with other work, one noisy step can break an objective the
        # node holds; a broken step is run once more, and breaks only if it breaks again.
        done = await step(rate)
        if done.verdict == "held" or len(steps) >= plan.steps_max:
            return done
        return await step(rate)

    rate = plan.start_rate_per_s
    while rate <= plan.max_rate_per_s and len(steps) < plan.steps_max:
        done = await confirmed(rate)
        if done.verdict != "held":
            broken = done
            break
        held = rate
        rate *= plan.step_factor
    if broken is not None and held > 0 and len(steps) < plan.steps_max:
        middle = await confirmed((held + broken.peak_rate_per_s) / 2)
        held = middle.peak_rate_per_s if middle.verdict == "held" else held
    return CapacitySearch(
        objective_kind=scenario.objective.kind,
        p99_objective_ms=scenario.objective.p99_ms,
        max_rate_held_per_s=held,
        limited_by=broken.verdict if broken is not None else "max_rate",
        steps=steps,
    )


async def books_balanced(target: Target) -> bool:
    """The node's own recount of every shard's journal (`GET /api/v1/audit`)."""
    async with target.session() as session, session.get(target.url + "/api/v1/audit") as response:
        if response.status != 200:
            raise HarnessError(f"GET /api/v1/audit: {response.status}")
        answer = await response.json()
    return bool(answer.get("balanced"))


async def close(target: Target) -> None:
    await asyncio.gather(*(till.close() for till in target.tills))


async def shard_count(target: Target) -> int:
    """How many wallet shards the node runs (`GET /healthz` lists them), for the plan."""
    async with target.session() as session, session.get(target.url + "/healthz") as response:
        answer = await response.json(content_type=None)
    shards = answer.get("shards") if isinstance(answer, dict) else None
    if not isinstance(shards, list) or not shards:
        raise HarnessError(f"GET /healthz: {response.status}, no list of shards")
    return len(shards)
