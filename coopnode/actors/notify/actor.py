"""The notifier actor: mail, SMS and voice calls leave the node from one Ray actor.

The actor owns the `Notifier` (a bounded queue and its sending workers, with retries and
backoff) and, in development, the embedded SMTP server and its in-memory outbox, so that
mail relays and SMS providers are reached from one place whatever process asks.

The front hands notifications over with `NotifierClient.submit`, which never waits: it
starts a Ray call and returns at once, and refuses (False) when too many hand-overs are
still on their way, so a stalled actor cannot pile up work in the front. The outbox is
read through `NotifierClient.snapshot` (development only).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import msgspec

from coopnode.actors.kernel.placement import stores_home
from coopnode.actors.kernel.ray_calls import answer_of, named_actor, settings_json
from coopnode.actors.notify.dev_smtp import DevMailServer
from coopnode.actors.notify.messages import Channel, Notification
from coopnode.actors.notify.notifier import Notifier
from coopnode.actors.notify.outbox import Outbox, OutboxMessage
from coopnode.actors.notify.sms import SmsProvider, build_sms_provider
from coopnode.actors.notify.smtp import MailSender
from coopnode.logs import configure_logging, get_logger
from coopnode.settings import Settings

log = get_logger(__name__)

NOTIFIER_ACTOR_NAME = "notifier"

_notification_encoder = msgspec.msgpack.Encoder()
_notification_decoder: msgspec.msgpack.Decoder[Notification] = msgspec.msgpack.Decoder(Notification)


class OutboxSnapshot(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    messages: list[OutboxMessage]
    last_sequence: int


class NotifierPort(Protocol):
    """What the front needs to send: the actor's client, or a `Notifier` in tests."""

    def submit(self, message: Notification) -> bool: ...


class OutboxPort(Protocol):
    """What the development outbox page reads: the actor's client, or an `Outbox`."""

    async def snapshot(
        self, to: str | None, channel: Channel | None, after: int
    ) -> OutboxSnapshot: ...


async def outbox_snapshot(
    outbox: Outbox, to: str | None, channel: Channel | None, after: int
) -> OutboxSnapshot:
    messages = [message for message in outbox.list(to, channel) if message.sequence > after]
    return OutboxSnapshot(messages=messages, last_sequence=outbox.last_sequence)


class LocalOutbox:
    """An `Outbox` in this process, seen through the `OutboxPort` the page reads."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def snapshot(self, to: str | None, channel: Channel | None, after: int) -> OutboxSnapshot:
        return await outbox_snapshot(self.outbox, to, channel, after)


class NotifierActor:
    """Undecorated so Ray pickles it by reference; `create_notifier_actor` makes the actor."""

    def __init__(self, settings_json: bytes) -> None:
        settings = msgspec.json.decode(settings_json, type=Settings)
        configure_logging(settings.log)
        self._settings = settings.notifier
        self._mail_server: DevMailServer | None = None
        self._sms: SmsProvider | None = None
        self._notifier: Notifier | None = None
        self._starting = asyncio.Lock()

    async def start(self) -> bool:
        """Start the mail server (development), the sender and the workers; idempotent.

        Returns whether the embedded mail server, and so the outbox, exists.
        """
        async with self._starting:
            if self._notifier is None:
                port = None
                if self._settings.smtp_embedded:
                    self._mail_server = DevMailServer(self._settings)
                    await self._mail_server.start()
                    port = self._mail_server.port
                outbox = self._mail_server.outbox if self._mail_server is not None else None
                self._sms = build_sms_provider(self._settings, outbox)
                sender = MailSender.from_settings(self._settings, port=port)
                self._notifier = Notifier(self._settings, mail=sender, sms=self._sms)
                await self._notifier.start()
        return self._mail_server is not None

    async def submit(self, raw: bytes) -> bool:
        """Queue one notification; False when the notifier's bounded queue is full."""
        await self.start()
        if self._notifier is None:
            return False
        return self._notifier.submit(_notification_decoder.decode(raw))

    async def snapshot(self, to: str, channel: str, after: int) -> bytes:
        if self._mail_server is None:
            return msgspec.msgpack.encode(OutboxSnapshot(messages=[], last_sequence=0))
        wanted = Channel(channel) if channel else None
        found = await outbox_snapshot(self._mail_server.outbox, to or None, wanted, after)
        return msgspec.msgpack.encode(found)

    async def stop(self, grace_s: float) -> None:
        if self._notifier is not None:
            await self._notifier.stop(grace_s)
        if self._sms is not None:
            await self._sms.close()
        if self._mail_server is not None:
            await self._mail_server.stop()


def create_notifier_actor(settings: Settings) -> Any:
    """Create (or find, when joining a running cluster) the notifier actor; it waits on
    SMTP and HTTP, and holds no CPU slot."""
    home = stores_home(settings)
    return named_actor(
        NotifierActor,
        NOTIFIER_ACTOR_NAME,
        settings,
        settings_json(home.settings),
        resources=home.resources,
    )


class NotifierClient:
    """The front's side: hands notifications to the actor without waiting for them."""

    def __init__(self, actor: Any, in_flight_max: int) -> None:
        self._actor = actor
        self._in_flight_max = in_flight_max
        self._in_flight: set[asyncio.Future[Any]] = set()

    async def start(self) -> bool:
        embedded: bool = await answer_of(self._actor.start.remote(), None)
        return embedded

    def submit(self, message: Notification) -> bool:
        if len(self._in_flight) >= self._in_flight_max:
            return False
        raw = _notification_encoder.encode(message)
        handed = asyncio.wrap_future(self._actor.submit.remote(raw).future())
        self._in_flight.add(handed)
        handed.add_done_callback(self._handed)
        return True

    def _handed(self, handed: asyncio.Future[Any]) -> None:
        self._in_flight.discard(handed)
        if handed.cancelled():
            return
        error = handed.exception()
        if error is not None:
            log.error("notification not handed to the notifier", error=repr(error))
        elif handed.result() is False:
            log.error("notifier queue full; notification dropped")

    async def snapshot(self, to: str | None, channel: Channel | None, after: int) -> OutboxSnapshot:
        channel_name = channel.value if channel is not None else ""
        ref = self._actor.snapshot.remote(to or "", channel_name, after)
        raw = await answer_of(ref, None)
        return msgspec.msgpack.decode(raw, type=OutboxSnapshot)

    async def stop(self, grace_s: float) -> None:
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=grace_s)
        await answer_of(self._actor.stop.remote(grace_s), None)
