"""Replicated wallet shards on a real Ray cluster of hosts (on this machine).

    host "head"          Ray's GCS, its state in Redis
    hosts "a", "b", "c"  a disk each, with one replica of the wallet shard each
    host "d"             the registry, identity, payments and notifier stores, and the
                         front every client pays through

The primary's host is killed (every process of it, SIGKILL) under load, round after
round; after each round the host is started again, as an operator would, and its
replica recovers from its peers before the next round kills the next primary. At the
end: every acknowledged payment booked exactly once, the books balanced, and every
replica converged on the same log.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import pytest

from coopnode.loadtest.cluster import LocalCluster, running_cluster, wait_healthy
from tests.nodeproc import NodeProcess
from tests.replicas.test_replicated_node import (
    MEMBERS,
    OPENING_BASE_YEN,
    Load,
    check_exactly_once,
    converged,
    primary,
)

pytestmark = pytest.mark.slow

# Each round takes 15 to 20 s here (most of it `ray start` of the killed host), so the
# suite runs six; `HOST_KILL_ROUNDS=20` runs the issue's twenty (README, "Replicated
# shards", has the command and its figures).
ROUNDS = int(os.environ.get("HOST_KILL_ROUNDS", "6"))
# Payments acknowledged in each round before its kill, and after the failover.
BOOKED_PER_ROUND = 20
# Each client's pause between payments: load all through the run (a few hundred
# payments a second), not the most the machine can push, which would leave the final
# check a hundred thousand payments to read back.
CLIENT_PAUSE_S = 0.02


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster[NodeProcess]]:
    with running_cluster(
        NodeProcess,
        prefix="cnrc",
        hosts=("a", "b", "c", "d"),
        shard_count=1,
        replica_count=3,
        replica_hosts=("a", "b", "c"),
        front_hosts=("d",),
        stores_host="d",
    ) as started:
        front = started.fronts["d"]
        wait_healthy(front)
        for member_no in MEMBERS:
            body = {
                "key": "enrol",
                "member_no": member_no,
                "coop": "demo",
                "deposits": {"base": OPENING_BASE_YEN},
            }
            status, answer = front.request("POST", "/api/v1/wallets", body)
            assert status == 201, answer
        yield started


async def test_the_primarys_host_killed_round_after_round_under_load_loses_and_doubles_nothing(
    cluster: LocalCluster[NodeProcess],
) -> None:
    front = cluster.fronts["d"]
    replica_hosts = cluster.replica_disks[0]
    load = Load(front, seed=116, pause_s=CLIENT_PAUSE_S)
    load.start()
    failovers_s = []
    # Each replica on a host of its own (the placement group's STRICT_SPREAD).
    assert len({role.node_id for role in await converged(front)}) == 3
    for round_number in range(1, ROUNDS + 1):
        await converged(front)
        await load.acknowledged_at_least(load.acknowledged + BOOKED_PER_ROUND)
        serving = await primary(front)
        host = replica_hosts[serving.replica]
        await asyncio.to_thread(cluster.kill_host, host)
        killed_at = time.monotonic()
        await primary(front, above_view=serving.view)
        failovers_s.append(time.monotonic() - killed_at)
        await load.acknowledged_at_least(load.acknowledged + BOOKED_PER_ROUND)
        status, audit = await asyncio.to_thread(front.request, "GET", "/api/v1/audit")
        assert status == 200 and audit["balanced"], audit
        print(
            f"round {round_number}: host {host} (primary, view {serving.view}) killed; "
            f"served again in {failovers_s[-1]:.2f} s"
        )
        await asyncio.to_thread(cluster.restart_host, host)
    sent = await load.finish()
    assert len({role.node_id for role in await converged(front)}) == 3
    check_exactly_once(front, sent)
    print(
        f"{ROUNDS} hosts killed: served again within {max(failovers_s):.2f} s "
        f"(median {sorted(failovers_s)[len(failovers_s) // 2]:.2f} s)"
    )
