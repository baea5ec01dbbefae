"""The till generator's closed loop on a real node: every tap it counts was booked once."""

from __future__ import annotations

import aiohttp
import pytest

from coopnode.loadtest.tills import SimTill, TillSpec, run_closed
from tests.nodeproc import NodeProcess
from tests.tillclient import add_till, enrol_with_card

pytestmark = pytest.mark.slow

DEPOSIT_YEN = 100_000


async def test_every_tap_the_closed_loop_counts_approved_was_booked_once(
    node: NodeProcess,
) -> None:
    members = {f"20263900000{n}": f"390000000000000{n}" for n in range(2)}
    for member, card in members.items():
        enrol_with_card(node, member, card, base=DEPOSIT_YEN)
    # Cafeteria tills earn no points, so a purse falls by exactly what was paid.
    specs = []
    for number in range(4):
        till_id, key = add_till(node, f"closed-{number}", kind="cafeteria")
        specs.append(TillSpec(till_id=till_id, signing_key_hex=bytes(key).hex()))
    async with aiohttp.ClientSession() as session:
        tills = [SimTill(node.url, spec) for spec in specs]
        for till in tills:
            await till.connect(session)
        try:
            result = await run_closed(tills, list(members.values()), 1, duration_s=0.2)
        finally:
            for till in tills:
                await till.close()
    assert result.errors == 0, result.errors_by_reason
    # Each till sent at least one tap, and none is left waiting for its decision.
    assert result.approved >= len(tills)
    assert all(not till.intended for till in tills)
    paid = 0
    for member in members:
        status, wallet = node.request("GET", f"/api/v1/wallets/{member}")
        assert status == 200, wallet
        paid += DEPOSIT_YEN - wallet["balances"]["base"]
    assert paid == result.approved
    assert result.approved_per_s > 0 and result.latency_p50_ms > 0
