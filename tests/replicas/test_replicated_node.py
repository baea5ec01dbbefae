"""A node whose wallet shard is three replicas, on one host: faults under load.

Each test drives payments from concurrent clients and injects its fault once enough of
them were acknowledged (counted, never timed): the primary's process killed with
SIGKILL, again and again; a backup's whole data directory deleted; a record of a
backup's log corrupted on its disk. After each: every acknowledged payment is booked
exactly once, every replica converges on the same books, and the books balance.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import msgspec
import pytest

from coopnode.actors.wallet.messages import ReplicaRole
from coopnode.actors.wallet.store import WalletStore
from tests.nodeproc import NodeProcess, remove_tree, short_tmpdir

pytestmark = pytest.mark.slow

MEMBERS = [f"2026230{index:05d}" for index in range(16)]
# Payments of 1 to 5 yen: the members' money outlasts any load a test runs (a member
# who has spent it all is refused, and refusals would not count as progress).
OPENING_BASE_YEN = 100_000
CLIENTS = 6
# Small, so that the tests cut logs at checkpoints and a rebuilt replica needs a copy of
# a peer's books, not only the log.
CHECKPOINT_INTERVAL_OPS = 16
# How long a test waits for something that takes a second or two (a failover, a
# replica's recovery) before it fails: patience, not a bound under test.
PATIENCE_S = 90.0
# Acknowledged payments sent again at the end, each answered as it was the first time.
RETRIES_CHECKED = 300
REPLICAS = {
    "COOPNODE_WALLET__SHARD_COUNT": "1",
    "COOPNODE_REPLICATION__REPLICA_COUNT": "3",
    "COOPNODE_REPLICATION__CHECKPOINT_INTERVAL_OPS": str(CHECKPOINT_INTERVAL_OPS),
}


class Sent:
    """One payment request and what, if anything, the node answered."""

    def __init__(self, member_no: str, body: dict[str, Any]) -> None:
        self.member_no = member_no
        self.body = body
        self.status: int | None = None
        self.answer: dict[str, Any] | None = None


class Load:
    """Clients paying until told to stop; `acknowledged` wakes whoever waits for a count.
    Each client pauses `pause_s` between payments (0: as fast as the node answers)."""

    def __init__(self, node: NodeProcess, seed: int, pause_s: float = 0.0) -> None:
        self.node = node
        self.seed = seed
        self.pause_s = pause_s
        self.rng = random.Random(seed)
        self.sent: list[Sent] = []
        self.stop = asyncio.Event()
        self.changed = asyncio.Condition()
        self.acknowledged = 0
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [
            asyncio.create_task(self._client(number, random.Random(self.rng.random())))
            for number in range(CLIENTS)
        ]

    async def acknowledged_at_least(self, count: int) -> None:
        async with self.changed:
            await asyncio.wait_for(
                self.changed.wait_for(lambda: self.acknowledged >= count), PATIENCE_S
            )

    async def finish(self) -> list[Sent]:
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks), PATIENCE_S)
        return self.sent

    async def _client(self, number: int, rng: random.Random) -> None:
        headers = {"Authorization": f"Bearer {self.node.token}"}
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            index = 0
            while not self.stop.is_set():
                member_no = rng.choice(MEMBERS)
                body = {
                    "key": f"s{self.seed}c{number}-{index}",
                    "amount_yen": rng.randint(1, 5),
                    "till_kind": "shop",
                    "store": "shop-1",
                }
                index += 1
                record = Sent(member_no, body)
                self.sent.append(record)
                async with session.post(
                    f"{self.node.url}/api/v1/wallets/{member_no}/payments", json=body
                ) as response:
                    record.status = response.status
                    record.answer = await response.json()
                if record.status == 200:
                    async with self.changed:
                        self.acknowledged += 1
                        self.changed.notify_all()
                if self.pause_s:
                    await asyncio.sleep(self.pause_s)


@pytest.fixture(scope="module")
def node() -> Iterator[NodeProcess]:
    data_dir = short_tmpdir("cnrep")
    process = NodeProcess(data_dir, env=REPLICAS).start()
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


def roles(node: NodeProcess) -> list[ReplicaRole | None]:
    status, shards = node.request("GET", "/api/v1/admin/replicas")
    assert status == 200, shards
    return msgspec.convert(shards[0]["replicas"], list[ReplicaRole | None])


async def primary(node: NodeProcess, *, above_view: int = -1) -> ReplicaRole:
    """The replica that serves as primary, in a view above `above_view`, once there is one."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        serving = [
            role
            for role in await asyncio.to_thread(roles, node)
            if role is not None
            and role.status == "normal"
            and role.replica == role.primary
            and role.view > above_view
        ]
        if serving:
            return max(serving, key=lambda role: role.view)
        assert time.monotonic() < deadline, f"no primary above view {above_view}"
        await asyncio.sleep(0.1)


