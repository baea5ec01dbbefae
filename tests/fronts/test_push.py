"""Two fronts on one real Ray cluster (issue 15 §2): a change made through one front is
pushed to the other's tills, a frame sent again through the other front gets the same
decision from the wallet's records, and the highest sequence number seen from a till is
known to both fronts.

Both fronts reload the registry only every hour (`FRONT_ENV`): whatever reaches front B
within the test arrived by push.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from coopnode.domain.money import Reason
from tests.fronts.cluster import Front
from tests.fronts.conftest import Cluster
from tests.nodeproc import NodeProcess
from tests.proc_sockets import bound_sockets
from tests.tillclient import RawTill, add_till, enrol_with_card

pytestmark = pytest.mark.slow

# Patience for what happens at once; never the bound being tested.
PATIENCE_S = 60.0


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def knows_till(front: NodeProcess, till_id: str) -> bool:
    status, listing = front.request("GET", "/api/v1/tills")
    return status == 200 and any(till["till_id"] == till_id for till in listing["tills"])


def knows_card(front: NodeProcess, idm: str) -> bool:
    return front.request("GET", f"/api/v1/cards/{idm}")[0] == 200


def balanced(front: NodeProcess) -> bool:
    status, audit = front.request("GET", "/api/v1/audit")
    assert status == 200, audit
    return bool(audit["balanced"])


def test_every_process_of_the_cluster_listens_on_loopback_only(cluster: Cluster) -> None:
    pids = [*cluster.head.pids(), cluster.front_a.pid, cluster.front_b.pid]
    listening = bound_sockets(pids, "tcp")
    assert listening, "no listening socket found: the test would prove nothing"
    assert [entry for entry in listening if entry[0] != "127.0.0.1"] == []
    assert bound_sockets(pids, "udp") == []


async def test_a_card_lost_through_one_front_is_pushed_to_the_other_and_refused_there(
    cluster: Cluster,
) -> None:
    front_a, front_b = cluster.front_a, cluster.front_b
    member, card = "202615000012", "1500000000000012"
    enrol_with_card(front_a, member, card, base=5_000)
    till_id, key = add_till(front_a, "shop-15")
    until(lambda: knows_till(front_b, till_id) and knows_card(front_b, card), "B's copy")
    till = await RawTill(front_b.url, till_id, key).open()
    try:
        assert till.welcome is not None and card not in till.welcome.deny_idms
        approved = await till.decide(till.tap(card, 100))
        assert approved.approved, approved

        reported_s = time.monotonic()
        status, lost = await asyncio.to_thread(
            front_a.request, "POST", f"/api/v1/cards/{card}/lost", {}
        )
        assert status == 200 and lost["status"] == "lost", lost
        await asyncio.wait_for(till.deny_changed.wait(), PATIENCE_S)
        arrived_s, update = till.deny_updates[0]
        assert update.blocked == [card]
        # It came by push: front B reloads the registry only once an hour here. How long
        # it took is printed, not asserted (a latency is measured, not bet on: README).
        print(f"lost at front A, at front B's till {arrived_s - reported_s:.3f} s later")

        refused = await till.decide(till.tap(card, 100))
        assert not refused.approved and refused.reason is Reason.CARD_BLOCKED
    finally:
        await till.close()
    status, seen = front_b.request("GET", f"/api/v1/cards/{card}")
    assert status == 200 and seen["status"] == "lost", seen


async def test_a_frame_sent_again_through_the_other_front_gets_the_same_decision(
    cluster: Cluster,
) -> None:
    front_a, front_b = cluster.front_a, cluster.front_b
    member, card = "202615000020", "1500000000000020"
    enrol_with_card(front_a, member, card, base=5_000)
    till_id, key = add_till(front_a, "shop-15")
    until(lambda: knows_till(front_b, till_id) and knows_card(front_b, card), "B's copy")
    till_a = await RawTill(front_a.url, till_id, key).open()
    till_b = await RawTill(front_b.url, till_id, key).open()
    try:
        body = till_a.tap(card, 700)
        first = await till_a.decide(body)
        assert first.approved and first.balances is not None
        # Front B has never seen this number: it asks the wallet, which answers from its
        # records. The same decision, balances of then included, and no second charge.
        again = await till_b.decide(body, till_b.sealed(body))
        assert again == first
        conflict = await till_b.decide(till_b.tap(card, 300, seq=body.seq))
        assert not conflict.approved and conflict.reason is Reason.IDEMPOTENCY_CONFLICT
    finally:
        await till_a.close()
        await till_b.close()
    status, wallet = front_b.request("GET", f"/api/v1/wallets/{member}")
    assert status == 200 and wallet["balances"]["base"] == 4_300, wallet
    assert balanced(front_a)


async def test_the_highest_number_one_front_saw_is_told_to_a_till_at_the_other(
    cluster: Cluster,
) -> None:
    front_a, front_b = cluster.front_a, cluster.front_b
    member, card = "202615000038", "1500000000000038"
    enrol_with_card(front_a, member, card, base=5_000)
    till_id, key = add_till(front_a, "shop-15")
    until(lambda: knows_till(front_b, till_id) and knows_card(front_b, card), "B's copy")
    till_a = await RawTill(front_a.url, till_id, key).open()
    try:
        for _ in range(5):
            assert (await till_a.decide(till_a.tap(card, 10))).approved
    finally:
        await till_a.close()
    # Front A saves what it saw every `till.sequences_save_s`; front B reads the saved
    # number when it welcomes the till.
    seen = await _welcome_seq_until(front_b, till_id, key, 5)
    assert seen == 5


async def _welcome_seq_until(front: Front, till_id: str, key: SigningKey, wanted: int) -> int:
    deadline = time.monotonic() + PATIENCE_S
    while True:
        till = await RawTill(front.url, till_id, key).open()
        await till.close()
        assert till.welcome is not None
        if till.welcome.seq_seen >= wanted or time.monotonic() > deadline:
            return till.welcome.seq_seen
        await asyncio.sleep(0.2)


async def test_a_sale_booked_at_one_front_and_sent_again_after_the_card_was_lost_stands(
    cluster: Cluster,
) -> None:
    """The till never heard front A's answer, and the card was reported lost before it
    sent the frame again to front B: B answers from the wallet's records, not with the
    card's block (which the till would sell again as a new offline sale: a second charge)."""
    front_a, front_b = cluster.front_a, cluster.front_b
    member, card = "202615000053", "1500000000000053"
    enrol_with_card(front_a, member, card, base=5_000)
    till_id, key = add_till(front_a, "shop-15")
    until(lambda: knows_till(front_b, till_id) and knows_card(front_b, card), "B's copy")
    till_a = await RawTill(front_a.url, till_id, key).open()
    till_b = await RawTill(front_b.url, till_id, key).open()
    try:
        body = till_a.tap(card, 800)
        first = await till_a.decide(body)
        assert first.approved
        status, lost = front_a.request("POST", f"/api/v1/cards/{card}/lost", {})
        assert status == 200, lost
        await asyncio.wait_for(till_b.deny_changed.wait(), PATIENCE_S)
        again = await till_b.decide(body, till_b.sealed(body))
        assert again == first
        refused = await till_b.decide(till_b.tap(card, 800, seq=body.seq + 1))
        assert not refused.approved and refused.reason is Reason.CARD_BLOCKED
    finally:
        await till_a.close()
        await till_b.close()
    status, wallet = front_b.request("GET", f"/api/v1/wallets/{member}")
    assert status == 200 and wallet["balances"]["base"] == 4_200, wallet
    assert balanced(front_b)


