"""The notifier's queue: a request never waits for a mail relay or an SMS provider. It
hands a message to `Notifier.submit`, which queues it (bounded) for a few worker tasks
that send, retry and log."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from coopnode.actors.notify.messages import (
    DeliveryOutcome,
    MailMessage,
    Notification,
    SmsMessage,
    VoiceMessage,
    mask_recipient,
)
from coopnode.actors.notify.sms import SmsProvider
from coopnode.actors.notify.smtp import MailSender
from coopnode.logs import get_logger
from coopnode.settings import NotifierSettings

_log = get_logger("coopnode.notifier")


OutcomeListener = Callable[[Notification, DeliveryOutcome], None]


class Notifier:
    """A bounded queue of notifications and the workers that send them."""

    def __init__(
        self,
        settings: NotifierSettings,
        *,
        mail: MailSender,
        sms: SmsProvider,
        on_outcome: OutcomeListener | None = None,
    ) -> None:
        self._settings = settings
        self._mail = mail
        self._sms = sms
        self._on_outcome = on_outcome
        self._queue: asyncio.Queue[Notification] = asyncio.Queue(settings.queue_max_messages)
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def submit(self, message: Notification) -> bool:
        """Queue a message without waiting; False when the queue is full."""
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            _log.warning("notification_refused_queue_full", kind=message.kind)
            return False
        return True

    async def start(self) -> None:
        if self._workers:
            return
        self._stopping = False
        self._workers = [
            asyncio.create_task(self._work(), name=f"notifier-{index}")
            for index in range(self._settings.send_workers)
        ]

    async def stop(self, grace_s: float = 5.0) -> None:
        """Send what is queued for up to `grace_s`, then stop the workers."""
        if self._workers:
            try:
                async with asyncio.timeout(grace_s):
                    await self._queue.join()
            except TimeoutError:
                _log.warning("notifier_stopped_with_messages_queued", queued=self._queue.qsize())
        workers, self._workers = self._workers, []
        # Workers end on this flag too: CPython 3.11's `wait_for` (under the SMTP and SMS
        # clients' timeouts) swallows a cancellation that comes as its call is answered.
        self._stopping = True
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    async def deliver(self, message: Notification) -> DeliveryOutcome:
        """Send one message now, with retries, and log the outcome."""
        match message:
            case MailMessage():
                outcome = await self._mail.send(message)
            case SmsMessage(to=to, body=body):
                outcome = await self._sms.send_sms(to, body)
            case VoiceMessage(to=to, speech=speech):
                outcome = await self._sms.call(to, speech)
        _log_outcome(message, outcome)
        return outcome

    async def _work(self) -> None:
        while not self._stopping:
            message = await self._queue.get()
            try:
                outcome = await self.deliver(message)
                if self._on_outcome is not None:
                    self._on_outcome(message, outcome)
            except Exception:
                # A bug must not stop the worker and with it every later passcode; the
                # message is lost, and the log says which kind it was.
                _log.exception("notification_crashed", kind=message.kind)
            finally:
                self._queue.task_done()


def _log_outcome(message: Notification, outcome: DeliveryOutcome) -> None:
    fields = {
        "kind": message.kind,
        "channel": outcome.channel.value,
        "recipient": mask_recipient(message.to),
        "attempts": outcome.attempts,
        "error": outcome.error,
    }
    if outcome.sent:
        _log.info("notification_sent", provider_id=outcome.provider_id, **fields)
    else:
        _log.warning("notification_not_sent", status=outcome.status.value, **fields)
