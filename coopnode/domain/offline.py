"""What a till may approve on its own while it cannot reach the node, and what the node
takes of it later.

The node sends the limits when a till connects; a till that has never connected knows
none, and approves nothing offline. A card on the till's last known deny list is never
approved. The rest is bounded so that what can go uncovered is bounded too: at most
`tap_max_yen` a tap, `card_day_max_yen` per card per co-op day at this till, and at most
`queue_max_taps` taps waiting to be forwarded.

A till approves under the limits it was last given, and it may be out of reach for days
while the node's settings change: a tap forwarded later is judged by the limits it was
sold under, which the till states in the signed tap. The till's word alone would let
anyone holding a till's key state any limit, so the node keeps, per till, the history of
the limits it sent in `Welcome`s (`LimitsSent`), and takes the stated limits only if they
are an entry of that history that was in force when the tap is dated (give or take the
clock skew the node allows). A till's key can then claim at most the most generous
limits the node gave that till within the age cut-off: what an honest till out of reach
that long could have sold.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from coopnode.domain.money import Reason
from coopnode.domain.till_frames import OfflineLimits

# A till that never connected has no limits from the node: nothing is approved offline.
NO_LIMITS = OfflineLimits(tap_max_yen=0, card_day_max_yen=0, queue_max_taps=0)
# The limits change when an operator edits the node's settings, a few times a year. More
# changes than this within one age cut-off are a setup gone wrong; the oldest then gives
# way, and a tap sold under it is refused (and listed for staff, never dropped).
LIMITS_HISTORY_KEPT_MAX = 32


class LimitsSent(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Limits the node sent a till in a `Welcome`, and when: one entry of its history."""

    sent_at_ms: int
    limits: OfflineLimits


def offline_refusal(
    limits: OfflineLimits,
    denied: bool,
    spent_today_yen: int,
    queued_taps: int,
    amount_yen: int,
) -> tuple[Reason, str] | None:
    """Why an offline tap must be refused, or None when the till may approve it."""
    if denied:
        return Reason.CARD_BLOCKED, "the card is on the deny list"
    if amount_yen > limits.tap_max_yen:
        return Reason.ABOVE_MAXIMUM, f"offline, a tap may be at most {limits.tap_max_yen:,} yen"
    if spent_today_yen + amount_yen > limits.card_day_max_yen:
        return (
            Reason.OVER_LIMIT,
            f"offline, a card may spend at most {limits.card_day_max_yen:,} yen a day",
        )
    if queued_taps >= limits.queue_max_taps:
        return Reason.OVERLOADED, "the offline queue is full; the node must be reached first"
    return None


def limits_in_force(history: Sequence[LimitsSent], at_ms: int, skew_ms: int) -> list[OfflineLimits]:
    """The limits a till may have sold under at `at_ms` (its clock, up to `skew_ms` off
    the node's): each entry is in force from when it was sent until the next was."""
    found = []
    for index, entry in enumerate(history):
        until_ms = history[index + 1].sent_at_ms if index + 1 < len(history) else None
        if entry.sent_at_ms - skew_ms <= at_ms and (until_ms is None or at_ms < until_ms + skew_ms):
            found.append(entry.limits)
    return found


def noted(
    history: Sequence[LimitsSent], sent: LimitsSent, now_ms: int, skew_ms: int
) -> list[LimitsSent]:
    """The till's history once `sent` has gone out: a new entry when the limits changed,
    without the entries no tap can claim any more (every tap sold under them is past
    their age cut-off) and at most `LIMITS_HISTORY_KEPT_MAX` entries."""
    if history and history[-1].limits == sent.limits:
        return list(history)
    entries = sorted([*history, sent], key=lambda entry: entry.sent_at_ms)
    # Only the oldest go: an entry's time in force ends where the next one's begins, so
    # an entry dropped from the middle would stretch its predecessor's.
    first = 0
    while first + 1 < len(entries):
        last_claim_ms = entries[first + 1].sent_at_ms + skew_ms
        if now_ms - last_claim_ms <= entries[first].limits.tap_age_max_ms:
            break
        first += 1
    return entries[first:][-LIMITS_HISTORY_KEPT_MAX:]


def node_offline_refusal(
    *,
    stated: OfflineLimits | None,
    current: OfflineLimits,
    history: Sequence[LimitsSent],
    amount_yen: int,
    at_ms: int,
    now_ms: int,
    skew_ms: int,
) -> tuple[Reason, str] | None:
    """Why the node refuses a forwarded offline tap on its limits or its date, or None.

    `stated` is None for a tap signed before limits travelled with taps: it is judged by
    the node's `current` limits, as it was then."""
    if at_ms > now_ms + skew_ms:
        return Reason.INVALID_INPUT, "the offline tap is dated ahead of the node's clock"
    limits = current
    if stated is not None:
        if stated not in limits_in_force(history, at_ms, skew_ms):
            return (
                Reason.INVALID_INPUT,
                "the tap states offline limits the node had not given this till when it is dated",
            )
        limits = stated
    if at_ms < now_ms - limits.tap_age_max_ms:
        return Reason.INVALID_INPUT, "the offline tap is older than the node accepts"
    if amount_yen > limits.tap_max_yen:
        return Reason.ABOVE_MAXIMUM, f"above the offline tap limit of {limits.tap_max_yen:,} yen"
    return None
