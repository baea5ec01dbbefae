"""Moving a wallet shard to another host's disk while the node serves, losing nothing.

    coordinator (`coopnode admin move-shard`)   shard (its host)         receiver (target host)
    copy while serving:  copy_out ────────────▶ LMDB's copy of its files
                         the chunks that differ ──────────────────────▶ write
    switch:              fence ───────────────▶ takes no new batch, drains the mailbox
                         copy_out again, the chunks that changed ─────▶ write
                         install ─────────────────────────────────────▶ check, fsync, rename
                         retire ──────────────▶ moved.json beside its files
                         then kills the shard and creates it again, same name, on the
                         target disk; the fronts find it by name and send their batches
                         again under the same idempotency keys

The first copy is made while payments flow, so the switch moves only the chunks that
changed since (LMDB's plain copy keeps untouched pages where they were). Between fence
and the new shard's start the shard's members are answered after the fronts' retries, or
"try again"; nothing acknowledged is lost, because the fence waits for every batch in the
mailbox to be durable before the last copy is taken. The files left on the old disk carry
`moved.json`, so that a node started with settings that still name the old disk refuses
them instead of serving old balances.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

import msgspec

from coopnode.actors.kernel.files import MOVED_MARK, MovedTo
from coopnode.logs import configure_logging, get_logger
from coopnode.settings import Settings

log = get_logger(__name__)

# One Ray call's worth of a copy: large enough that a shard of a gigabyte moves in 256
# calls, small enough that a call never holds the object store or a thread for long.
CHUNK_BYTES = 4 * 1024 * 1024
DATA_FILE = "data.mdb"


class CopyInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A copy of a shard's data file: its size, its SHA-256, and each chunk's."""

    size_bytes: int
    sha256: str
    chunk_sha256: list[str]


def digest_file(path: Path) -> CopyInfo:
    """The size and digests of the file at `path` (an empty copy if there is none)."""
    if not path.exists():
        return CopyInfo(size_bytes=0, sha256=hashlib.sha256().hexdigest(), chunk_sha256=[])
    whole = hashlib.sha256()
    chunks: list[str] = []
    with path.open("rb") as file:
        while block := file.read(CHUNK_BYTES):
            whole.update(block)
            chunks.append(hashlib.sha256(block).hexdigest())
    return CopyInfo(size_bytes=path.stat().st_size, sha256=whole.hexdigest(), chunk_sha256=chunks)


def copy_environment(env: Any, outgoing: Path) -> CopyInfo:
    """LMDB's consistent copy of `env` (from one read transaction: writers go on) into
    `outgoing`, replacing an earlier copy."""
    shutil.rmtree(outgoing, ignore_errors=True)
    outgoing.mkdir(parents=True)
    env.copy(str(outgoing))
    return digest_file(outgoing / DATA_FILE)


def read_chunk(path: Path, index: int) -> bytes:
    with path.open("rb") as file:
        file.seek(index * CHUNK_BYTES)
        return file.read(CHUNK_BYTES)


def mark_moved(path: Path, disk: str) -> None:
    """Leave `moved.json` in the shard's old directory, durably."""
    mark = path / MOVED_MARK
    partial = mark.with_name(MOVED_MARK + ".partial")
    with partial.open("wb") as file:
        file.write(msgspec.json.encode(MovedTo(disk=disk, at_ms=int(time.time() * 1000))))
        file.flush()
        os.fsync(file.fileno())
    partial.replace(mark)
    _fsync_directory(path)


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class MoveRefused(Exception):
    """The target disk cannot take the shard (it holds a live one there)."""


class ShardReceiver:
    """The target host's end of a move: writes the copy beside the shard's future home and
    puts it in place once whole. Undecorated; `kernel.ray_calls.named_actor` makes the Ray
    actor of it, placed on the target disk."""

    def __init__(self, settings_json: bytes, target: str) -> None:
        settings = msgspec.json.decode(settings_json, type=Settings)
        configure_logging(settings.log)
        self._target = Path(target)
        self._incoming = self._target.with_name(self._target.name + ".incoming")
        if (self._target / DATA_FILE).exists() and not (self._target / MOVED_MARK).exists():
            raise MoveRefused(f"{self._target} holds a live shard: it cannot take another")
        self._incoming.mkdir(parents=True, exist_ok=True)

    def digests(self) -> bytes:
        """What the target holds of the copy so far, to send only the chunks that differ."""
        return msgspec.msgpack.encode(digest_file(self._incoming / DATA_FILE))

    def write(self, index: int, data: bytes) -> None:
        path = self._incoming / DATA_FILE
        with path.open("r+b" if path.exists() else "wb") as file:
            file.seek(index * CHUNK_BYTES)
            file.write(data)

    def install(self, raw_info: bytes) -> None:
        """Check the copy against the shard's digest, make it durable, put it in place."""
        info = msgspec.msgpack.decode(raw_info, type=CopyInfo)
        path = self._incoming / DATA_FILE
        with path.open("r+b") as file:
            file.truncate(info.size_bytes)
            file.flush()
            os.fsync(file.fileno())
        found = digest_file(path)
        if found.sha256 != info.sha256:
            raise MoveRefused(f"the copy at {path} does not match the shard's ({found.sha256})")
        if self._target.exists():
            # An earlier home of this shard, left behind by a move away: kept, renamed.
            left = self._target.with_name(f"{self._target.name}.moved-{int(time.time())}")
            self._target.rename(left)
        self._incoming.rename(self._target)
        _fsync_directory(self._target.parent)
        log.info("wallet shard copy installed", path=str(self._target), bytes=info.size_bytes)
