"""A primary whose disk hangs steps aside, and a backup whose disk works takes over.

Replica 0's flushes stall for 3 s at a time (the storage fault hook), longer than
`replication.flush_stuck_ms` (1 s here): the first primary goes silent, a view change
makes another replica the primary, and payments go on being booked, exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.nodeproc import NodeProcess, remove_tree, short_tmpdir
from tests.replicas.test_replicated_node import (
    MEMBERS,
    OPENING_BASE_YEN,
    PATIENCE_S,
    REPLICAS,
    Load,
    check_exactly_once,
    roles,
)

pytestmark = pytest.mark.slow

STUCK = {
    **REPLICAS,
    "COOPNODE_REPLICATION__FLUSH_STUCK_MS": "1000",
    "COOPNODE_REPLICATION__STORAGE_FAULT__REPLICA": "0",
    "COOPNODE_REPLICATION__STORAGE_FAULT__STALL_MS": "3000",
    "COOPNODE_REPLICATION__STORAGE_FAULT__EVERY_MS": "500",
}


@pytest.fixture(scope="module")
def node() -> Iterator[NodeProcess]:
    data_dir = short_tmpdir("cnstk")
    process = NodeProcess(data_dir, env=STUCK).start()
    try:
        for member_no in MEMBERS:
            body = {
                "key": "enrol",
                "member_no": member_no,
                "coop": "demo",
                "deposits": {"base": OPENING_BASE_YEN},
            }
            status, answer = process.request("POST", "/api/v1/wallets", body)
            assert status == 201, answer
        yield process
    finally:
        process.stop()
        remove_tree(data_dir)


async def test_a_primary_whose_disk_hangs_steps_aside(node: NodeProcess) -> None:
    load = Load(node, seed=30, pause_s=0.01)
    load.start()
    await load.acknowledged_at_least(20)
    deadline = time.monotonic() + PATIENCE_S
    while True:
        found = [role for role in await asyncio.to_thread(roles, node) if role is not None]
        serving = [role for role in found if role.endpoint]
        if serving and serving[0].replica != 0 and serving[0].view >= 1:
            break
        assert time.monotonic() < deadline, f"the primary did not step aside: {found}"
        await asyncio.sleep(0.1)
    await load.acknowledged_at_least(load.acknowledged + 50)
    check_exactly_once(node, await load.finish())
