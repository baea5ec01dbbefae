"""How long a member waits in the queue at a store, estimated from the tap rate.

The live lunch view knows how many taps the store's tills answered in the last minute
(λ, members served per minute), how many tills are connected there (c), and the time one
member takes at a till, tray to tap (s, configured: `live.service_s_per_member`). With
the tills busy a fraction ρ = λ·s / (60·c) of the time, the wait in the queue of a queue
with c servers is estimated by Sakasegawa's approximation for M/M/c:

    Wq ≈ s · ρ^(√(2(c+1)) − 1) / (c · (1 − ρ))

(H. Sakasegawa, 1977; exact for c = 1, within a few per cent of Erlang C elsewhere.)

What it cannot see: taps count members *served*, not members arriving. While the tills
keep up the two are the same; once a queue grows faster than the tills serve, the tap
rate stays at the tills' capacity, ρ nears 1 and the estimate is "over capacity" rather
than a number. It is a guide for a manager deciding to open another till, not a promise.
"""

from __future__ import annotations

import math

import msgspec

# At or above this utilisation the formula's wait grows without bound: the view says
# "over capacity" instead of a number that means nothing.
UTILISATION_OVER_CAPACITY = 0.95


class WaitEstimate(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    utilisation: float  # ρ, the share of the tills' time spent serving.
    wait_s: int | None  # None: no till connected, or over capacity.
    over_capacity: bool


def estimate_wait(served_per_min: float, tills: int, service_s: float) -> WaitEstimate:
    if tills <= 0:
        # No till to queue at (the taps counted came from tills since gone): no estimate.
        return WaitEstimate(utilisation=0.0, wait_s=None, over_capacity=False)
    utilisation = served_per_min * service_s / (60.0 * tills)
    if utilisation >= UTILISATION_OVER_CAPACITY:
        return WaitEstimate(utilisation=utilisation, wait_s=None, over_capacity=True)
    exponent = math.sqrt(2 * (tills + 1)) - 1
    wait_s = service_s * utilisation**exponent / (tills * (1 - utilisation))
    return WaitEstimate(utilisation=utilisation, wait_s=round(wait_s), over_capacity=False)
