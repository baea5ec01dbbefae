"""The payments actor: one Ray actor that owns the charges' LMDB files, and its client.

Charges are a few a second at the busiest (members charging from their phones), so one
actor applying one durable transaction per operation is plenty, and every front of a
cluster sees the same charges. Messages cross the Ray boundary as MessagePack bytes of
typed Structs, as the registry's do; the class stays undecorated so that Ray pickles it
by reference to this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from coopnode.actors.kernel.placement import stores_home
from coopnode.actors.kernel.ray_calls import ActorCallFailed, answer_of, named_actor, settings_json
from coopnode.actors.payments.messages import PaymentsOp, PaymentsReply
from coopnode.actors.payments.store import PaymentsStore
from coopnode.logs import configure_logging, get_logger
from coopnode.settings import Settings

log = get_logger(__name__)

PAYMENTS_ACTOR_NAME = "payments"
_op_decoder: msgspec.msgpack.Decoder[PaymentsOp] = msgspec.msgpack.Decoder(PaymentsOp)
_reply_decoder = msgspec.msgpack.Decoder(PaymentsReply)


def payments_path(settings: Settings) -> Path:
    return settings.data_path.resolve() / "payments"


class PaymentsActor:
    """Applies payment operations one at a time (a synchronous Ray actor)."""

    def __init__(self, settings_json: bytes) -> None:
        settings = msgspec.json.decode(settings_json, type=Settings)
        configure_logging(settings.log)
        self._store = PaymentsStore(
            payments_path(settings),
            map_size_bytes=settings.payments.lmdb_map_size_mib * 1024 * 1024,
            fsync=settings.wallet.fsync,
            lock_wait_s=settings.wallet.lock_wait_s,
        )
        log.info("payments ready")

    def apply(self, op: bytes) -> bytes:
        return msgspec.msgpack.encode(self._store.apply(_op_decoder.decode(op)))

    def ping(self) -> bool:
        return True


def create_payments_actor(settings: Settings) -> Any:
    """Create (or find, when joining a running cluster) the payments actor; it waits on
    fsync, not on the CPU, and holds no CPU slot."""
    home = stores_home(settings)
    return named_actor(
        PaymentsActor,
        PAYMENTS_ACTOR_NAME,
        settings,
        settings_json(home.settings),
        resources=home.resources,
    )


class PaymentsUnavailable(Exception):
    """The payments actor did not answer in time."""


class PaymentsClient:
    """Calls the payments actor from the front's event loop."""

    def __init__(self, actor: Any, call_timeout_s: float) -> None:
        self._actor = actor
        self._timeout_s = call_timeout_s

    async def wait_ready(self, timeout_s: float) -> None:
        await answer_of(self._actor.ping.remote(), timeout_s)

    async def call(self, op: PaymentsOp) -> PaymentsReply:
        ref = self._actor.apply.remote(msgspec.msgpack.encode(op))
        try:
            raw = await answer_of(ref, self._timeout_s)
        except ActorCallFailed as error:
            raise PaymentsUnavailable(type(error.cause).__name__) from error
        return _reply_decoder.decode(raw)
