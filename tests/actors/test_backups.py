"""Backups on real LMDB files, without Ray: the coordinator over the stores themselves.

The copier here calls each store's own `backup_to` in this process, as each store's
actor does on its host; the node tests (`tests/node/test_backup.py`) run the same over
Ray. Interleavings are forced: a copy held on an event while staff ask again, and the
schedule's clock moved by hand.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from coopnode.actors.backup.coordinator import Backups
from coopnode.actors.backup.manifest import (
    MANIFEST_FILE,
    BackupDamaged,
    check_backup,
    read_manifest,
)
from coopnode.actors.backup.messages import (
    BackupAnswer,
    BackupPlan,
    BackupState,
    BackupStatus,
    RefusalReason,
    StartBackup,
)
from coopnode.actors.backup.schedule import complete_backups, next_due_ms, scheduled_backups
from coopnode.actors.identity.store import IdentityStore
from coopnode.actors.kernel.copies import StoreCopy
from coopnode.actors.payments.store import PaymentsStore
from coopnode.actors.registry.store import RegistryStore
from coopnode.actors.wallet.store import WalletStore
from coopnode.domain.messages import Booked, OpenWallet, Pay
from coopnode.domain.money import Purse, TillKind
from coopnode.domain.rules import CoopRules
from coopnode.settings import Settings

MAP_BYTES = 16 << 20
MEMBER = "202600000017"
START_MS = 1_796_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now_ms = START_MS

    def __call__(self) -> int:
        return self.now_ms


class Node:
    """A data directory's four stores, open, and a copier that asks them directly."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.wallet = WalletStore(
            data_dir / "wallet" / "shard-000",
            shard_index=0,
            shard_count=1,
            coops={"demo": CoopRules()},
            map_size_bytes=MAP_BYTES,
            fsync=False,
        )
        self.stores: dict[str, Any] = {
            "payments": PaymentsStore(data_dir / "payments", map_size_bytes=MAP_BYTES, fsync=False),
            "identity": IdentityStore(data_dir / "identity", map_size_bytes=MAP_BYTES),
            "registry": RegistryStore(data_dir / "registry", map_size_bytes=MAP_BYTES, fsync=False),
            "wallet-shard-0": self.wallet,
        }
        self.asked: list[list[str]] = []
        # Set to hold every copy until it is set.
        self.hold: threading.Event | None = None

    def copier(self, names: Sequence[str], target: Path, timeout_s: float) -> list[StoreCopy]:
        self.asked.append(list(names))
        if self.hold is not None and not self.hold.wait(timeout=60):
            raise TimeoutError("the test never let the copy go")
        return [self.stores[name].backup_to(target, self.data_dir) for name in names]

    def close(self) -> None:
        for store in self.stores.values():
            store.close()


PLAN = BackupPlan(first=["payments", "identity", "registry"], then=["wallet-shard-0"])


def settings_for(data_dir: Path, backup_dir: Path, **backup: Any) -> Settings:
    return msgspec.convert(
        {
            "node": {"data_dir": str(data_dir)},
            "wallet": {"shard_count": 1},
            "backup": {"dir": str(backup_dir), **backup},
        },
        Settings,
    )


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    opened = Node(tmp_path / "data")
    opened.wallet.apply_batch(
        [OpenWallet(key="enrol", member_no=MEMBER, coop="demo", deposits={Purse.BASE: 10_000})]
    )
    yield opened
    opened.close()


def pay(node: Node, key: str, amount_yen: int) -> Booked:
    op = Pay(key=key, member_no=MEMBER, amount_yen=amount_yen, till_kind=TillKind.SHOP, store="s")
    [result] = node.wallet.apply_batch([op])
    assert isinstance(result, Booked)
    return result


def wait_done(backups: Backups, backup_id: str) -> BackupStatus:
    """Patience for the copy thread (the copies themselves take milliseconds)."""
    for _ in range(600):
        status = backups.status(backup_id).status
        assert status is not None
        if status.state is not BackupState.RUNNING:
            return status
        threading.Event().wait(0.1)
    raise AssertionError("the backup did not finish within a minute")


def started(answer: BackupAnswer) -> BackupStatus:
    assert answer.refused is None and answer.status is not None, answer
    return answer.status


def refusal(answer: BackupAnswer) -> RefusalReason:
    assert answer.refused is not None, answer
    return answer.refused.reason


