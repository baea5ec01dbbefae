"""Backups of a real node while payments flow, restored into a new node.

A node (real Ray, real LMDB files) takes payments from several clients at once; staff run
`coopnode admin backup` in the middle of it; `coopnode admin restore` builds a new data
directory from the backup, and a new node serves it. Every payment acknowledged before
the backup began is there exactly once (by its idempotency key, in the history and in
the balances), and the books balance. A damaged backup is refused; a backup refuses a
directory that is not empty and a caller without the staff token; and the schedule keeps
exactly `backup.keep` complete backups.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from coopnode.actors.backup.manifest import MANIFEST_FILE, read_manifest
from coopnode.actors.backup.schedule import complete_backups, scheduled_backups
from tests.nodeproc import REPO, TEST_CONFIG, NodeProcess, remove_tree, short_tmpdir

pytestmark = pytest.mark.slow

MEMBERS = [f"2026330{index:05d}" for index in range(16)]
OPENING_BASE_YEN = 100_000
CLIENTS = 6
# Patience for things that take a second on a quiet machine (a backup of a small node, a
# node's start): generous, since the machine is shared.
PATIENCE_S = 120.0


@dataclass
class Sent:
    member_no: str
    body: dict[str, Any]
    sent_at: float = 0.0
    answered_at: float = 0.0
    status: int | None = None
    answer: Any = None


@dataclass
class BackedUp:
    node: NodeProcess
    backup_root: Path
    backup: Path
    sent: list[Sent]
    # When `coopnode admin backup` was run: answers that came before it are acknowledged
    # before the backup began; and when it had finished: payments sent after it cannot be
    # in the backup.
    begun_at: float
    finished_at: float
    output: str


def coopnode(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "coopnode.node.cli", "--config", str(TEST_CONFIG), *args]
    return subprocess.run(
        command,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
        check=False,
    )


async def pay_forever(node: NodeProcess, seed: int, stop: asyncio.Event, sent: list[Sent]) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {node.token}"}
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        index = 0
        while not stop.is_set():
            body = {
                "key": f"c{seed}-{index}",
                "amount_yen": rng.randint(1, 200),
                "till_kind": "shop",
                "store": "shop-1",
            }
            index += 1
            record = Sent(rng.choice(MEMBERS), body, sent_at=time.monotonic())
            sent.append(record)
            url = f"{node.url}/api/v1/wallets/{record.member_no}/payments"
            async with session.post(url, json=body) as response:
                record.answer = await response.json()
                record.status = response.status
                record.answered_at = time.monotonic()


async def backup_under_load(
    node: NodeProcess, backup_name: str
) -> tuple[list[Sent], float, float, str]:
    stop = asyncio.Event()
    sent: list[Sent] = []
    clients = [asyncio.create_task(pay_forever(node, seed, stop, sent)) for seed in range(CLIENTS)]
    # Wait until payments flow for real, not for a time.
    while sum(record.status == 200 for record in sent) < 100:
        assert not any(task.done() for task in clients), [t.exception() for t in clients]
        await asyncio.sleep(0.05)
    begun_at = time.monotonic()
    result = await asyncio.to_thread(
        coopnode, "admin", "backup", backup_name, "--data-dir", str(node.data_dir)
    )
    # The payments went on while the backup was taken, and go on after it.
    finished_at = time.monotonic()
    answered_during = sum(record.answered_at > begun_at for record in sent)
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*clients), PATIENCE_S)
    assert result.returncode == 0, result.stdout + result.stderr
    assert answered_during > 0, "no payment was answered while the backup ran"
    return sent, begun_at, finished_at, result.stdout


@pytest.fixture(scope="module")
def backed_up() -> Iterator[BackedUp]:
    data_dir = short_tmpdir("cnbkup")
    backup_root = short_tmpdir("cnbkroot")
    node = NodeProcess(data_dir, env={"COOPNODE_BACKUP__DIR": str(backup_root)}).start()
    try:
        for member_no in MEMBERS:
            body = {
                "key": "enrol",
                "member_no": member_no,
                "coop": "demo",
                "deposits": {"base": OPENING_BASE_YEN},
            }
            status, answer = node.request("POST", "/api/v1/wallets", body)
            assert status == 201, answer
        sent, begun, finished, output = asyncio.run(backup_under_load(node, "under-load"))
        backup = backup_root / "under-load"
        yield BackedUp(node, backup_root, backup, sent, begun, finished, output)
    finally:
        node.stop()
        remove_tree(data_dir)
        remove_tree(backup_root)


@pytest.fixture
def restored_dir() -> Iterator[Path]:
    parent = short_tmpdir("cnrest")
    yield parent / "data"
    remove_tree(parent)


def history(node: NodeProcess, member_no: str) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    before = 0
    while True:
        path = f"/api/v1/wallets/{member_no}/history?limit=100&before_seq={before}"
        status, page = node.request("GET", path)
        assert status == 200, page
        lines += page["lines"]
        before = page["next_before_seq"]
        if not before:
            return lines


def test_a_backup_under_load_restores_every_payment_acknowledged_before_it_exactly_once(
    backed_up: BackedUp, restored_dir: Path
) -> None:
    manifest = read_manifest(backed_up.backup)
    assert f"backup {manifest.backup_id} complete" in backed_up.output
    result = coopnode("admin", "restore", str(backed_up.backup), str(restored_dir))
    assert result.returncode == 0, result.stderr
    assert "wallet/shard-000" in result.stdout and "staff-token" in result.stdout
    before = [r for r in backed_up.sent if r.status == 200 and r.answered_at < backed_up.begun_at]
    assert len(before) >= 100
    after = [r for r in backed_up.sent if r.sent_at > backed_up.finished_at]
    assert after, "no payment was sent after the backup"
    during = [r for r in backed_up.sent if backed_up.begun_at <= r.answered_at]
    print(f"payments: {len(before)} acknowledged before the backup, {len(during)} answered ")
    print(f"while it ran or after, {len(after)} sent after it finished")
    sent_keys = {(r.member_no, r.body["key"]) for r in backed_up.sent}
    # Credentials are not in a backup: the operator keeps the machine's token as they did.
    shutil.copy2(backed_up.node.machine_token_file, restored_dir / "api-token")
    node = NodeProcess(restored_dir).start()
    try:
        # The shards stand where the manifest says their copies stood.
        status, health = node.request("GET", "/healthz")
        assert status == 200, health
        positions = {copy.store: copy.journal.last_seq for copy in manifest.stores if copy.journal}
        for shard in health["shards"]:
            assert shard["next_seq"] == positions[f"wallet/shard-{shard['shard_index']:03d}"] + 1
        booked: dict[str, set[str]] = {}
        for member_no in MEMBERS:
            lines = history(node, member_no)
            keys = Counter(line["key"] for line in lines if line["kind"] == "pay")
            assert all(count == 1 for count in keys.values()), "a payment is there twice"
            assert {(member_no, key) for key in keys} <= sent_keys, "a payment nobody sent"
            booked[member_no] = set(keys)
            paid = sum(-line["changes"]["base"] for line in lines if line["kind"] == "pay")
            status, view = node.request("GET", f"/api/v1/wallets/{member_no}")
            assert view["balances"]["base"] == OPENING_BASE_YEN - paid
        for record in before:
            assert record.body["key"] in booked[record.member_no], "an acknowledged payment is lost"
        for record in after:
            assert record.body["key"] not in booked[record.member_no], "a copy is not one moment"
        # The same request again answers the very booking the first node answered.
        for record in before[:50]:
            path = f"/api/v1/wallets/{record.member_no}/payments"
            assert node.request("POST", path, record.body) == (200, record.answer)
        status, audit = node.request("GET", "/api/v1/audit")
        assert status == 200 and audit["balanced"] is True, audit
    finally:
        node.stop()


def damaged_copy(backed_up: BackedUp, into: Path, damage: str) -> tuple[Path, str]:
    copy = into / "backup"
    shutil.copytree(backed_up.backup, copy)
    data_file = copy / "wallet" / "shard-001" / "data.mdb"
    if damage == "flip_a_byte":
        raw = bytearray(data_file.read_bytes())
        raw[4096 + 100] ^= 0x40
        data_file.write_bytes(bytes(raw))
        return copy, f"{data_file} is damaged"
    if damage == "remove_a_file":
        data_file.unlink()
        return copy, f"{data_file} is missing"
    (copy / MANIFEST_FILE).unlink()
    return copy, "never finished"


@pytest.mark.parametrize("damage", ["flip_a_byte", "remove_a_file", "no_manifest"])
def test_restore_refuses_a_damaged_backup_and_restores_nothing(
    backed_up: BackedUp, tmp_path: Path, damage: str
) -> None:
    backup, complaint = damaged_copy(backed_up, tmp_path, damage)
    target = tmp_path / "data"
    result = coopnode("admin", "restore", str(backup), str(target))
    assert result.returncode == 1
    assert complaint in result.stderr and "nothing restored" in result.stderr
    assert not target.exists()


def test_restore_refuses_a_data_directory_that_is_not_empty(
    backed_up: BackedUp, tmp_path: Path
) -> None:
    (tmp_path / "node.log").write_text("something")
    result = coopnode("admin", "restore", str(backed_up.backup), str(tmp_path))
    assert result.returncode == 1 and "not empty" in result.stderr
    assert [path.name for path in tmp_path.iterdir()] == ["node.log"]


def test_a_backup_refuses_a_directory_that_is_not_empty_and_a_caller_without_the_token(
    backed_up: BackedUp,
) -> None:
    node = backed_up.node
    result = coopnode("admin", "backup", "under-load", "--data-dir", str(node.data_dir))
    assert result.returncode == 1 and "not empty" in result.stderr
    body = {"dir": "another"}
    for token in ("", "not-the-staff-token"):
        status, answer = node.request("POST", "/api/v1/admin/backups", body, token=token)
        assert (status, answer["reason"]) == (401, "unauthorized")
    status, answer = node.request(
        "GET", f"/api/v1/admin/backups/{read_manifest(backed_up.backup).backup_id}", token="x"
    )
    assert status == 401
    assert not (backed_up.backup_root / "another").exists()
    # Inside the live data directory, or outside backup.dir: refused before anything.
    for place in (str(node.data_dir / "copy"), "/tmp/elsewhere-backup"):
        status, answer = node.request("POST", "/api/v1/admin/backups", {"dir": place})
        assert (status, answer["reason"]) == (409, "backup_target_refused"), answer
    assert not (node.data_dir / "copy").exists()


def test_the_route_reports_a_backup_until_it_is_complete(backed_up: BackedUp) -> None:
    node = backed_up.node
    status, begun = node.request("POST", "/api/v1/admin/backups", {"dir": "by-route"})
    assert status == 202 and begun["state"] in ("running", "complete"), begun
    deadline = time.monotonic() + PATIENCE_S
    while True:
        status, found = node.request("GET", f"/api/v1/admin/backups/{begun['backup_id']}")
        assert status == 200, found
        if found["state"] != "running":
            break
        assert time.monotonic() < deadline, "the backup did not finish"
        time.sleep(0.2)
    assert found["state"] == "complete", found
    assert found["manifest"]["backup_id"] == begun["backup_id"]
    assert (backed_up.backup_root / "by-route" / MANIFEST_FILE).exists()


def actor_pids(node: NodeProcess, actor_class: str) -> list[int]:
    """The pids of the node's actor processes of `actor_class` (Ray titles them
    `ray::<class>`), in the node's session: not another node's on the same machine."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            session = os.getsid(int(entry))
        except OSError:
            continue
        if cmdline.startswith(f"ray::{actor_class}".encode()) and session == os.getsid(node.pid):
            found.append(int(entry))
    return found


