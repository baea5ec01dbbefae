"""An LMDB environment owned by one process, with its layout version checked on open.

Every store of the node (wallet shards, registry, identity, payments) opens its files
here, so that four rules hold for all of them in one place:

- One owner. An exclusive `fcntl` lock on `owner.lock` beside the files; the operating
  system drops it when its owner dies, so a restarted actor waits for a dying
  predecessor (up to `lock_wait_s`) instead of writing beside it.
- Named databases, opened together; `max_dbs` follows from their number.
- A layout version. The files say which store wrote them and in which layout; a node
  that reads another layout refuses to start rather than misread money records. Files
  written before the version was recorded take the current one on their first open.
- Not left behind. Files a move to another host's disk left behind carry `moved.json`
  and are never opened again as the store.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

import lmdb
import msgspec

from coopnode.domain.errors import InvariantViolation

_LAYOUT_DB = b"layout"
_LAYOUT_KEY = b"layout"
# How often a start waiting for the lock looks again.
_LOCK_POLL_S = 0.05


# The file a store's directory holds once the store has moved to another host's disk
# (`coopnode admin move-shard`): the files stay, but they are no longer the store.
MOVED_MARK = "moved.json"


class StoreMoved(Exception):
    """The store's files here are a copy left behind by a move to another host's disk."""


class MovedTo(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Where a store went, and when (what `MOVED_MARK` holds)."""

    disk: str
    at_ms: int


def refuse_if_moved(path: Path) -> None:
    """Refuse to open a store's files that a move left behind: opening them would serve
    old balances beside the store's new home (the settings still name this disk)."""
    mark = path / MOVED_MARK
    if mark.exists():
        moved = msgspec.json.decode(mark.read_bytes(), type=MovedTo)
        raise StoreMoved(
            f"{path} moved to the disk {moved.disk!r} at {moved.at_ms} ms since the epoch: "
            "name that disk for it in the settings (cluster.wallet_shard_disks)"
        )


class LockTimeout(Exception):
    """Another process still holds the files after the wait."""


class Layout(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Which store's files these are, and the version of their records' layout."""

    store: str
    version: int


def lock_exclusive(path: Path, wait_s: float) -> IO[bytes]:
    """Hold an exclusive lock on `path` (created if missing), waiting up to `wait_s`.

    The lock lasts as long as the returned file stays open; the owner's pid is written in
    it for whoever looks.
    """
    lock_file = path.open("a+b")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() > deadline:
                lock_file.close()
                raise LockTimeout(f"{path} is held by another process") from None
            time.sleep(_LOCK_POLL_S)
            continue
        with suppress(OSError):
            lock_file.truncate(0)
            lock_file.write(str(os.getpid()).encode())
            lock_file.flush()
        return lock_file


class LmdbFiles:
    """An open environment: `env`, its databases by name in `dbs`, and the lock."""

    def __init__(self, env: Any, dbs: dict[str, Any], lock_file: IO[bytes]) -> None:
        self.env = env
        self.dbs = dbs
        self._lock_file = lock_file

    def close(self) -> None:
        self.env.close()
        self._lock_file.close()


def open_lmdb(
    path: Path,
    *,
    layout: Layout,
    databases: tuple[str, ...],
    map_size_bytes: int,
    fsync: bool = True,
    lock_wait_s: float = 30.0,
    max_readers: int = 126,
) -> LmdbFiles:
    """Lock, open and check the environment at `path` (a directory, created if missing)."""
    if _LAYOUT_DB.decode() in databases:
        raise ValueError("the database name 'layout' is the kernel's own")
    refuse_if_moved(path)
    path.mkdir(parents=True, exist_ok=True)
    lock_file = lock_exclusive(path / "owner.lock", lock_wait_s)
    try:
        env = lmdb.open(
            str(path),
            max_dbs=len(databases) + 1,
            map_size=map_size_bytes,
            sync=fsync,
            metasync=fsync,
            max_readers=max_readers,
        )
    except BaseException:
        lock_file.close()
        raise
    try:
        dbs = {name: env.open_db(name.encode()) for name in databases}
        _check_layout(env, env.open_db(_LAYOUT_DB), layout, path)
    except BaseException:
        env.close()
        lock_file.close()
        raise
    return LmdbFiles(env, dbs, lock_file)


def _check_layout(env: Any, layout_db: Any, expected: Layout, path: Path) -> None:
    with env.begin(write=True) as txn:
        raw = txn.get(_LAYOUT_KEY, db=layout_db)
        if raw is None:
            txn.put(_LAYOUT_KEY, msgspec.msgpack.encode(expected), db=layout_db)
            return
    try:
        found = msgspec.msgpack.decode(raw, type=Layout)
    except msgspec.DecodeError as error:
        raise InvariantViolation(f"{path}: the layout record is unreadable") from error
    if found.store != expected.store:
        raise InvariantViolation(
            f"{path} holds the {found.store} store's files, not the {expected.store} store's"
        )
    if found.version != expected.version:
        raise InvariantViolation(
            f"{path} is of {found.store} layout {found.version}; this node reads layout "
            f"{expected.version}: the files were written by another version; move them aside"
        )