def test_a_backup_holds_every_store_with_its_checksums_and_the_shards_position(
    node: Node, tmp_path: Path
) -> None:
    pay(node, "p1", 300)
    pay(node, "p2", 200)
    backups = Backups(settings_for(node.data_dir, tmp_path / "backups"), PLAN, node.copier)
    status = wait_done(backups, started(backups.start(StartBackup(dir="first"))).backup_id)
    assert status.state is BackupState.COMPLETE, status.message
    # The recording stores were asked before the wallet's shards.
    assert node.asked == [PLAN.first, PLAN.then]
    manifest = check_backup(tmp_path / "backups" / "first")
    assert manifest == status.manifest
    stores = {copy.store: copy for copy in manifest.stores}
    assert set(stores) == {"payments", "identity", "registry", "wallet/shard-000"}
    shard = stores["wallet/shard-000"]
    assert shard.journal is not None
    assert (shard.journal.last_seq, shard.journal.last_op) == (3, 3)
    assert stores["registry"].journal is None
    assert manifest.started_at_ms <= manifest.finished_at_ms


def test_a_restored_shard_reopens_at_the_backups_position_with_its_books_balanced(
    node: Node, tmp_path: Path
) -> None:
    from coopnode.node.restore import restore

    pay(node, "p1", 300)
    settings = settings_for(node.data_dir, tmp_path / "backups")
    backups = Backups(settings, PLAN, node.copier)
    wait_done(backups, started(backups.start(StartBackup(dir="b"))).backup_id)
    pay(node, "after", 100)  # After the backup: not in it.
    restored = tmp_path / "restored"
    restore(tmp_path / "backups" / "b", restored, settings)
    shard = WalletStore(
        restored / "wallet" / "shard-000",
        shard_index=0,
        shard_count=1,
        coops={"demo": CoopRules()},
        map_size_bytes=MAP_BYTES,
        fsync=False,
    )
    try:
        assert shard.next_seq == 3 and shard.audit().balanced
        [again] = shard.apply_batch(
            [Pay(key="p1", member_no=MEMBER, amount_yen=300, till_kind=TillKind.SHOP, store="s")]
        )
        assert isinstance(again, Booked) and again.seq == 2  # The first booking, once.
        assert shard.next_seq == 3
    finally:
        shard.close()
    assert (restored / "wallet" / "layout.json").exists()


@pytest.mark.parametrize("damage", ["flip_a_byte", "remove_a_file", "no_manifest", "bad_json"])
def test_restore_refuses_a_damaged_backup_naming_the_file_and_writes_nothing(
    node: Node, tmp_path: Path, damage: str
) -> None:
    from coopnode.node.restore import restore

    settings = settings_for(node.data_dir, tmp_path / "backups")
    backups = Backups(settings, PLAN, node.copier)
    wait_done(backups, started(backups.start(StartBackup(dir="b"))).backup_id)
    backup = tmp_path / "backups" / "b"
    data_file = backup / "wallet" / "shard-000" / "data.mdb"
    if damage == "flip_a_byte":
        raw = bytearray(data_file.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        data_file.write_bytes(bytes(raw))
        expected = f"{data_file} is damaged"
    elif damage == "remove_a_file":
        data_file.unlink()
        expected = f"{data_file} is missing"
    elif damage == "no_manifest":
        (backup / MANIFEST_FILE).unlink()
        expected = "never finished"
    else:
        (backup / MANIFEST_FILE).write_text("{")
        expected = "is not a manifest"
    restored = tmp_path / "restored"
    with pytest.raises(BackupDamaged, match=expected):
        restore(backup, restored, settings)
    assert not restored.exists()


def test_restore_refuses_a_data_directory_that_is_not_empty(node: Node, tmp_path: Path) -> None:
    from coopnode.node.restore import RestoreRefused, restore

    settings = settings_for(node.data_dir, tmp_path / "backups")
    backups = Backups(settings, PLAN, node.copier)
    wait_done(backups, started(backups.start(StartBackup(dir="b"))).backup_id)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "something").write_text("x")
    with pytest.raises(RestoreRefused, match="not empty"):
        restore(tmp_path / "backups" / "b", occupied, settings)
    assert [path.name for path in occupied.iterdir()] == ["something"]


def test_staff_backups_refuse_what_they_must_and_run_one_at_a_time(
    node: Node, tmp_path: Path
) -> None:
    root = tmp_path / "backups"
    backups = Backups(settings_for(node.data_dir, root), PLAN, node.copier)
    (root / "full").mkdir(parents=True)
    (root / "full" / "x").write_text("x")
    assert refusal(backups.start(StartBackup(dir="full"))) is RefusalReason.TARGET_REFUSED
    assert refusal(backups.start(StartBackup(dir=str(tmp_path)))) is RefusalReason.TARGET_REFUSED
    assert refusal(backups.start(StartBackup(dir="../elsewhere"))) is RefusalReason.TARGET_REFUSED
    assert refusal(backups.start(StartBackup(dir="nul\x00"))) is RefusalReason.TARGET_REFUSED
    scheduled_name = StartBackup(dir="scheduled-mine")
    assert refusal(backups.start(scheduled_name)) is RefusalReason.TARGET_REFUSED
    # A second backup while one runs: the first copy is held until the second is refused.
    node.hold = threading.Event()
    running = started(backups.start(StartBackup(dir="one")))
    assert refusal(backups.start(StartBackup(dir="two"))) is RefusalReason.BACKUP_RUNNING
    assert not (root / "one" / MANIFEST_FILE).exists()
    node.hold.set()
    assert wait_done(backups, running.backup_id).state is BackupState.COMPLETE
    assert not (root / "two").exists()
    assert wait_done(backups, started(backups.start(StartBackup(dir="two"))).backup_id)
    assert refusal(backups.status("20261207T000000000Z-abcdef")) is RefusalReason.UNKNOWN_BACKUP


