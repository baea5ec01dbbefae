"""The harness spread over the two fronts of a real Ray cluster on this machine."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import msgspec
import pytest

from coopnode.loadtest.cluster import LocalCluster, running_cluster, wait_healthy
from coopnode.loadtest.fronts import assign_fronts, front_of_till
from coopnode.loadtest.harness import Naming, Target, books_balanced, close, play, prepare
from coopnode.loadtest.scenarios import build_workload, load_scenario
from tests.nodeproc import NodeProcess

pytestmark = pytest.mark.slow

RATE_PER_S = 60.0
DURATION_S = 3.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster[NodeProcess]]:
    with running_cluster(NodeProcess, "cnlcl", hosts=("a", "b"), shard_count=1) as running:
        for front in running.fronts.values():
            wait_healthy(front)
        yield running


async def test_a_run_over_two_fronts_is_measured_per_front_and_balances_once(
    cluster: LocalCluster[NodeProcess],
) -> None:
    """Taps and charges through both fronts: each till stays on its front, each front's
    figures count exactly what was sent to it, and the books balance at the end."""
    mixed = load_scenario("mixed")
    population = msgspec.structs.replace(mixed.population, members=40, accounts=0, lost_cards=0)
    tills = msgspec.structs.replace(mixed.tills, count=6)
    mix = {kind: share for kind, share in mixed.mix.items() if kind != "sign_in"}
    scenario = msgspec.structs.replace(mixed, population=population, tills=tills, mix=mix)
    target = Target(cluster.urls, cluster.fronts["a"].token, scenario, Naming(prefix=4301))
    ops = build_workload(scenario, RATE_PER_S, DURATION_S, scenario.seed)
    async with target.session() as session:
        try:
            await prepare(target, session)
            connected = [till.url for till in target.tills]
            figures = await play(target, ops, RATE_PER_S, DURATION_S, progress=False)
        finally:
            await close(target)
    assert connected == [
        f"{cluster.urls[front_of_till(index, 2)]}/till/ws" for index in range(tills.count)
    ]
    assert figures.overall.errors == 0, figures.overall.errors_by_reason
    assert figures.overall.completed == len(ops)
    sent = Counter(assign_fronts(ops, 2))
    kinds = Counter((front, op.kind) for op, front in zip(ops, assign_fronts(ops, 2), strict=True))
    assert [front.url for front in figures.by_front] == cluster.urls
    for index, front in enumerate(figures.by_front):
        assert front.operations == front.overall.completed == sent[index] > 0
        assert front.by_kind["tap"].completed == kinds[(index, "tap")] > 0
        assert front.tills == 3
    assert await books_balanced(target)
