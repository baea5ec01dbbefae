"""The kernel's LMDB files: one owner at a time, and records of the layout they were
written in, checked before anything is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from coopnode.actors.kernel.files import Layout, LockTimeout, StoreMoved, open_lmdb
from coopnode.actors.wallet.move import mark_moved
from coopnode.domain.errors import InvariantViolation

MAP_BYTES = 16 * 1024 * 1024
REGISTRY_V1 = Layout(store="registry", version=1)


def test_new_files_take_the_layout_and_open_again_under_it(tmp_path: Path) -> None:
    files = open_lmdb(tmp_path, layout=REGISTRY_V1, databases=("cards",), map_size_bytes=MAP_BYTES)
    with files.env.begin(write=True) as txn:
        txn.put(b"k", b"v", db=files.dbs["cards"])
    files.close()
    again = open_lmdb(tmp_path, layout=REGISTRY_V1, databases=("cards",), map_size_bytes=MAP_BYTES)
    with again.env.begin() as txn:
        assert txn.get(b"k", db=again.dbs["cards"]) == b"v"
    again.close()


@pytest.mark.parametrize(
    ("other", "says"),
    [
        (Layout(store="registry", version=2), r"registry layout 1; this node reads layout 2"),
        (Layout(store="payments", version=1), r"holds the registry store's files"),
    ],
)
def test_files_of_another_layout_or_store_are_refused(
    tmp_path: Path, other: Layout, says: str
) -> None:
    open_lmdb(tmp_path, layout=REGISTRY_V1, databases=(), map_size_bytes=MAP_BYTES).close()
    with pytest.raises(InvariantViolation, match=says):
        open_lmdb(tmp_path, layout=other, databases=(), map_size_bytes=MAP_BYTES)
    # The refusal let go of the lock: the right layout opens at once.
    open_lmdb(
        tmp_path, layout=REGISTRY_V1, databases=(), map_size_bytes=MAP_BYTES, lock_wait_s=0
    ).close()


def test_a_second_owner_waits_then_gives_up(tmp_path: Path) -> None:
    first = open_lmdb(tmp_path, layout=REGISTRY_V1, databases=(), map_size_bytes=MAP_BYTES)
    with pytest.raises(LockTimeout):
        open_lmdb(
            tmp_path, layout=REGISTRY_V1, databases=(), map_size_bytes=MAP_BYTES, lock_wait_s=0
        )
    first.close()


def test_the_kernel_keeps_its_own_database_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="layout"):
        open_lmdb(tmp_path, layout=REGISTRY_V1, databases=("layout",), map_size_bytes=MAP_BYTES)


def test_files_a_move_left_behind_are_never_opened_again(tmp_path: Path) -> None:
    files = open_lmdb(tmp_path, layout=REGISTRY_V1, databases=("things",), map_size_bytes=MAP_BYTES)
    with files.env.begin(write=True) as txn:
        txn.put(b"k", b"v", db=files.dbs["things"])
    files.close()
    mark_moved(tmp_path, "disk-b")
    with pytest.raises(StoreMoved, match="moved to the disk 'disk-b'"):
        open_lmdb(tmp_path, layout=REGISTRY_V1, databases=("things",), map_size_bytes=MAP_BYTES)