def test_backups_are_off_without_a_directory(node: Node, tmp_path: Path) -> None:
    settings = msgspec.convert({"node": {"data_dir": str(node.data_dir)}}, Settings)
    backups = Backups(settings, PLAN, node.copier)
    assert refusal(backups.start(StartBackup(dir="x"))) is RefusalReason.BACKUPS_OFF


def test_a_failed_copy_leaves_no_manifest_and_says_why(node: Node, tmp_path: Path) -> None:
    root = tmp_path / "backups"
    backups = Backups(settings_for(node.data_dir, root), PLAN, node.copier)
    # The registry's directory is there already: its owner refuses to copy over it.
    (root / "clash" / "registry").mkdir(parents=True)
    answer = backups.start(StartBackup(dir=str(root / "clash")))
    assert refusal(answer) is RefusalReason.TARGET_REFUSED  # Not empty: refused at once.
    (root / "clash" / "registry").rmdir()
    node.stores["registry"].close()
    node.stores["registry"] = BrokenStore()
    status = wait_done(backups, started(backups.start(StartBackup(dir="clash"))).backup_id)
    assert status.state is BackupState.FAILED and "disk full" in status.message
    assert not (root / "clash" / MANIFEST_FILE).exists()


class BrokenStore:
    def backup_to(self, target: Path, data_dir: Path) -> StoreCopy:
        raise OSError(28, "disk full")

    def close(self) -> None:
        pass


def test_the_schedule_keeps_exactly_the_newest_complete_backups(node: Node, tmp_path: Path) -> None:
    root = tmp_path / "backups"
    clock = Clock()
    settings = settings_for(node.data_dir, root, interval_s=60, keep=2)
    backups = Backups(settings, PLAN, node.copier, clock=clock)
    assert next_due_ms(root, 60, None) == 0  # No backup yet: one is due now.
    made = []
    for round_number in range(4):
        pay(node, f"round-{round_number}", 10)
        done = backups.scheduled_once()
        assert done.state is BackupState.COMPLETE
        made.append(Path(done.dir).name)
        complete = [path.name for path in complete_backups(root)]
        # Never more than `keep` once the new one is complete, never an older one kept.
        assert complete == made[-2:]
        assert next_due_ms(root, 60, None) == clock.now_ms + 60_000
        clock.now_ms += 61_000
    # An unfinished attempt (cut off) goes at the next complete backup, not before.
    (root / "scheduled-20300101T000000000Z-000000").mkdir()
    assert len(scheduled_backups(root)) == 3
    pay(node, "last", 10)
    done = backups.scheduled_once()
    assert [path.name for path in scheduled_backups(root)] == [made[-1], Path(done.dir).name]
    newest = read_manifest(Path(done.dir))
    shard = next(copy for copy in newest.stores if copy.journal is not None)
    assert shard.journal is not None and shard.journal.last_seq == 6


def test_a_failed_scheduled_backup_removes_nothing(node: Node, tmp_path: Path) -> None:
    root = tmp_path / "backups"
    clock = Clock()
    settings = settings_for(node.data_dir, root, interval_s=60, keep=1)
    backups = Backups(settings, PLAN, node.copier, clock=clock)
    first = backups.scheduled_once()
    node.stores["registry"].close()
    node.stores["registry"] = BrokenStore()
    clock.now_ms += 61_000
    failed = backups.scheduled_once()
    assert failed.state is BackupState.FAILED
    assert [path.name for path in complete_backups(root)] == [Path(first.dir).name]
    # The next attempt is an interval after the failed one, not at once.
    assert next_due_ms(root, 60, clock.now_ms) == clock.now_ms + 60_000


async def test_a_node_without_backups_has_no_backup_actor_and_says_they_are_off() -> None:
    from coopnode.actors.backup.client import BackupClient

    off = BackupClient(None)
    await off.wait_ready(1.0)
    assert refusal(await off.start(StartBackup(dir="x"))) is RefusalReason.BACKUPS_OFF
    assert refusal(await off.status("20261207T000000000Z-abcdef")) is RefusalReason.BACKUPS_OFF
