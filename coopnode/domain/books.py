"""The books as the accounts office reads them: a day's settlement (日計), its check against
the journal, and the unused balance of the prepaid purses (未使用残高) on a reference date.

Pure: the journal entries come in, figures go out. The wallet shards fold their own
journal with `DayFold` (off their event loop, in chunks) and the front adds the shards'
answers with `merge_days`.

A day is the co-op's (`days.coop_day`): from midnight to midnight in Asia/Tokyo, and an
entry belongs to the day of its `at_ms`, the instant the shard booked it. An offline tap
forwarded on Tuesday is Tuesday's, whatever day the till sold it; a void or a refund of a
payment of an earlier day is the day it is made, listed as a correction that names the
payment it corrects (`Correction`), so a day once closed never changes.

Figures: one line per store, till, kind of line, purse and source, in yen and entries:

    sale       what a payment took from each purse (points: the points spent), and the
               part an offline tap left owing (source `overdraft`)
    void       what a void gave back to each purse (and the overdraft it cancelled)
    refund     what a refund gave back to each purse
    settle     what settling an overdraft took from each purse
    charge     what a charge put into a purse, by source: card, konbini, counter
    enrolment  what was paid in at enrolment
    move       money moved between a member's purses (signed, nets to zero)
    points_issued / points_clawed_back
               points a payment earned, and those a void or refund took back
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import msgspec

from coopnode.domain.days import COOP_TIMEZONE
from coopnode.domain.ledger import CLEARING, ENROLMENT_DEPOSITS, OVERDRAFT_RECEIVABLE, POINTS_ISSUED
from coopnode.domain.messages import JournalEntry
from coopnode.domain.money import PURSES, Purse, Purses

# The purses the Payment Services Act counts as prepaid payment instruments: money paid in
# ahead. Points are given free with a purchase and are not (they are reported apart).
PREPAID_PURSES: tuple[Purse, ...] = (Purse.MEAL, Purse.CAFETERIA, Purse.TEXTBOOK, Purse.BASE)
# 資金決済法 art. 14 and its order (施行令 art. 6): above this unused balance on a reference
# date, at least half of the unused balance is deposited (発行保証金).
UNUSED_BALANCE_THRESHOLD_YEN = 10_000_000
# The reference dates (基準日) of the act: March 31 and September 30, as (month, day).
REFERENCE_DATES: tuple[tuple[int, int], ...] = ((3, 31), (9, 30))
HOURS_PER_DAY = 24
OVERDRAFT = "overdraft"


class Line(StrEnum):
    SALE = "sale"
    VOID = "void"
    REFUND = "refund"
    SETTLE = "settle"
    CHARGE = "charge"
    ENROLMENT = "enrolment"
    MOVE = "move"
    POINTS_ISSUED = "points_issued"
    POINTS_CLAWED_BACK = "points_clawed_back"


class _Record(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class Figure(_Record, frozen=True):
    """One line of a day's settlement: yen and how many journal entries made it."""

    store: str
    till_id: str
    line: Line
    purse: str
    source: str
    yen: int
    entries: int


class Correction(_Record, frozen=True):
    """A void or refund made this day of a payment booked on an earlier day."""

    shard_index: int
    seq: int
    at_ms: int
    kind: str
    member_no: str
    key: str
    amount_yen: int
    store: str
    till_id: str
    # The payment it corrects: its key, the day (ISO date) and journal sequence it was
    # booked with (0 and "" when the store has no record of it).
    payment_key: str
    payment_day: str
    payment_seq: int


class DaySums(_Record, frozen=True):
    """A day's settlement figures as the journal gives them, for one shard or all."""

    day: str  # ISO date, in the co-op's time zone
    entries: int
    figures: list[Figure]
    # The day's net change of each account: counter accounts by name, the members' purses
    # added up per purse as `purses:<purse>`. The figures must explain it to the yen.
    accounts: dict[str, int]
    # Net sales (sales less voids and refunds) per store, by hour of the day.
    hourly_sales: dict[str, list[int]]
    corrections: list[Correction]


