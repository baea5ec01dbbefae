"""The node on a real three-host Ray cluster (on this machine), under load and faults.

One cluster serves the module (starting one takes about a minute here); each test leaves
it whole again. Payments go to both fronts; a client whose front is gone sends the same
request (the same idempotency key) to the other front, as a till moves, and a real till
agent given both fronts moves by itself. After each fault:
every acknowledged payment is in the books exactly once, and every shard's books balance.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from coopnode.domain.money import TillKind
from coopnode.domain.sharding import shard_of
from coopnode.reader.till_agent import TillAgent
from coopnode.reader.till_key import TillKeyFile
from coopnode.reader.till_state import TillState
from coopnode.settings import TillSettings
from tests.cluster.harness import Cluster, running_cluster, wait_healthy
from tests.fronts.test_push import PATIENCE_S, knows_card, knows_till, until
from tests.node.test_faults import history_keys
from tests.nodeproc import NodeProcess
from tests.tillclient import NoReader, add_till, enrol_with_card, tap_keys, wait_for

pytestmark = pytest.mark.slow

MEMBERS = [f"2026230{index:05d}" for index in range(24)]
OPENING_BASE_YEN = 100_000
CLIENTS_PER_FRONT = 4
# Answers a payment may get while hosts come and go: booked, refused for funds, or "try
# again" (its shard is down or restarting).
ANSWERS = (200, 402, 503)
# A till that gives up on a silent front quickly, so that it moves within the test.
TILL_SETTINGS = msgspec.structs.replace(
    TillSettings(),
    agent_decision_timeout_s=2.0,
    agent_reconnect_backoff_ms=100,
    agent_reconnect_backoff_max_ms=400,
    agent_forward_retry_s=0.2,
)
TILL_SALES_YEN = (300, 400, 500, 600)
# Payments booked before a fault, and again after it, before the load stops: the load is
# measured in events, never in seconds (check_exactly_once wants more than 50 in all).
BOOKED_BEFORE_FAULT = 40
# Payments booked while the head is away before it is started again.
BOOKED_WITHOUT_HEAD = 20
TILL_DEPOSIT_YEN = 10_000


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as running:
        front = running.fronts["a"]
        for member_no in MEMBERS:
            body = {
                "key": "enrol",
                "member_no": member_no,
                "coop": "demo",
                "deposits": {"base": OPENING_BASE_YEN},
            }
            status, answer = front.request("POST", "/api/v1/wallets", body)
            assert status == 201, answer
        yield running


class Sent:
    """One payment, the front that answered it, and what it answered."""

    def __init__(self, member_no: str, body: dict[str, Any]) -> None:
        self.member_no = member_no
        self.body = body
        self.status: int | None = None
        self.answer: dict[str, Any] | None = None
        self.answered_at = 0.0


class Load:
    """Clients paying through both fronts until stopped; each keeps its requests."""

    def __init__(self, cluster: Cluster, seed: int) -> None:
        self.cluster = cluster
        # Keys are the test's own: the cluster (and its books) serve the whole module.
        self.seed = seed
        self.rng = random.Random(seed)
        self.sent: list[Sent] = []
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for home in ("a", "b"):
            other = "b" if home == "a" else "a"
            for number in range(CLIENTS_PER_FRONT):
                rng = random.Random(self.rng.random())
                name = f"{home}{number}"
                self.tasks.append(asyncio.create_task(self._client(name, [home, other], rng)))

    async def booked(self, count: int, *, after: float = 0.0, prefix: str = "") -> None:
        """Wait (patience, not a bet on speed) until `count` payments whose key starts
        with `prefix` were booked after the monotonic time `after`."""
        deadline = time.monotonic() + PATIENCE_S
        while True:
            done = sum(
                1
                for record in self.sent
                if record.status == 200
                and record.answered_at > after
                and record.body["key"].startswith(f"{self.seed}-{prefix}")
            )
            if done >= count:
                return
            assert time.monotonic() < deadline, f"{done} of {count} payments booked"
            await asyncio.sleep(0.05)

    async def stop(self) -> list[Sent]:
        self.stopping.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks), timeout=120)
        return self.sent

    async def _client(self, name: str, fronts: list[str], rng: random.Random) -> None:
        headers = {"Authorization": f"Bearer {self.cluster.fronts['a'].token}"}
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            index = 0
            while not self.stopping.is_set():
                record = Sent(
                    rng.choice(MEMBERS),
                    {
                        "key": f"{self.seed}-{name}-{index}",
                        "amount_yen": rng.randint(1, 300),
                        "till_kind": "shop",
                        "store": "shop-1",
                    },
                )
                index += 1
                self.sent.append(record)
                await self._send(session, fronts, record)

    async def _send(self, session: aiohttp.ClientSession, fronts: list[str], record: Sent) -> None:
        """Send to the first front that answers; a front gone moves the client on."""
        for _ in range(2):
            url = self.cluster.fronts[fronts[0]].url
            try:
                path = f"{url}/api/v1/wallets/{record.member_no}/payments"
                async with session.post(path, json=record.body) as response:
                    record.status = response.status
                    record.answer = await response.json()
                    record.answered_at = time.monotonic()
                    return
            except (TimeoutError, aiohttp.ClientError):
                fronts.reverse()  # This front is lost: the same request to the other.
        await asyncio.sleep(0.2)


def settle(front: NodeProcess, sent: list[Sent]) -> None:
    """Every request answered "try again" (or not at all) is sent again under its key, as
    its till would, so that each ends booked or refused."""
    for record in sent:
        if record.status not in (200, 402):
            path = f"/api/v1/wallets/{record.member_no}/payments"
            status, answer = front.request("POST", path, record.body)
            assert status in (200, 402), (status, answer)
            record.status, record.answer = status, answer


def check_exactly_once(front: NodeProcess, sent: list[Sent]) -> None:
    for record in sent:
        assert record.status in ANSWERS, (record.status, record.answer)
    booked = [record for record in sent if record.status == 200]
    assert len(booked) > 50, "the load did not get going"
    # A payment sent again answers with the very same booking, from the wallet's records.
    for record in rng_sample(booked, 200):
        path = f"/api/v1/wallets/{record.member_no}/payments"
        assert front.request("POST", path, record.body) == (200, record.answer)
    by_member: dict[str, set[str]] = {}
    for record in booked:
        by_member.setdefault(record.member_no, set()).add(record.body["key"])
    for member_no in MEMBERS:
        keys, lines = history_keys(front, member_no)
        counts = Counter(keys)
        assert all(count == 1 for count in counts.values()), "a payment was booked twice"
        assert by_member.get(member_no, set()) <= set(counts), "a booked payment is lost"
        status, view = front.request("GET", f"/api/v1/wallets/{member_no}")
        assert status == 200
        spent = sum(-line["changes"]["base"] for line in lines if line["kind"] == "pay")
        assert view["balances"]["base"] == OPENING_BASE_YEN - spent
    status, audit = front.request("GET", "/api/v1/audit")
    assert status == 200 and audit["balanced"] is True, audit


def rng_sample(records: list[Sent], count: int) -> list[Sent]:
    return random.Random(len(records)).sample(records, min(count, len(records)))


def shard_pid(front: NodeProcess, index: int) -> int:
    health = wait_healthy(front)
    shards = health["shards"]
    assert isinstance(shards, list)
    pid: int = shards[index]["pid"]
    return pid


def till_of_front_b(cluster: Cluster, state_dir: Path) -> tuple[TillAgent, str, str]:
    """A cafeteria till that sells through front B first, then front A; its member's
    wallet is on shard 0 (host a), so it can pay while host b is down."""
    front_a, front_b = cluster.fronts["a"], cluster.fronts["b"]
    member = next(m for m in (f"2026231{i:05d}" for i in range(100)) if shard_of(m, 2) == 0)
    card = f"1500{member}"
    enrol_with_card(front_a, member, card, base=TILL_DEPOSIT_YEN)
    till_id, key = add_till(front_a, "cafe-cl", kind="cafeteria")
    until(lambda: knows_till(front_b, till_id) and knows_card(front_b, card), "B's copy")
    key_file = TillKeyFile(
        till_id=till_id,
        store="cafe-cl",
        kind=TillKind.CAFETERIA,
        signing_key_hex=bytes(key).hex(),
    )
    state = TillState(state_dir, 8 << 20)
    urls = [front_b.url, front_a.url]
    agent = TillAgent(key_file, urls, TILL_SETTINGS, state, NoReader(), lambda line: None)
    return agent, member, card


async def test_a_host_killed_under_load_loses_nothing_and_its_shard_comes_back_there(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Host b (front B and wallet shard 1) loses power under load: B's clients and its
    till move to A, shard 1's members are answered "try again" until b is back, and then
    shard 1 runs on b again from its own files."""
    front_a = cluster.fronts["a"]
    before = shard_pid(front_a, 1)
    assert before in cluster.hosts["b"].processes()
    agent, member, card = till_of_front_b(cluster, tmp_path / "till")
    await agent.start()
    try:
        await wait_for(lambda: agent.link.node_url == cluster.fronts["b"].url, PATIENCE_S)
        load = Load(cluster, seed=20261207)
        load.start()
        for amount in TILL_SALES_YEN[:2]:
            assert (await agent.charge(card, amount)).approved
        await load.booked(BOOKED_BEFORE_FAULT)
        killed_at = time.monotonic()
        await asyncio.to_thread(cluster.kill_host, "b")
        await wait_for(lambda: agent.link.node_url == front_a.url, PATIENCE_S)
        for amount in TILL_SALES_YEN[2:]:
            assert (await agent.charge(card, amount)).approved
        # B's clients are served by A while b is down, before b comes back.
        await load.booked(1, after=killed_at, prefix="b")
        await asyncio.to_thread(cluster.hosts["b"].start)
        await asyncio.to_thread(wait_healthy, front_a)
        await load.booked(BOOKED_BEFORE_FAULT, after=time.monotonic())
        sent = await load.stop()
        await wait_for(lambda: agent.state.queued_count() == 0, PATIENCE_S)
    finally:
        await agent.stop()
        agent.state.close()
    # Every sale of the till is booked once, whichever front heard it.
    numbers = range(1, len(TILL_SALES_YEN) + 1)
    assert tap_keys(front_a, member) == sorted(f"tap:{agent.till_id}:{n}" for n in numbers)
    status, wallet = front_a.request("GET", f"/api/v1/wallets/{member}")
    assert status == 200, wallet
    assert wallet["balances"]["base"] == TILL_DEPOSIT_YEN - sum(TILL_SALES_YEN), wallet
    # B's clients were served by A after the kill.
    of_b = [r for r in sent if r.body["key"].startswith(f"{load.seed}-b")]
    moved = [record for record in of_b if record.answered_at > killed_at]
    assert any(record.status == 200 for record in moved), "B's clients found no front"
    after = shard_pid(front_a, 1)
    assert after != before and after in cluster.hosts["b"].processes()
    settle(front_a, sent)
    check_exactly_once(front_a, sent)
    await asyncio.to_thread(cluster.fronts["b"].start)
    wait_healthy(cluster.fronts["b"])


