"""What a till may approve on its own while it cannot reach the node.

The node sends the limits when a till connects; a till that has never connected knows
none, and approves nothing offline. A card on the till's last known deny list is never
approved. The rest is bounded so that what can go uncovered is bounded too: at most
`tap_max_yen` a tap, `card_day_max_yen` per card per day at this till, and at most
`queue_max_taps` taps waiting to be forwarded.
"""

from __future__ import annotations

from coopnode.domain.money import Reason
from coopnode.domain.till_frames import OfflineLimits

# A till that never connected has no limits from the node: nothing is approved offline.
NO_LIMITS = OfflineLimits(tap_max_yen=0, card_day_max_yen=0, queue_max_taps=0)


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