# Days -----------------------------------------------------------------------------------


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def day_window_ms(day: date, timezone: str = COOP_TIMEZONE) -> tuple[int, int]:
    """The [start, end) instants, in ms since the epoch, of a day where the co-op is."""
    zone = _zone(timezone)
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=zone)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def day_of_ms(at_ms: int, timezone: str = COOP_TIMEZONE) -> date:
    return datetime.fromtimestamp(at_ms / 1000, _zone(timezone)).date()


def hour_of_ms(at_ms: int, timezone: str = COOP_TIMEZONE) -> int:
    return datetime.fromtimestamp(at_ms / 1000, _zone(timezone)).hour


# Folding the journal ---------------------------------------------------------------------


def _split(entry: JournalEntry) -> tuple[dict[Purse, int], dict[str, int]]:
    """The entry's member postings per purse, and its counter postings by account."""
    members: dict[Purse, int] = {}
    counters: dict[str, int] = {}
    prefix = f"member:{entry.member_no}:"
    for account, amount in entry.postings:
        if account.startswith(prefix):
            purse = Purse(account[len(prefix) :])
            members[purse] = members.get(purse, 0) + amount
        else:
            counters[account] = counters.get(account, 0) + amount
    return members, counters


def entry_lines(entry: JournalEntry) -> list[tuple[Line, str, str, int]]:
    """The settlement lines of one journal entry: (line, purse, source, yen)."""
    members, counters = _split(entry)
    points_issued = counters.get(POINTS_ISSUED, 0)
    receivable = counters.get(OVERDRAFT_RECEIVABLE, 0)
    lines: list[tuple[Line, str, str, int]] = []
    match entry.kind:
        case "pay" | "offline_pay":
            earned = -points_issued
            for purse in PURSES:
                spent = -members.get(purse, 0) + (earned if purse is Purse.POINTS else 0)
                lines.append((Line.SALE, purse.value, "", spent))
            lines.append((Line.SALE, "", OVERDRAFT, -receivable))
            lines.append((Line.POINTS_ISSUED, Purse.POINTS.value, "", earned))
        case "void" | "refund":
            line = Line.VOID if entry.kind == "void" else Line.REFUND
            for purse in PURSES:
                back = members.get(purse, 0) + (points_issued if purse is Purse.POINTS else 0)
                lines.append((line, purse.value, "", back))
            lines.append((line, "", OVERDRAFT, receivable))
            lines.append((Line.POINTS_CLAWED_BACK, Purse.POINTS.value, "", points_issued))
        case "settle_overdraft":
            for purse, amount in members.items():
                lines.append((Line.SETTLE, purse.value, "", -amount))
        case "charge":
            source = next(
                (src.value for src, account in CLEARING.items() if account in counters), ""
            )
            for purse, amount in members.items():
                lines.append((Line.CHARGE, purse.value, source, amount))
        case "open":
            for purse, amount in members.items():
                lines.append((Line.ENROLMENT, purse.value, "", amount))
        case _:
            for purse, amount in members.items():
                lines.append((Line.MOVE, purse.value, "", amount))
    return [line for line in lines if line[3]]


_GIVE_BACK = {Line.VOID, Line.REFUND}


