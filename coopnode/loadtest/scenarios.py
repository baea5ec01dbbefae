"""Scenarios of the capacity harness: TOML files turned into a seeded, reproducible workload.

A scenario file (`config/scenarios/*.toml`) says how fast operations arrive over time (a
piecewise-linear rate profile under a peak rate), what they are (taps at tills of each
kind, enrolments, password resets, sign-ins, charges by card and convenience store), who
makes them (a population in which a few members tap daily and most rarely, by Zipf-like
weights) and what the objective is. `load_scenario` validates a file into `Scenario`;
`build_workload` turns a scenario, a peak rate and a seed into the same list of `Op`s every
time, so two runs with one seed offer the node exactly the same work.

Errors:

    ValueError
     └── ScenarioError   a file that is missing, not TOML, or has a key out of bounds
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections import Counter
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from coopnode.domain.money import TillKind

# The scenarios shipped with the repository, found by name (`lunch-rush` → lunch-rush.toml).
SCENARIO_DIR = Path(__file__).resolve().parents[2] / "config" / "scenarios"
# A workload longer than this is a soak test, not a capacity run; it bounds memory too.
WORKLOAD_OPS_MAX = 2_000_000
# A rate profile with more points than this is a typo, not a shape.
PROFILE_POINTS_MAX = 64
# A member who has tapped their fill is replaced by another draw at most this many times.
TAPPER_REDRAWS_MAX = 16
# A newcomer's password reset is sent at least this long after their enrolment was.
NEWCOMER_SETTLE_S = 1.0
# Charges are built from the portal's +1,000 … +10,000 buttons.
CHARGE_AMOUNTS_YEN = (1_000, 2_000, 3_000, 5_000, 10_000)

OpKind = Literal[
    "tap", "enrol", "password_start", "sign_in", "charge_card", "charge_konbini", "report_lost"
]
# The kinds a scenario's mix may name; lost-card reports are scheduled separately.
MIX_KINDS: tuple[OpKind, ...] = (
    "tap",
    "enrol",
    "password_start",
    "sign_in",
    "charge_card",
    "charge_konbini",
)

PositiveRate = Annotated[float, msgspec.Meta(gt=0.0, le=100_000.0)]
Share = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Seconds = Annotated[float, msgspec.Meta(gt=0.0, le=3_600.0)]
Yen = Annotated[int, msgspec.Meta(ge=1, le=100_000)]


class ScenarioError(ValueError):
    """A scenario file that cannot be used, with the file and the key that is wrong."""


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class Profile(_Section, frozen=True):
    """Arrivals per second over the run: `points` are (share of the run, share of the peak)."""

    peak_rate_per_s: PositiveRate
    points: list[tuple[Share, Share]] = msgspec.field(
        default_factory=lambda: [(0.0, 1.0), (1.0, 1.0)]
    )
    arrival: Literal["poisson", "fixed"] = "poisson"

    def __post_init__(self) -> None:
        if not 2 <= len(self.points) <= PROFILE_POINTS_MAX:
            raise ValueError(f"profile.points needs 2 to {PROFILE_POINTS_MAX} points")
        times = [at for at, _ in self.points]
        if times[0] != 0.0 or times[-1] != 1.0 or times != sorted(times):
            raise ValueError("profile.points must run in order from 0.0 to 1.0 of the run")
        if max(share for _, share in self.points) <= 0.0:
            raise ValueError("profile.points never rises above zero")

    def share_at(self, fraction: float) -> float:
        """The share of the peak rate at a fraction of the run, interpolated linearly."""
        for (at_a, share_a), (at_b, share_b) in itertools.pairwise(self.points):
            if at_a <= fraction <= at_b:
                if at_b == at_a:
                    return max(share_a, share_b)
                return share_a + (share_b - share_a) * (fraction - at_a) / (at_b - at_a)
        return self.points[-1][1]


class Population(_Section, frozen=True):
    """The members the harness opens before the run, and how often each of them shows up."""

    members: Annotated[int, msgspec.Meta(ge=1, le=200_000)]
    # Member i comes with weight 1/(i+1)^s: a few daily regulars, a long tail of rare ones.
    zipf_exponent: Annotated[float, msgspec.Meta(ge=0.0, le=3.0)] = 1.0
    meal_plan: str = "meal-1000"
    meal_plan_share: Share = 0.5
    meal_deposit_yen: Annotated[int, msgspec.Meta(ge=0, le=300_000)] = 60_000
    base_deposit_yen: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 30_000
    # Members opened with almost nothing, whose taps are declined for insufficient funds.
    low_balance_share: Share = 0.02
    low_balance_yen: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 100
    # Cards reported lost part-way through the run; later taps with them are declined.
    lost_cards: Annotated[int, msgspec.Meta(ge=0, le=1_000)] = 0
    # The most taps one member makes in a run (0: no bound). A lunch hour squeezed into a
    # minute would otherwise have the busiest members tap hundreds of times and empty
    # their purses; a real regular taps a few times a day.
    taps_per_member_max: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    # Members enrolled with a password before the run, who sign in during it.
    accounts: Annotated[int, msgspec.Meta(ge=0, le=1_000)] = 0


class Tills(_Section, frozen=True):
    count: Annotated[int, msgspec.Meta(ge=0, le=4_096)] = 0
    # The share of tills of each kind; taps go to tills uniformly.
    kinds: dict[TillKind, Share] = msgspec.field(default_factory=lambda: {TillKind.CAFETERIA: 1.0})
    # The lowest and highest amount of a tap at a till of each kind, in yen.
    amounts_yen: dict[TillKind, tuple[Yen, Yen]] = msgspec.field(
        default_factory=lambda: {TillKind.CAFETERIA: (300, 700)}
    )

    def __post_init__(self) -> None:
        for kind in self.kinds:
            low, high = self.amounts_yen.get(kind, (0, 0))
            if not 1 <= low <= high:
                raise ValueError(
                    f"tills.amounts_yen.{kind.value} needs [low, high] with low <= high"
                )
        if self.count and sum(self.kinds.values()) <= 0.0:
            raise ValueError("tills.kinds has no till kind with a share above zero")


class Objective(_Section, frozen=True):
    """What the capacity search holds the node to: the p99 of one kind of operation."""

    kind: OpKind = "tap"
    p99_ms: Annotated[float, msgspec.Meta(gt=0.0, le=60_000.0)] = 10.0
    error_share_max: Share = 0.01


class SearchPlan(_Section, frozen=True):
    start_rate_per_s: PositiveRate = 50.0
    step_factor: Annotated[float, msgspec.Meta(ge=1.05, le=10.0)] = 1.5
    max_rate_per_s: PositiveRate = 5_000.0
    step_duration_s: Seconds = 5.0
    steps_max: Annotated[int, msgspec.Meta(ge=1, le=32)] = 12
    # A step runs longer than `step_duration_s` (up to `step_duration_max_s`) when it would
    # otherwise hold fewer operations of the objective's kind than this: the p99 of fewer
    # than 100 samples is their maximum, and one stall of a shared machine would decide it.
    objective_samples_min: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 100
    step_duration_max_s: Seconds = 30.0

    def __post_init__(self) -> None:
        if self.step_duration_max_s < self.step_duration_s:
            raise ValueError("search.step_duration_max_s is shorter than search.step_duration_s")


class Planning(_Section, frozen=True):
    """The assumptions the planning table states; see `planning.py`."""

    co_op_sizes: list[Annotated[int, msgspec.Meta(ge=100, le=10_000_000)]] = msgspec.field(
        default_factory=lambda: [5_000, 15_000, 30_000, 60_000]
    )
    lunch_tapping_share: Share = 0.6
    lunch_window_min: Annotated[float, msgspec.Meta(gt=0.0, le=600.0)] = 90.0
    peak_to_mean: Annotated[float, msgspec.Meta(ge=1.0, le=20.0)] = 2.5
    taps_per_till_per_min: Annotated[float, msgspec.Meta(gt=0.0, le=60.0)] = 4.0
    headroom: Annotated[float, msgspec.Meta(ge=1.0, le=10.0)] = 2.0
    members_per_shard_max: Annotated[int, msgspec.Meta(ge=1_000, le=10_000_000)] = 50_000
    # What one host holds: a two-core host runs one front and one wallet shard (two
    # shards on two cores held fewer taps than one, README "Performance").
    fronts_per_host: Annotated[int, msgspec.Meta(ge=1, le=16)] = 1
    shards_per_host: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    # Each wallet shard's replicas (`replication.replica_count`): three outlive a lost
    # disk or host and outvote a stalled disk; each is on a host of its own, and a
    # replica takes a shard's place on its host (`shards_per_host` counts replicas).
    replicas_per_shard: Annotated[int, msgspec.Meta(ge=1, le=7)] = 3
    # At least this many fronts, so that a till whose front is lost has another to move to.
    fronts_min: Annotated[int, msgspec.Meta(ge=1, le=16)] = 2
    # The hosts that run only Ray's head (its GCS, and the Redis that keeps its state).
    head_hosts: Annotated[int, msgspec.Meta(ge=0, le=4)] = 1
    # A front's and a shard's capacity in taps/s, when the co-op measured them apart (for
    # instance a shard with benchmarks/wallet_ray.py); 0: from the harness's own run.
    front_capacity_taps_per_s: Annotated[float, msgspec.Meta(ge=0.0, le=1_000_000.0)] = 0.0
    shard_capacity_taps_per_s: Annotated[float, msgspec.Meta(ge=0.0, le=1_000_000.0)] = 0.0


class Scenario(_Section, frozen=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")]
    duration_s: Seconds
    profile: Profile
    population: Population
    description: str = ""
    seed: int = 0
    tills: Tills = msgspec.field(default_factory=Tills)
    # The share of arrivals of each kind; shares are normalised, so they need not sum to 1.
    mix: dict[OpKind, Share] = msgspec.field(default_factory=lambda: {"tap": 1.0})
    objective: Objective = msgspec.field(default_factory=Objective)
    search: SearchPlan = msgspec.field(default_factory=SearchPlan)
    planning: Planning = msgspec.field(default_factory=Planning)

    def __post_init__(self) -> None:
        if "report_lost" in self.mix:
            raise ValueError("mix may not name report_lost; set population.lost_cards")
        if sum(self.mix.values()) <= 0.0:
            raise ValueError("mix has no kind with a share above zero")
        if self.mix.get("tap", 0.0) > 0.0 and self.tills.count == 0:
            raise ValueError("mix has taps but tills.count is 0")
        if self.mix.get("sign_in", 0.0) > 0.0 and self.population.accounts == 0:
            raise ValueError("mix has sign_in but population.accounts is 0")


class Op(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One operation of a workload: when it is due, what it is, who makes it and where.

    `member` indexes the population, or the newcomers for an enrolment or a password reset,
    or the accounts for a sign-in; `till` indexes the tills, and is -1 for other kinds.
    """

    at_s: float
    kind: OpKind
    member: int
    till: int = -1
    amount_yen: int = 0