def actor_pids(cluster: Cluster, class_name: str) -> list[int]:
    """The cluster's processes that run an actor of `class_name` (Ray titles them so)."""
    title = f"ray::{class_name}".encode()
    pids = []
    for pid in cluster.head.pids():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if command.startswith(title):
            pids.append(pid)
    return pids


async def test_changes_are_pushed_again_once_the_registry_actor_restarted(
    cluster: Cluster,
) -> None:
    """Ray restarts a registry actor that was killed; each front's waiting call failed
    with it, and is made again to the new actor, whose log is empty."""
    front_a, front_b = cluster.front_a, cluster.front_b
    member, card = "202615000061", "1500000000000061"
    enrol_with_card(front_a, member, card, base=5_000)
    till_id, key = add_till(front_a, "shop-15")
    until(lambda: knows_till(front_b, till_id) and knows_card(front_b, card), "B's copy")
    [registry_pid] = actor_pids(cluster, "RegistryActor")
    os.kill(registry_pid, signal.SIGKILL)
    until(lambda: actor_pids(cluster, "RegistryActor") not in ([], [registry_pid]), "restart")
    till = await RawTill(front_b.url, till_id, key).open()
    try:
        status, lost = await asyncio.to_thread(
            front_a.request, "POST", f"/api/v1/cards/{card}/lost", {}
        )
        assert status == 200, lost
        await asyncio.wait_for(till.deny_changed.wait(), PATIENCE_S)
        assert till.deny_updates[0][1].blocked == [card]
    finally:
        await till.close()
