"""The registry actor: one Ray actor that owns the card and till registry's LMDB files.

Staff change cards and tills rarely, so one actor and one write transaction per change
are plenty; what matters is that every front of a cluster reads the same registry. The
tap path never calls this actor: each front keeps an in-memory copy (loaded with
`snapshot` at start) and decides taps from that copy.

Changes reach every front by push: the actor keeps its latest changes in memory by
version (`till.registry_change_log_max` of them), and each front holds one call,
`changes_since(version)`, that the actor answers as soon as a change lands (or after
`wait_s` with nothing). A front whose version the log no longer reaches back to (it fell
behind, or the actor restarted with an empty log) is told to reload the snapshot. The
actor is an asyncio actor so that those calls wait without holding a thread: Ray runs
every method, these waits and the plain ones alike, on the actor's one event loop, one
at a time between awaits, so the store is still used by one thread.

Messages cross the Ray boundary as MessagePack bytes of typed Structs, as the wallet
shards' do. The class stays undecorated so that Ray pickles it by reference to this
module; `kernel.ray_calls.named_actor` makes the Ray actor of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from pathlib import Path

import msgspec

from coopnode.actors.registry.messages import (
    RefusedOfflineTap,
    RegistryChange,
    RegistryChanges,
    RegistryOp,
)
from coopnode.actors.registry.store import RegistryStore
from coopnode.domain.offline import LimitsSent
from coopnode.logs import configure_logging, get_logger
from coopnode.settings import Settings

log = get_logger(__name__)

REGISTRY_NAME = "registry"
op_decoder: msgspec.msgpack.Decoder[RegistryOp] = msgspec.msgpack.Decoder(RegistryOp)


def registry_path(settings: Settings) -> Path:
    return settings.data_path.resolve() / "registry"


_sequences_decoder = msgspec.msgpack.Decoder(dict[str, int])
_sent_decoder = msgspec.msgpack.Decoder(LimitsSent)
_refused_decoder = msgspec.msgpack.Decoder(RefusedOfflineTap)


class RegistryActor:
    """Applies registry operations one at a time.

    A backup's copy runs on a worker thread (LMDB's copy reads a snapshot and lets go of
    the GIL), so staff changes and the fronts' waiting calls are not held up by it.
    """

    def __init__(self, settings_json: bytes) -> None:
        settings = msgspec.json.decode(settings_json, type=Settings)
        configure_logging(settings.log)
        # The data directory this actor was given (its host's): its files are in it.
        self._data_dir = settings.data_path.resolve()
        store = RegistryStore(
            registry_path(settings),
            map_size_bytes=settings.till.registry_lmdb_map_size_mib * 1024 * 1024,
            fsync=settings.wallet.fsync,
            lock_wait_s=settings.wallet.lock_wait_s,
        )
        self._open(store, settings.till.registry_change_log_max)
        log.info("registry ready", version=self._version)

    def _open(self, store: RegistryStore, change_log_max: int) -> None:
        """Serve `store` (the tests' in-process registry starts here)."""
        self._store = store
        self._version = store.version()
        # The latest changes, oldest first; a front behind the first one reloads.
        self._log: deque[RegistryChange] = deque(maxlen=change_log_max)
        # Set, and replaced by a fresh one, at every change: what waiting calls wait on.
        self._changed = asyncio.Event()

    async def apply(self, op: bytes) -> bytes:
        change = self._store.apply(op_decoder.decode(op))
        if change.ok:
            self._log.append(change)
            self._version = change.version
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()
        return msgspec.msgpack.encode(change)

    async def changes_since(self, version: int, wait_s: float) -> bytes:
        """The changes after `version`; when there are none yet, wait up to `wait_s` for
        the next one. A front always has one of these calls waiting."""
        if version == self._version:
            # Nothing changed within `wait_s`: the empty answer, and the front calls again.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait_s)
        return msgspec.msgpack.encode(self._changes_after(version))

    def _changes_after(self, version: int) -> RegistryChanges:
        if version == self._version:
            return RegistryChanges(version=version)
        if version > self._version or not self._log or self._log[0].version > version + 1:
            # Ahead of the registry (its files were restored from a backup) or behind
            # the log's reach: only the snapshot can bring the front up to date.
            return RegistryChanges(version=self._version, reload=True)
        changes = [change for change in self._log if change.version > version]
        return RegistryChanges(version=self._version, changes=changes)

    async def backup_to(self, backup_dir: str) -> bytes:
        """Copy the registry's files into `<backup_dir>/registry/` on this host."""
        copy = await asyncio.to_thread(self._store.backup_to, Path(backup_dir), self._data_dir)
        return msgspec.msgpack.encode(copy)

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode(self._store.snapshot())

    def version(self) -> int:
        return self._store.version()

    def sequences(self) -> bytes:
        return msgspec.msgpack.encode(self._store.sequences())

    def sequence_of(self, till_id: str) -> int:
        return self._store.sequence_of(till_id)

    def note_sequences(self, seen: bytes) -> None:
        self._store.note_sequences(_sequences_decoder.decode(seen))

    def limits_history(self) -> bytes:
        return msgspec.msgpack.encode(self._store.limits_history())

    def limits_of(self, till_id: str) -> bytes:
        return msgspec.msgpack.encode(self._store.limits_of(till_id))

    def note_limits(self, till_id: str, sent: bytes, skew_ms: int) -> bytes:
        history = self._store.note_limits(till_id, _sent_decoder.decode(sent), skew_ms)
        return msgspec.msgpack.encode(history)

    def note_refused(self, refused: bytes, per_till_max: int) -> str:
        return self._store.note_refused(_refused_decoder.decode(refused), per_till_max)

    def refused_taps(self, till_id: str, limit: int) -> bytes:
        return msgspec.msgpack.encode(self._store.refused_taps(till_id, limit))
