"""The front's side of the backup actor: start a staff backup, ask after one."""

from __future__ import annotations

from typing import Any

import msgspec

from coopnode.actors.backup.messages import BackupAnswer, StartBackup
from coopnode.actors.kernel.ray_calls import ActorCallFailed, answer_of

# Both calls answer at once (the copies run on the actor's own thread); a busy actor
# still answers within seconds, and this stays well inside a request's time.
CALL_TIMEOUT_S = 5.0
_answer_decoder = msgspec.msgpack.Decoder(BackupAnswer)
_encoder = msgspec.msgpack.Encoder()


class BackupUnavailable(Exception):
    """The backup actor did not answer in time."""


class BackupClient:
    def __init__(self, actor: Any, call_timeout_s: float = CALL_TIMEOUT_S) -> None:
        self._actor = actor
        self._timeout_s = call_timeout_s

    async def wait_ready(self, timeout_s: float) -> None:
        await answer_of(self._actor.ping.remote(), timeout_s)

    async def start(self, request: StartBackup) -> BackupAnswer:
        return await self._call(self._actor.start.remote(_encoder.encode(request)))

    async def status(self, backup_id: str) -> BackupAnswer:
        return await self._call(self._actor.status.remote(backup_id))

    async def _call(self, ref: Any) -> BackupAnswer:
        try:
            raw = await answer_of(ref, self._timeout_s)
        except ActorCallFailed as error:
            raise BackupUnavailable(type(error.cause).__name__) from error
        return _answer_decoder.decode(raw)