class DayFold:
    """Adds a day's journal entries up, one at a time, into `DaySums` (not thread-safe)."""

    def __init__(self, day: date, timezone: str = COOP_TIMEZONE) -> None:
        self.day = day
        self.timezone = timezone
        self.start_ms, self.end_ms = day_window_ms(day, timezone)
        self.entries = 0
        self._figures: dict[tuple[str, str, Line, str, str], list[int]] = {}
        self._accounts: dict[str, int] = {}
        self._hourly: dict[str, list[int]] = {}
        self._corrections: list[Correction] = []

    def covers(self, at_ms: int) -> bool:
        return self.start_ms <= at_ms < self.end_ms

    def add(self, entry: JournalEntry) -> None:
        self.entries += 1
        for account, amount in entry.postings:
            name = (
                "purses:" + account.rsplit(":", 1)[1] if account.startswith("member:") else account
            )
            self._accounts[name] = self._accounts.get(name, 0) + amount
        hour = hour_of_ms(entry.at_ms, self.timezone)
        for line, purse, source, yen in entry_lines(entry):
            figure = self._figures.setdefault(
                (entry.store, entry.till_id, line, purse, source), [0, 0]
            )
            figure[0] += yen
            figure[1] += 1
            if line is Line.SALE or line in _GIVE_BACK:
                hours = self._hourly.setdefault(entry.store, [0] * HOURS_PER_DAY)
                hours[hour] += yen if line is Line.SALE else -yen

    def add_correction(self, correction: Correction) -> None:
        self._corrections.append(correction)

    def result(self) -> DaySums:
        figures = [
            Figure(
                store=store, till_id=till, line=line, purse=purse, source=source, yen=yen, entries=n
            )
            for (store, till, line, purse, source), (yen, n) in sorted(self._figures.items())
        ]
        return DaySums(
            day=self.day.isoformat(),
            entries=self.entries,
            figures=figures,
            accounts={name: yen for name, yen in sorted(self._accounts.items()) if yen},
            hourly_sales=dict(sorted(self._hourly.items())),
            corrections=list(self._corrections),
        )


def merge_days(parts: list[DaySums]) -> DaySums:
    """The shards' sums of one day added into the node's."""
    if not parts:
        raise ValueError("a day is merged from at least one shard's sums")
    figures: dict[tuple[str, str, Line, str, str], list[int]] = {}
    accounts: dict[str, int] = {}
    hourly: dict[str, list[int]] = {}
    for part in parts:
        if part.day != parts[0].day:
            raise ValueError(f"sums of {part.day} merged into {parts[0].day}")
        for f in part.figures:
            total = figures.setdefault((f.store, f.till_id, f.line, f.purse, f.source), [0, 0])
            total[0] += f.yen
            total[1] += f.entries
        for name, yen in part.accounts.items():
            accounts[name] = accounts.get(name, 0) + yen
        for store, hours in part.hourly_sales.items():
            kept = hourly.setdefault(store, [0] * HOURS_PER_DAY)
            for hour, yen in enumerate(hours):
                kept[hour] += yen
    return DaySums(
        day=parts[0].day,
        entries=sum(part.entries for part in parts),
        figures=[
            Figure(store=s, till_id=t, line=line, purse=p, source=src, yen=yen, entries=n)
            for (s, t, line, p, src), (yen, n) in sorted(figures.items())
        ],
        accounts={name: yen for name, yen in sorted(accounts.items()) if yen},
        hourly_sales=dict(sorted(hourly.items())),
        corrections=sorted(
            (c for part in parts for c in part.corrections), key=lambda c: (c.at_ms, c.seq)
        ),
    )


# The check: the figures explain every account's change to the yen ------------------------