async def test_the_head_killed_under_load_stops_no_payment(cluster: Cluster) -> None:
    """Every process of the head (Ray's GCS) dies under load: the fronts and shards keep
    booking payments while it is away, and a head started again takes the cluster's state
    back from Redis."""
    load = Load(cluster, seed=7)
    load.start()
    await load.booked(BOOKED_BEFORE_FAULT)
    await asyncio.to_thread(cluster.head.kill)
    killed_at = time.monotonic()
    # The head is started again only once payments were booked without it.
    await load.booked(BOOKED_WITHOUT_HEAD, after=killed_at)
    restarted_at = time.monotonic()
    await asyncio.to_thread(cluster.head.start)
    await load.booked(BOOKED_BEFORE_FAULT, after=time.monotonic())
    sent = await load.stop()
    during = [r for r in sent if r.status == 200 and killed_at < r.answered_at < restarted_at]
    assert len(during) >= BOOKED_WITHOUT_HEAD, "payments stopped while the head was away"
    for front in cluster.fronts.values():
        wait_healthy(front)
    settle(cluster.fronts["a"], sent)
    # A front started after the head came back finds every actor by name: the head took
    # the cluster's state back from Redis.
    await asyncio.to_thread(cluster.fronts["b"].stop)
    await asyncio.to_thread(cluster.fronts["b"].start)
    check_exactly_once(cluster.fronts["b"], sent)