def wait_for_backups(backup_root: Path, keep: int, seen: list[str], count: int) -> None:
    """Look at the backups until `count` complete ones have been seen, checking as it goes
    that a new one is complete before an old one goes: never fewer than `keep`."""
    deadline = time.monotonic() + PATIENCE_S
    while len(seen) < count:
        assert time.monotonic() < deadline, f"the schedule made only {seen}"
        complete = [path.name for path in complete_backups(backup_root)]
        seen += [name for name in complete if name not in seen]
        if len(seen) >= keep:
            assert keep <= len(complete) <= keep + 1, complete
        time.sleep(0.05)


def test_scheduled_backups_keep_exactly_the_newest_complete_ones() -> None:
    data_dir = short_tmpdir("cnsched")
    backup_root = short_tmpdir("cnschedb")
    keep = 2
    env = {
        "COOPNODE_BACKUP__DIR": str(backup_root),
        "COOPNODE_BACKUP__INTERVAL_S": "1",
        "COOPNODE_BACKUP__KEEP": str(keep),
    }
    node = NodeProcess(data_dir, env=env).start()
    seen: list[str] = []
    try:
        # Until the schedule has made two more than it keeps.
        wait_for_backups(backup_root, keep, seen, keep + 2)
        # The one backup actor dies (perhaps half way through a backup): Ray restarts it,
        # and with it the schedule, which goes on from the newest manifest.
        [victim] = actor_pids(node, "BackupActor")
        os.kill(victim, signal.SIGKILL)
        wait_for_backups(backup_root, keep, seen, keep + 4)
        assert victim not in actor_pids(node, "BackupActor")
    finally:
        node.stop()
    complete = [path.name for path in complete_backups(backup_root)]
    assert len(complete) == keep and complete == sorted(complete)
    assert set(complete) <= set(seen) and seen[0] not in complete
    # The unfinished one the stop may have cut off is the only other thing there.
    others = [path for path in scheduled_backups(backup_root) if path.name not in complete]
    assert len(others) <= 1
    assert not list(backup_root.glob(".removing-*"))
    remove_tree(data_dir)
    remove_tree(backup_root)
