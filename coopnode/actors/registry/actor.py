"""The registry actor: one Ray actor that owns the card and till registry's LMDB files.

Staff change cards and tills rarely, so one actor and one write transaction per change
are plenty; what matters is that every front of a cluster reads the same registry. The
tap path never calls this actor: each front keeps an in-memory copy (loaded with
`snapshot` at start, updated by the changes it makes and by `version` polls) and decides
taps from that copy.

Messages cross the Ray boundary as MessagePack bytes of typed Structs, as the wallet
shards' do. The class stays undecorated so that Ray pickles it by reference to this
module; `kernel.ray_calls.named_actor` makes the Ray actor of it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

from coopnode.actors.registry.messages import RefusedOfflineTap, RegistryOp
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

    `backup_to` is a coroutine, which makes this an async Ray actor; its other methods
    stay plain functions, which Ray runs on the actor's event loop one at a time, as
    before. The copy runs on a worker thread meanwhile (LMDB's copy reads a snapshot and
    lets go of the GIL), so staff changes are not held up by a backup.
    """

    def __init__(self, settings_json: bytes) -> None:
        settings = msgspec.json.decode(settings_json, type=Settings)
        configure_logging(settings.log)
        # The data directory this actor was given (its host's): its files are in it.
        self._data_dir = settings.data_path.resolve()
        self._store = RegistryStore(
            registry_path(settings),
            map_size_bytes=settings.till.registry_lmdb_map_size_mib * 1024 * 1024,
            fsync=settings.wallet.fsync,
            lock_wait_s=settings.wallet.lock_wait_s,
        )
        log.info("registry ready", version=self._store.version())

    def apply(self, op: bytes) -> bytes:
        return msgspec.msgpack.encode(self._store.apply(op_decoder.decode(op)))

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