async def converged(node: NodeProcess) -> list[ReplicaRole]:
    """Every replica normal, in one view, with everything committed applied everywhere."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        found = await asyncio.to_thread(roles, node)
        answered = [role for role in found if role is not None]
        if (
            len(answered) == len(found)
            and all(role.status == "normal" for role in answered)
            and len({(role.view, role.commit, role.applied) for role in answered}) == 1
        ):
            return answered
        assert time.monotonic() < deadline, f"the replicas did not converge: {found}"
        await asyncio.sleep(0.1)


def check_exactly_once(node: NodeProcess, sent: list[Sent]) -> None:
    acknowledged = [record for record in sent if record.status == 200]
    for record in sent:
        assert record.status in (200, 402, 503), (record.status, record.answer)
    for record in sent:
        if record.status == 503:
            # "Outcome unknown" or "try again": the same key says which, for real.
            path = f"/api/v1/wallets/{record.member_no}/payments"
            status, answer = node.request("POST", path, record.body)
            assert status in (200, 402), answer
            record.status, record.answer = status, answer
            if status == 200:
                acknowledged.append(record)
    # A retry of an acknowledged payment answers the very same booking (a sample: the
    # histories below check every one of them).
    for record in random.Random(len(sent)).sample(
        acknowledged, min(RETRIES_CHECKED, len(acknowledged))
    ):
        status, answer = node.request(
            "POST", f"/api/v1/wallets/{record.member_no}/payments", record.body
        )
        assert (status, answer) == (200, record.answer), "a retry answered otherwise"
    booked: dict[str, set[str]] = {}
    for record in acknowledged:
        booked.setdefault(record.member_no, set()).add(record.body["key"])
    for member_no in MEMBERS:
        keys, paid = history(node, member_no)
        assert all(count == 1 for count in Counter(keys).values()), "a payment booked twice"
        assert booked.get(member_no, set()) <= set(keys), "an acknowledged payment is lost"
        status, view = node.request("GET", f"/api/v1/wallets/{member_no}")
        assert status == 200 and view["balances"]["base"] == OPENING_BASE_YEN - paid
    status, audit = node.request("GET", "/api/v1/audit")
    assert status == 200 and audit["balanced"] is True, audit


def history(node: NodeProcess, member_no: str) -> tuple[list[str], int]:
    keys: list[str] = []
    paid = 0
    before = 0
    while True:
        path = f"/api/v1/wallets/{member_no}/history?limit=100&before_seq={before}"
        status, page = node.request("GET", path)
        assert status == 200, page
        for line in page["lines"]:
            if line["kind"] == "pay":
                keys.append(line["key"])
                paid -= line["changes"]["base"]
        before = page["next_before_seq"]
        if not before:
            return keys, paid


def balance(node: NodeProcess, member_no: str) -> int:
    status, view = node.request("GET", f"/api/v1/wallets/{member_no}")
    assert status == 200, view
    return int(sum(view["balances"].values()))


def replica_dir(node: NodeProcess, replica: int) -> Path:
    return node.data_dir / "wallet" / "shard-000" / f"replica-{replica}"


def books_of_every_replica(node: NodeProcess) -> list[tuple[int, int, int, int]]:
    """Each replica's books, opened from its files once the node has stopped: the
    operations and entries logged, and what members and counters hold."""
    settings = node.effective_settings()
    found = []
    for replica in range(3):
        store = WalletStore(
            replica_dir(node, replica) / "books",
            shard_index=0,
            shard_count=1,
            coops=settings.coops,
            map_size_bytes=settings.wallet.lmdb_map_size_mib * 1024 * 1024,
            fsync=False,
        )
        try:
            report = store.audit()
            assert report.balanced, report
            found.append(
                (store.next_op, report.entries, report.members_total_yen, store.replica_op)
            )
        finally:
            store.close()
    return found


async def test_the_primary_killed_again_and_again_under_load_loses_and_doubles_nothing(
    node: NodeProcess,
) -> None:
    load = Load(node, seed=16)
    load.start()
    view = 0
    for round_number in range(1, 6):
        # One fault at a time: the replica killed last has recovered before the next
        # kill (two down at once is more than three replicas outlive).
        await converged(node)
        await load.acknowledged_at_least(load.acknowledged + 40)
        serving = await primary(node, above_view=view - 1)
        os.kill(serving.pid, signal.SIGKILL)
        replaced_at = time.monotonic()
        replacement = await primary(node, above_view=serving.view)
        print(
            f"round {round_number}: primary {serving.replica} (view {serving.view}) killed; "
            f"replica {replacement.replica} serves view {replacement.view} after "
            f"{time.monotonic() - replaced_at:.2f} s"
        )
        view = replacement.view
    await load.acknowledged_at_least(load.acknowledged + 40)
    sent = await load.finish()
    await converged(node)
    check_exactly_once(node, sent)
    await converged(node)


async def a_backup(node: NodeProcess) -> ReplicaRole:
    serving = await primary(node)
    found = await asyncio.to_thread(roles, node)
    return next(role for role in found if role is not None and role.replica != serving.replica)


async def test_a_backup_whose_data_directory_is_lost_is_rebuilt_from_its_peers(
    node: NodeProcess,
) -> None:
    load = Load(node, seed=17)
    load.start()
    await load.acknowledged_at_least(60)
    victim = await a_backup(node)
    shutil.rmtree(replica_dir(node, victim.replica))
    os.kill(victim.pid, signal.SIGKILL)
    # The others go on without it: payments are acknowledged by the two left.
    await load.acknowledged_at_least(load.acknowledged + 60)
    sent = await load.finish()
    found = await converged(node)
    rebuilt = next(role for role in found if role.replica == victim.replica)
    assert rebuilt.pid != victim.pid
    # The log was cut at checkpoints long before: the books came as a peer's copy.
    assert rebuilt.applied > CHECKPOINT_INTERVAL_OPS
    assert (replica_dir(node, victim.replica) / "books" / "data.mdb").exists()
    check_exactly_once(node, sent)


def corrupt_entries_with(log_file: Path, key: str) -> None:
    """Flip one byte of every copy of `key` in the log's file, in place on the disk (LMDB
    leaves stale copies of pages it rewrote: the live one is among them)."""
    data = log_file.read_bytes()
    found = [at for at in range(len(data)) if data.startswith(key.encode(), at)]
    assert found, f"{key} is not in {log_file}"
    with log_file.open("r+b") as file:
        for at in found:
            file.seek(at)
            file.write(bytes([data[at] ^ 0x20]))
        file.flush()
        os.fsync(file.fileno())


async def test_a_corrupt_record_in_a_backups_log_is_repaired_from_its_peers(
    node: NodeProcess,
) -> None:
    load = Load(node, seed=18)
    load.start()
    await load.acknowledged_at_least(30)
    sent = await load.finish()
    await converged(node)
    victim = await a_backup(node)
    newest = next(record for record in reversed(sent) if record.status == 200)
    corrupt_entries_with(replica_dir(node, victim.replica) / "log" / "data.mdb", newest.body["key"])
    os.kill(victim.pid, signal.SIGKILL)
    load = Load(node, seed=19)
    load.start()
    await load.acknowledged_at_least(30)
    sent += await load.finish()
    found = await converged(node)
    repaired = next(role for role in found if role.replica == victim.replica)
    assert repaired.pid != victim.pid
    assert repaired.corrupt_entries_found >= 1
    check_exactly_once(node, sent)


async def test_every_replica_killed_at_once_comes_back_from_its_own_disk(
    node: NodeProcess,
) -> None:
    """As in a power cut: no replica can answer another's recovery, so they rejoin
    through a view change from their own logs (`replication.recovery_ms` later)."""
    load = Load(node, seed=20)
    load.start()
    await converged(node)
    await load.acknowledged_at_least(load.acknowledged + 40)
    before = [role for role in await asyncio.to_thread(roles, node) if role is not None]
    for role in before:
        os.kill(role.pid, signal.SIGKILL)
    await primary(node, above_view=max(role.view for role in before))
    await load.acknowledged_at_least(load.acknowledged + 40)
    sent = await load.finish()
    await converged(node)
    check_exactly_once(node, sent)


async def test_a_closed_day_is_kept_by_every_replica(node: NodeProcess) -> None:
    """The accounts office's closing (締め) and the journal's seal of the day go through
    the log: the primary that kept them can die, and the next primary answers the day as
    closed, by the same person, and sealed."""
    # Two days back: yesterday cannot be closed in the first minutes after midnight JST.
    past_day = (datetime.now(ZoneInfo("Asia/Tokyo")) - timedelta(days=2)).date().isoformat()
    status, closed = node.request("POST", f"/api/v1/books/days/{past_day}/close")
    assert status == 200 and closed["closed"] is True, closed
    serving = await primary(node)
    os.kill(serving.pid, signal.SIGKILL)
    await primary(node, above_view=serving.view)
    status, day = node.request("GET", f"/api/v1/books/days/{past_day}")
    assert status == 200 and day["closed"] is True, day
    assert day["closed_by"] == closed["closed_by"] and day["closed_by"]
    # The closing sealed the day's journal through the log too: the next primary holds
    # the seal its predecessor signed, and the chain and seal check on it.
    status, sealed = node.request("GET", "/api/v1/console/journal/seals")
    assert status == 200 and [seal["day"] for seal in sealed["seals"]] == [past_day], sealed
    status, check = node.request("GET", "/api/v1/console/journal/verify")
    assert status == 200 and check["intact"] is True, check
    today = datetime.now(ZoneInfo("Asia/Tokyo")).date().isoformat()
    status, figures = node.request("GET", f"/api/v1/books/days/{today}")
    assert status == 200 and figures["closed"] is False, figures
    await converged(node)


async def test_every_replica_holds_the_same_balanced_books_across_a_node_restart(
    node: NodeProcess,
) -> None:
    await converged(node)
    held_yen = sum(balance(node, member_no) for member_no in MEMBERS)
    node.stop()
    books = books_of_every_replica(node)
    assert len(set(books)) == 1, books
    _, entries, members_total_yen, replica_op = books[0]
    assert entries > 200 and replica_op > CHECKPOINT_INTERVAL_OPS
    assert members_total_yen == held_yen
    # Every replica starts again at once; none can answer another's recovery.
    node.start()
    await converged(node)
    load = Load(node, seed=21)
    load.start()
    await load.acknowledged_at_least(20)
    check_exactly_once(node, await load.finish())
