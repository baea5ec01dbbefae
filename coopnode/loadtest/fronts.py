"""Load spread over several fronts of one node: who goes where, and each front's figures.

A cluster has a front on each host, every front serving tills and the APIs. The harness
spreads a run over the fronts it is given the way a co-op's own traffic spreads: each
till is connected to one front for the whole run (till i to front i mod n, round robin),
and the requests that are not taps go to the fronts in turn (the k-th to front k mod n),
as a round-robin balancer would send them. The split is a pure function of the workload,
so two runs of one seed send the same operations to the same fronts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from coopnode.loadtest.openloop import RunResult
from coopnode.loadtest.scenarios import Op

# A co-op federation runs a handful of hosts, a front on each; more URLs than this on one
# command line is a mistake, and each front costs the generator a session and recorders.
FRONTS_MAX = 16


class FrontsError(ValueError):
    """A list of front URLs that cannot be loaded: empty, too long, repeated or not HTTP."""


class FrontFigures(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One front's share of a run: its tills, its operations, its figures by kind."""

    url: str
    tills: int
    operations: int
    overall: RunResult
    by_kind: dict[str, RunResult]


def parse_front_urls(values: Iterable[str]) -> list[str]:
    """The fronts of `--url`, given once each or as comma-separated lists, in order."""
    urls = [part.strip().rstrip("/") for value in values for part in value.split(",")]
    urls = [url for url in urls if url]
    if not urls:
        raise FrontsError("--url names no front")
    if len(urls) > FRONTS_MAX:
        raise FrontsError(f"--url names {len(urls)} fronts; at most {FRONTS_MAX}")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise FrontsError(f"--url {url}: a front's URL starts with http:// or https://")
    repeated = sorted({url for url in urls if urls.count(url) > 1})
    if repeated:
        raise FrontsError(f"--url names a front twice: {', '.join(repeated)}")
    return urls


def front_of_till(till: int, fronts: int) -> int:
    """The front till `till` stays connected to: the tills are dealt out in turn."""
    if fronts < 1:
        raise FrontsError(f"a run needs at least one front, not {fronts}")
    return till % fronts


def tills_per_front(tills: int, fronts: int) -> list[int]:
    """How many of `tills` tills each front holds."""
    counts = [0] * fronts
    for till in range(tills):
        counts[front_of_till(till, fronts)] += 1
    return counts


def assign_fronts(ops: Sequence[Op], fronts: int) -> list[int]:
    """The front of each operation: a tap its till's, the others in turn, in send order."""
    if fronts < 1:
        raise FrontsError(f"a run needs at least one front, not {fronts}")
    assigned: list[int] = []
    requests = 0
    for op in ops:
        if op.kind == "tap":
            assigned.append(front_of_till(op.till, fronts))
        else:
            assigned.append(requests % fronts)
            requests += 1
    return assigned
