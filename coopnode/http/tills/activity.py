"""What each till connected to this front did: its last tap, its counts, and the offline
taps it forwarded when it came back. The tills page and the live lunch view read it.

The tap path pays for this and nothing more (`TillActivity.note`, once per decision sent):
a dict lookup, a clock read and a few attribute writes on the till's own counters; a
declined tap adds one dict update, an offline tap one small record in a bounded deque.
No lock, no actor call, no await: the readers (a page, the live view's sampler, which
sums the counters at a fixed interval) run on the same event loop between taps.

The counts are this front's since it started: a cluster's other fronts count their own
tills (a till is connected to one front at a time).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import msgspec

from coopnode.actors.registry.messages import TillRecord
from coopnode.domain.money import TRY_AGAIN_REASONS
from coopnode.domain.till_frames import Decision

TAP_KIND = "tap"


class ForwardedTap(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One offline tap a till forwarded, and what the node made of it."""

    seq: int
    tapped_at_ms: int  # The till's clock, when it sold.
    forwarded_at_ms: int  # The node's clock, when it answered.
    amount_yen: int
    # accepted, overdraft (booked, the balance did not cover all of it), declined (kept
    # for staff: GET /api/v1/offline-refusals) or try_again (the till sends it again).
    outcome: str
    reason: str = ""
    overdraft_yen: int = 0


class TillCounters:
    """One till's counts on this front. Mutated in place on the tap path."""

    __slots__ = (
        "declines",
        "forwarded",
        "forwarded_total",
        "last_amount_yen",
        "last_approved",
        "last_reason",
        "last_tap_ms",
        "store",
        "taps",
    )

    def __init__(self, store: str, forwarded_kept: int) -> None:
        self.store = store
        self.taps = 0
        self.declines: dict[str, int] = {}
        self.last_tap_ms = 0
        self.last_approved = False
        self.last_reason = ""
        self.last_amount_yen = 0
        self.forwarded: deque[ForwardedTap] = deque(maxlen=forwarded_kept)
        self.forwarded_total = 0


class TillActivity:
    def __init__(self, forwarded_kept_per_till: int, clock_ms: Callable[[], int]) -> None:
        self._forwarded_kept = forwarded_kept_per_till
        self._clock_ms = clock_ms
        self.tills: dict[str, TillCounters] = {}

    def note(self, till: TillRecord, decision: Decision, tapped_at_ms: int) -> None:
        """Count a decision sent to a till (taps only; voids and refunds are not taps)."""
        if decision.kind != TAP_KIND:
            return
        counters = self.tills.get(till.till_id)
        if counters is None:
            counters = self.tills[till.till_id] = TillCounters(till.store, self._forwarded_kept)
        now_ms = self._clock_ms()
        counters.taps += 1
        counters.last_tap_ms = now_ms
        counters.last_approved = decision.approved
        counters.last_amount_yen = decision.amount_yen
        reason = "" if decision.reason is None else decision.reason.value
        counters.last_reason = reason
        if not decision.approved:
            counters.declines[reason] = counters.declines.get(reason, 0) + 1
        if decision.offline:
            counters.forwarded_total += 1
            counters.forwarded.appendleft(_forwarded(decision, tapped_at_ms, now_ms))


def _forwarded(decision: Decision, tapped_at_ms: int, now_ms: int) -> ForwardedTap:
    if decision.approved:
        outcome = "overdraft" if decision.overdraft_yen else "accepted"
    elif decision.reason in TRY_AGAIN_REASONS:
        outcome = "try_again"
    else:
        outcome = "declined"
    return ForwardedTap(
        seq=decision.seq,
        tapped_at_ms=tapped_at_ms,
        forwarded_at_ms=now_ms,
        amount_yen=decision.amount_yen,
        outcome=outcome,
        reason="" if decision.reason is None else decision.reason.value,
        overdraft_yen=decision.overdraft_yen,
    )