async def test_a_shard_moved_to_another_host_under_load_loses_nothing(cluster: Cluster) -> None:
    """`coopnode admin move-shard 1 --to a` while payments flow: shard 1 then runs on
    host a from the copied files, its old files on b are marked moved, nothing acknowledged
    is lost or doubled; and moved back to b (over the files it left there), the same."""
    front_a = cluster.fronts["a"]
    before = shard_pid(front_a, 1)
    assert before in cluster.hosts["b"].processes()
    load = Load(cluster, seed=11)
    load.start()
    await load.booked(BOOKED_BEFORE_FAULT)
    output = await asyncio.to_thread(cluster.admin, "move-shard", "1", "--to", "a")
    await load.booked(BOOKED_BEFORE_FAULT, after=time.monotonic())
    sent = await load.stop()
    assert "wallet_shard_disks = ['a', 'a']" in output, output
    moved = shard_pid(front_a, 1)
    assert moved in cluster.hosts["a"].processes()
    old_home = cluster.data_dir("b") / "wallet" / "shard-001"
    assert (old_home / "moved.json").exists()
    settle(front_a, sent)
    check_exactly_once(front_a, sent)
    # And back to b, where the files it left are put aside for the copy.
    output = await asyncio.to_thread(cluster.admin, "move-shard", "1", "--to", "b")
    assert "wallet_shard_disks = ['a', 'b']" in output, output
    assert shard_pid(front_a, 1) in cluster.hosts["b"].processes()
    assert not (old_home / "moved.json").exists()
    assert list(old_home.parent.glob("shard-001.moved-*"))
    check_exactly_once(cluster.fronts["b"], sent)
