"""The front's side of the backup actor: start a staff backup, ask after one.

With backups off (no `backup.dir`) there is no backup actor at all, which spares every
node without backups a Ray worker process; the client then answers `backups_off`
itself."""

from __future__ import annotations

from typing import Any

import msgspec

from coopnode.actors.backup.messages import (
    BackupAnswer,
    BackupRefused,
    RefusalReason,
    StartBackup,
)
from coopnode.actors.kernel.ray_calls import ActorCallFailed, answer_of

# Both calls answer at once (the copies run on the actor's own thread); a busy actor
# still answers within seconds, and this stays well inside a request's time.
CALL_TIMEOUT_S = 5.0
_answer_decoder = msgspec.msgpack.Decoder(BackupAnswer)
_encoder = msgspec.msgpack.Encoder()
_OFF = BackupAnswer(
    refused=BackupRefused(
        reason=RefusalReason.BACKUPS_OFF,
        message="backups are off: backup.dir in the settings names where they go",
    )
)


class BackupUnavailable(Exception):
    """The backup actor did not answer in time."""


class BackupClient:
    """Calls the backup actor; `actor` None means backups are off."""

    def __init__(self, actor: Any | None, call_timeout_s: float = CALL_TIMEOUT_S) -> None:
        self._actor = actor
        self._timeout_s = call_timeout_s

    async def wait_ready(self, timeout_s: float) -> None:
        if self._actor is not None:
            await answer_of(self._actor.ping.remote(), timeout_s)

    async def start(self, request: StartBackup) -> BackupAnswer:
        if self._actor is None:
            return _OFF
        return await self._call(self._actor.start.remote(_encoder.encode(request)))

    async def status(self, backup_id: str) -> BackupAnswer:
        if self._actor is None:
            return _OFF
        return await self._call(self._actor.status.remote(backup_id))

    async def _call(self, ref: Any) -> BackupAnswer:
        try:
            raw = await answer_of(ref, self._timeout_s)
        except ActorCallFailed as error:
            raise BackupUnavailable(type(error.cause).__name__) from error
        return _answer_decoder.decode(raw)