def accounts_from_figures(figures: list[Figure]) -> dict[str, int]:
    """Each account's net change for the day as the figures say it (zeros left out)."""
    accounts: dict[str, int] = {}

    def post(name: str, yen: int) -> None:
        accounts[name] = accounts.get(name, 0) + yen

    for f in figures:
        purse_account = f"purses:{f.purse}" if f.purse else ""
        match f.line:
            case Line.SALE:
                post(f"sales:{f.store}", f.yen)
                post(purse_account or OVERDRAFT_RECEIVABLE, -f.yen)
            case Line.VOID | Line.REFUND:
                post(f"sales:{f.store}", -f.yen)
                post(purse_account or OVERDRAFT_RECEIVABLE, f.yen)
            case Line.SETTLE:
                post(OVERDRAFT_RECEIVABLE, f.yen)
                post(purse_account, -f.yen)
            case Line.CHARGE:
                post(f"clearing:{f.source}", -f.yen)
                post(purse_account, f.yen)
            case Line.ENROLMENT:
                post(ENROLMENT_DEPOSITS, -f.yen)
                post(purse_account, f.yen)
            case Line.MOVE:
                post(purse_account, f.yen)
            case Line.POINTS_ISSUED:
                post(POINTS_ISSUED, -f.yen)
                post(purse_account, f.yen)
            case Line.POINTS_CLAWED_BACK:
                post(POINTS_ISSUED, f.yen)
                post(purse_account, -f.yen)
    return {name: yen for name, yen in sorted(accounts.items()) if yen}


def figure_problems(sums: DaySums) -> list[str]:
    """Where the figures do not explain the journal's accounts (empty when they do)."""
    derived = accounts_from_figures(sums.figures)
    names = sorted(set(derived) | set(sums.accounts))
    return [
        f"{name}: the journal says {sums.accounts.get(name, 0)}, the figures {derived.get(name, 0)}"
        for name in names
        if derived.get(name, 0) != sums.accounts.get(name, 0)
    ]


# The unused-balance report (未使用残高) ---------------------------------------------------


class UnusedBalance(_Record, frozen=True):
    """The unused balance of the prepaid purses at the end (24:00) of a reference date."""

    reference_date: str  # ISO date
    as_of_ms: int  # 24:00 of that day in the co-op's time zone
    entries: int  # journal entries counted, every one booked before `as_of_ms`
    purses_yen: dict[str, int]  # each prepaid purse's total over all members
    total_yen: int
    points_yen: int  # reported apart: points are not a prepaid instrument
    threshold_yen: int
    exceeds_threshold: bool
    deposit_required_yen: int  # at least half of `total_yen` when above the threshold


def unused_balance(reference: date, as_of_ms: int, totals: Purses, entries: int) -> UnusedBalance:
    purses = {purse.value: totals.get(purse) for purse in PREPAID_PURSES}
    total = sum(purses.values())
    exceeds = total > UNUSED_BALANCE_THRESHOLD_YEN
    return UnusedBalance(
        reference_date=reference.isoformat(),
        as_of_ms=as_of_ms,
        entries=entries,
        purses_yen=purses,
        total_yen=total,
        points_yen=totals.points,
        threshold_yen=UNUSED_BALANCE_THRESHOLD_YEN,
        exceeds_threshold=exceeds,
        # Half, rounded up to the yen: "at least half" is never met by rounding down.
        deposit_required_yen=(total + 1) // 2 if exceeds else 0,
    )


def latest_reference_date(today: date) -> date:
    """The latest reference date (March 31 or September 30) before `today`: the one a
    report is due for (a reference date's 24:00 has passed only once it is over)."""
    candidates = [
        date(year, month, day)
        for year in (today.year - 1, today.year)
        for month, day in REFERENCE_DATES
    ]
    return max(candidate for candidate in candidates if candidate < today)


def purse_totals(entries: list[JournalEntry]) -> Purses:
    """The members' purses added up over `entries` (a helper for tests and small reads)."""
    totals = dict.fromkeys(PURSES, 0)
    for entry in entries:
        for account, amount in entry.postings:
            if account.startswith("member:"):
                totals[Purse(account.rsplit(":", 1)[1])] += amount
    return Purses.of(totals)


def meal_use_yen(sums: DaySums) -> int:
    """What the meal plans paid that day, net of what voids and refunds gave back."""
    used = 0
    for figure in sums.figures:
        if figure.purse != Purse.MEAL.value:
            continue
        if figure.line is Line.SALE:
            used += figure.yen
        elif figure.line in _GIVE_BACK:
            used -= figure.yen
    return used