class MemberTraits(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Which members hold a meal plan and which start with almost nothing, by index."""

    meal_plan: frozenset[int]
    low_balance: frozenset[int]


def load_scenario(name_or_path: str) -> Scenario:
    """Read a scenario by name (from `config/scenarios`) or by path, refusing a bad file."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = SCENARIO_DIR / f"{name_or_path}.toml"
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read the scenario: {error.strerror}") from None
    return parse_scenario(raw, str(path))


def parse_scenario(raw: bytes, source: str = "<scenario>") -> Scenario:
    try:
        return msgspec.toml.decode(raw, type=Scenario)
    except msgspec.ValidationError as error:
        # msgspec names the key as a path such as `$.profile.peak_rate_per_s`.
        raise ScenarioError(f"{source}: {error}") from None
    except msgspec.DecodeError as error:
        raise ScenarioError(f"{source}: not a TOML file: {error}") from None


def member_traits(scenario: Scenario) -> MemberTraits:
    """The members with a meal plan and those with a low balance, fixed by the seed."""
    population = scenario.population
    generator = random.Random(f"{scenario.seed}-population")
    members = range(population.members)
    meal_count = round(population.members * population.meal_plan_share)
    low_count = round(population.members * population.low_balance_share)
    return MemberTraits(
        meal_plan=frozenset(generator.sample(members, meal_count)),
        low_balance=frozenset(generator.sample(members, low_count)),
    )


def till_kinds(scenario: Scenario) -> list[TillKind]:
    """The kind of each till: shares rounded by the largest remainder, in a fixed order."""
    tills = scenario.tills
    total = sum(tills.kinds.values())
    kinds = sorted(tills.kinds)
    exact = [tills.count * tills.kinds[kind] / total for kind in kinds]
    counts = [math.floor(value) for value in exact]
    by_remainder = sorted(range(len(kinds)), key=lambda index: counts[index] - exact[index])
    for index in by_remainder[: tills.count - sum(counts)]:
        counts[index] += 1
    return [kind for kind, count in zip(kinds, counts, strict=True) for _ in range(count)]


def arrival_offsets_s(
    profile: Profile, peak_rate_per_s: float, duration_s: float, seed: int
) -> list[float]:
    """Send times following the profile, by thinning arrivals at the peak rate.

    Poisson arrivals at the peak rate, each kept with probability share_at(t), form a
    Poisson process whose rate follows the profile (Lewis and Shedler's thinning). Fixed
    arrivals step by 1/rate(t), so they also follow it, evenly spaced.
    """
    generator = random.Random(f"{seed}-arrivals")
    offsets: list[float] = []
    at_s = 0.0
    while at_s < duration_s and len(offsets) < WORKLOAD_OPS_MAX:
        if profile.arrival == "poisson":
            at_s += generator.expovariate(peak_rate_per_s)
            if at_s < duration_s and generator.random() < profile.share_at(at_s / duration_s):
                offsets.append(at_s)
            continue
        # A share of zero would never move on; a floor of 1% of the peak bounds the step.
        share = max(profile.share_at(at_s / duration_s), 0.01)
        offsets.append(at_s)
        at_s += 1.0 / (peak_rate_per_s * share)
    return offsets


def build_workload(
    scenario: Scenario, peak_rate_per_s: float, duration_s: float, seed: int
) -> list[Op]:
    """Every operation of one run, in send order; the same arguments give the same list."""
    generator = random.Random(f"{seed}-workload")
    population = scenario.population.members
    member_weights = list(
        itertools.accumulate(
            1.0 / (index + 1) ** scenario.population.zipf_exponent for index in range(population)
        )
    )
    kinds = [kind for kind in MIX_KINDS if scenario.mix.get(kind, 0.0) > 0.0]
    kind_weights = list(itertools.accumulate(scenario.mix[kind] for kind in kinds))
    till_of_kind = till_kinds(scenario)
    enrolled_at_s: list[float] = []
    resets = 0
    taps: Counter[int] = Counter()
    ops: list[Op] = []
    for at_s in arrival_offsets_s(scenario.profile, peak_rate_per_s, duration_s, seed):
        kind = kinds[bisect.bisect_left(kind_weights, generator.random() * kind_weights[-1])]
        if kind == "password_start":
            # A newcomer sets a password once, a while after their enrolment was sent;
            # with nobody waiting, the arrival is one more enrolment instead.
            ready = bisect.bisect_right(enrolled_at_s, at_s - NEWCOMER_SETTLE_S)
            kind = "password_start" if resets < ready else "enrol"
        member = _draw_member(generator, member_weights, population)
        if kind == "tap":
            member = _bounded_tapper(scenario, generator, member_weights, taps, member)
            taps[member] += 1
            till = generator.randrange(len(till_of_kind))
            low, high = scenario.tills.amounts_yen[till_of_kind[till]]
            # Prices end in a round ten yen, as on a cafeteria's menu.
            amount = max(10, round(generator.randint(low, high), -1))
            ops.append(Op(at_s=at_s, kind=kind, member=member, till=till, amount_yen=amount))
        elif kind == "enrol":
            ops.append(Op(at_s=at_s, kind=kind, member=len(enrolled_at_s)))
            enrolled_at_s.append(at_s)
        elif kind == "password_start":
            ops.append(Op(at_s=at_s, kind=kind, member=resets))
            resets += 1
        elif kind == "sign_in":
            account = generator.randrange(scenario.population.accounts)
            ops.append(Op(at_s=at_s, kind=kind, member=account))
        else:
            amount = generator.choice(CHARGE_AMOUNTS_YEN)
            ops.append(Op(at_s=at_s, kind=kind, member=member, amount_yen=amount))
    ops.extend(_lost_card_reports(scenario, duration_s, generator))
    ops.sort(key=lambda op: op.at_s)
    return ops


def _draw_member(generator: random.Random, weights: list[float], population: int) -> int:
    drawn = bisect.bisect_left(weights, generator.random() * weights[-1])
    return min(drawn, population - 1)


def _bounded_tapper(
    scenario: Scenario, generator: random.Random, weights: list[float], taps: Counter[int],
    member: int,
) -> int:  # fmt: skip
    """The member, or another drawn the same way when this one has tapped their fill.

    The redraws are bounded; past them a member is drawn uniformly, which a population
    large enough for the run's taps makes rare.
    """
    bound = scenario.population.taps_per_member_max
    population = scenario.population.members
    for _ in range(TAPPER_REDRAWS_MAX):
        if bound == 0 or taps[member] < bound:
            return member
        member = _draw_member(generator, weights, population)
    return generator.randrange(population)


def _lost_card_reports(scenario: Scenario, duration_s: float, generator: random.Random) -> list[Op]:
    """Lost cards reported evenly through the middle of the run, by busy members.

    The cards are drawn from the busiest tenth of the population, so that later taps with
    them are likely and the blocks are seen in the declines.
    """
    count = min(scenario.population.lost_cards, scenario.population.members)
    busy = max(count, scenario.population.members // 10)
    losers = generator.sample(range(busy), count)
    return [
        Op(
            at_s=duration_s * (0.25 + 0.5 * (number + 1) / (count + 1)),
            kind="report_lost",
            member=member,
        )
        for number, member in enumerate(losers)
    ]
