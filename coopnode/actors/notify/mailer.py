"""The notifier: mail over SMTP, SMS and voice calls, and the development outbox.

Plain asyncio classes; the notifier actor wraps them. A request never waits for a mail
relay or an SMS provider: it hands a message to `Notifier.submit`, which queues it
(bounded) for a few worker tasks that send, retry with exponential backoff, and log.

    Notification            what crosses the boundary, a tagged union of frozen Structs
    ├── MailMessage         to a mail address, through `MailSender` (aiosmtplib)
    ├── SmsMessage          to a phone number, through an `SmsProvider`
    └── VoiceMessage        a call that reads a text out, through an `SmsProvider`

    SmsProvider             the protocol both adapters follow
    ├── OutboxSms           keeps SMS and calls in the development `Outbox`
    └── TwilioSms           Twilio's REST API (Messages.json, Calls.json) over aiohttp

Failures are outcomes, not exceptions: every send returns a `DeliveryOutcome` whose status
is SENT, REJECTED (permanent: a refused address, a message too large, SMTP 5xx, HTTP 4xx
other than 429; not retried) or FAILED (passing: connection refused, timeout, SMTP 4xx,
HTTP 5xx or 429; retried until `send_retry_max`). Logs name the kind of message, the masked
recipient and the error code, never a body, a subject, a token or a provider's free-text
message.

`DevMailServer` is an aiosmtpd server on loopback that keeps every mail it receives in a
bounded in-memory `Outbox`. Mails carry passcodes, so the outbox never touches a disk.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import email.utils
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote
from xml.sax.saxutils import escape

import aiohttp
import aiosmtplib
import msgspec
from aiosmtpd.controller import Controller

from coopnode.logs import get_logger
from coopnode.settings import NotifierSettings, SmsProviderKind

_log = get_logger("coopnode.notifier")

# E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
_TWILIO_API_VERSION = "2010-04-01"

Sleep = Callable[[float], Awaitable[None]]


class Channel(StrEnum):
    MAIL = "mail"
    SMS = "sms"
    VOICE = "voice"


class DeliveryStatus(StrEnum):
    SENT = "sent"
    REJECTED = "rejected"  # Permanent; sending again would fail the same way.
    FAILED = "failed"  # Passing; every retry failed too.


class DeliveryOutcome(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    status: DeliveryStatus
    channel: Channel
    attempts: int
    # The provider's id of the message (Twilio's `sid`), when it gave one.
    provider_id: str = ""
    # A short code: "smtp_550", "twilio_21211", "too_large", "ClientConnectorError".
    error: str = ""
    # The provider's own explanation, for the caller; it may name the recipient, so it is
    # never logged.
    detail: str = ""

    @property
    def sent(self) -> bool:
        return self.status is DeliveryStatus.SENT


class _Notification(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    # A mail address, or a phone number in E.164 form (+819012345678).
    to: str
    # What the message is for ("enrolment", "mail_change", "sign_in"), for logs and metrics.
    kind: str = "notice"

    def __repr__(self) -> str:
        # Bodies carry passcodes: a repr in a traceback or a log must not show them.
        return f"{type(self).__name__}(kind={self.kind!r}, to={mask_recipient(self.to)!r})"


class MailMessage(_Notification, frozen=True, tag="mail"):
    subject: str
    body: str


class SmsMessage(_Notification, frozen=True, tag="sms"):
    body: str


class VoiceMessage(_Notification, frozen=True, tag="voice"):
    speech: str  # Read out in Japanese.


Notification = MailMessage | SmsMessage | VoiceMessage


def mask_recipient(address: str) -> str:
    """Keep enough of an address or number to tell messages apart in logs, no more."""
    if "@" in address:
        local, _, domain = address.rpartition("@")
        return f"{local[:2]}***@{domain}"
    return f"{address[:3]}***{address[-2:]}" if len(address) > 6 else "***"


def backoff_delay_s(settings: NotifierSettings, retry_index: int) -> float:
    """The wait before retry number `retry_index` (0 for the first retry)."""
    delay_ms = min(settings.send_backoff_ms << retry_index, settings.send_backoff_max_ms)
    return delay_ms / 1000


class _Try(msgspec.Struct, frozen=True, kw_only=True):
    """The result of one attempt; FAILED means it may be tried again."""

    status: DeliveryStatus
    provider_id: str = ""
    error: str = ""
    detail: str = ""
    retry_after_s: float = 0.0


async def _with_retries(
    attempt: Callable[[], Awaitable[_Try]],
    *,
    channel: Channel,
    settings: NotifierSettings,
    sleep: Sleep,
) -> DeliveryOutcome:
    last = _Try(status=DeliveryStatus.FAILED)
    attempts = 0
    for retry_index in range(-1, settings.send_retry_max):
        if retry_index >= 0:
            # A provider's Retry-After is honoured, but never beyond the configured ceiling.
            hint_s = min(last.retry_after_s, settings.send_backoff_max_ms / 1000)
            await sleep(max(backoff_delay_s(settings, retry_index), hint_s))
        attempts += 1
        last = await attempt()
        if last.status is not DeliveryStatus.FAILED:
            break
    return DeliveryOutcome(
        status=last.status,
        channel=channel,
        attempts=attempts,
        provider_id=last.provider_id,
        error=last.error,
        detail=last.detail,
    )


def _rejected(channel: Channel, error: str) -> DeliveryOutcome:
    return DeliveryOutcome(status=DeliveryStatus.REJECTED, channel=channel, attempts=0, error=error)


# The outbox ---------------------------------------------------------------------------


class OutboxMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    # Increases by one with every message the outbox takes; `wait_for(after=...)` uses it.
    sequence: int
    channel: Channel
    to: str
    sender: str
    subject: str
    body: str
    received_at_s: float

    def __repr__(self) -> str:
        return (
            f"OutboxMessage(sequence={self.sequence}, channel={self.channel.value!r}, "
            f"to={mask_recipient(self.to)!r})"
        )


class Outbox:
    """The newest `max_messages` mails, SMS and calls, in memory only.

    The development mail server adds mail from its own thread, so every access takes a
    lock, and waiters on other event loops are woken with `call_soon_threadsafe`.
    """

    def __init__(self, max_messages: int) -> None:
        self._lock = threading.Lock()
        self._messages: deque[OutboxMessage] = deque(maxlen=max_messages)
        self._sequence = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    @property
    def last_sequence(self) -> int:
        """The sequence of the newest message; pass it as `after` to wait for the next."""
        with self._lock:
            return self._sequence

    def add(self, *, channel: Channel, to: str, sender: str, subject: str, body: str) -> int:
        with self._lock:
            self._sequence += 1
            self._messages.append(
                OutboxMessage(
                    sequence=self._sequence,
                    channel=channel,
                    to=to,
                    sender=sender,
                    subject=subject,
                    body=body,
                    received_at_s=time.time(),
                )
            )
            waiters = list(self._waiters)
            sequence = self._sequence
        for loop, event in waiters:
            # A waiter whose loop has closed has given up waiting.
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)
        return sequence

    def list(
        self, to: str | None = None, channel: Channel | None = None
    ) -> tuple[OutboxMessage, ...]:
        """Messages oldest first, to one recipient and on one channel when given."""
        wanted = to.lower() if to is not None else None
        with self._lock:
            return tuple(
                message
                for message in self._messages
                if (wanted is None or message.to.lower() == wanted)
                and (channel is None or message.channel is channel)
            )

    def latest(self, to: str, channel: Channel | None = None) -> OutboxMessage | None:
        messages = self.list(to, channel)
        return messages[-1] if messages else None

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def _first_after(self, to: str, after: int, channel: Channel | None) -> OutboxMessage | None:
        for message in self.list(to, channel):
            if message.sequence > after:
                return message
        return None

    async def wait_for(
        self, to: str, *, after: int = 0, timeout_s: float, channel: Channel | None = None
    ) -> OutboxMessage:
        """The first message to `to` newer than sequence `after`; TimeoutError if none comes."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    # Clear before looking, so a message added after the look still wakes us.
                    waiter[1].clear()
                    found = self._first_after(to, after, channel)
                    if found is not None:
                        return found
                    await waiter[1].wait()
        except TimeoutError:
            raise TimeoutError(f"no message to {mask_recipient(to)} within {timeout_s} s") from None
        finally:
            with self._lock:
                self._waiters.discard(waiter)


# The development mail server ----------------------------------------------------------


def parse_mail(content: bytes) -> tuple[str, str, str]:
    """The decoded From, Subject and plain-text body of a raw mail."""
    parsed = email.message_from_bytes(content, policy=email.policy.default)
    part = parsed.get_body(preferencelist=("plain",))
    body = str(part.get_content()) if part is not None else ""
    return str(parsed.get("From", "")), str(parsed.get("Subject", "")), body


class _OutboxHandler:
    """The aiosmtpd handler: every accepted mail goes to the outbox, once per recipient."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        try:
            sender, subject, body = parse_mail(envelope.original_content or b"")
        except (LookupError, ValueError, UnicodeError):
            # An unknown charset or a broken MIME structure: refuse it like a real server.
            return "554 Transaction failed: the message cannot be parsed"
        for recipient in envelope.rcpt_tos:
            self._outbox.add(
                channel=Channel.MAIL, to=recipient, sender=sender, subject=subject, body=body
            )
        return "250 Message accepted for delivery"


class _DevController(Controller):
    def _trigger_server(self) -> None:
        # aiosmtpd 1.4.6 checks that its server answers by connecting to `self.port`, which
        # fails for port 0 (aio-libs/aiosmtpd#388): learn the port the OS chose first.
        # (uvloop's server is no asyncio.Server, but it has the same `sockets`.)
        sockets = getattr(self.server, "sockets", None)
        if self.port == 0 and sockets:
            self.port = sockets[0].getsockname()[1]
        # aiosmtpd leaves this method unannotated.
        super()._trigger_server()  # type: ignore[no-untyped-call]


class DevMailServer:
    """An SMTP server on loopback for development and tests, keeping mail in an `Outbox`."""

    def __init__(self, settings: NotifierSettings, outbox: Outbox | None = None) -> None:
        self.outbox = outbox if outbox is not None else Outbox(settings.outbox_max_messages)
        self._settings = settings
        self._controller: _DevController | None = None

    @property
    def host(self) -> str:
        return self._settings.smtp_host

    @property
    def port(self) -> int:
        """The port it listens on, chosen by the OS when the settings say 0."""
        if self._controller is None:
            raise RuntimeError("the development mail server is not running")
        port: int = self._controller.port
        return port

    async def start(self) -> None:
        if self._controller is not None:
            return
        # A controller's event loop is closed when it stops, so every start makes a new one.
        controller = _DevController(
            _OutboxHandler(self.outbox),
            hostname=self._settings.smtp_host,
            port=self._settings.smtp_port,
            server_hostname="coopnode-dev-mail",
            data_size_limit=self._settings.mail_message_max_bytes,
            enable_SMTPUTF8=True,
        )
        # Starting waits for the server's thread to answer; keep that off the event loop.
        await asyncio.to_thread(controller.start)
        self._controller = controller
        _log.info("dev_mail_server_started", host=self.host, port=self.port)

    async def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            await asyncio.to_thread(controller.stop)


# Mail ---------------------------------------------------------------------------------


def _read_secret(path: str) -> str:
    return Path(path).read_text(encoding="utf-8").strip() if path else ""


class MailSender:
    """Sends one mail at a time over SMTP with retries; answers with a `DeliveryOutcome`."""

    def __init__(
        self,
        settings: NotifierSettings,
        *,
        port: int | None = None,
        password: str = "",
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._settings = settings
        # The embedded server picks its port at start, so the caller passes it here.
        self._port = settings.smtp_port if port is None else port
        self._password = password
        self._sleep = sleep
        self._envelope_from = email.utils.parseaddr(settings.mail_from)[1]
        self._domain = self._envelope_from.rpartition("@")[2] or "coopnode.local"

    @classmethod
    def from_settings(cls, settings: NotifierSettings, *, port: int | None = None) -> MailSender:
        return cls(settings, port=port, password=_read_secret(settings.smtp_password_file))

    def build(self, message: MailMessage) -> EmailMessage:
        """The MIME mail: UTF-8 text in base64, which every relay carries unchanged."""
        mail = EmailMessage()
        mail["From"] = self._settings.mail_from
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Date"] = email.utils.formatdate(localtime=True)
        # An explicit domain, because without one make_msgid asks DNS for this host's name.
        mail["Message-ID"] = email.utils.make_msgid(domain=self._domain)
        mail.set_content(message.body, charset="utf-8", cte="base64")
        return mail

    async def send(self, message: MailMessage) -> DeliveryOutcome:
        settings = self._settings
        too_long = (
            len(message.subject) > settings.mail_subject_max_chars
            or len(message.body) > settings.mail_body_max_chars
        )
        if too_long:
            return _rejected(Channel.MAIL, "too_large")
        try:
            mail = self.build(message)
        except (ValueError, TypeError):
            # A line break in a header or an address the mail library refuses.
            return _rejected(Channel.MAIL, "invalid_message")
        return await _with_retries(
            lambda: self._attempt(mail, message.to),
            channel=Channel.MAIL,
            settings=settings,
            sleep=self._sleep,
        )

    async def _attempt(self, mail: EmailMessage, recipient: str) -> _Try:
        settings = self._settings
        try:
            await aiosmtplib.send(
                mail,
                sender=self._envelope_from,
                recipients=[recipient],
                hostname=settings.smtp_host,
                port=self._port,
                username=settings.smtp_username or None,
                password=self._password or None,
                start_tls=settings.smtp_start_tls,
                timeout=settings.smtp_timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refusal.code for refusal in error.recipients]
            return _smtp_try(max(codes, default=550))
        except aiosmtplib.SMTPResponseException as error:
            return _smtp_try(error.code)
        except ValueError:
            # aiosmtplib refuses an address that could smuggle SMTP commands.
            return _Try(status=DeliveryStatus.REJECTED, error="invalid_address")
        except (aiosmtplib.SMTPException, OSError) as error:
            return _Try(status=DeliveryStatus.FAILED, error=type(error).__name__)
        return _Try(status=DeliveryStatus.SENT)


def _smtp_try(code: int) -> _Try:
    # SMTP 4xx replies are passing (mailbox busy, greylisting); 5xx replies are final.
    status = DeliveryStatus.FAILED if 400 <= code < 500 else DeliveryStatus.REJECTED
    return _Try(status=status, error=f"smtp_{code}")


# SMS and voice ------------------------------------------------------------------------


class SmsProvider(Protocol):
    async def send_sms(self, to: str, body: str) -> DeliveryOutcome: ...

    async def call(self, to: str, speech: str) -> DeliveryOutcome: ...

    async def close(self) -> None: ...


def _check_phone(settings: NotifierSettings, channel: Channel, to: str, text: str) -> str:
    """The reason a message cannot be sent, or "" when it can."""
    if not _E164.match(to):
        return "invalid_number"
    limit = settings.sms_body_max_chars if channel is Channel.SMS else settings.voice_text_max_chars
    return "too_large" if len(text) > limit else ""


class OutboxSms:
    """Keeps SMS and calls in the development outbox instead of sending them."""

    def __init__(self, settings: NotifierSettings, outbox: Outbox) -> None:
        self._settings = settings
        self._outbox = outbox
        self._sender = settings.sms_from_number or "coopnode"

    async def send_sms(self, to: str, body: str) -> DeliveryOutcome:
        return self._keep(Channel.SMS, to, body)

    async def call(self, to: str, speech: str) -> DeliveryOutcome:
        return self._keep(Channel.VOICE, to, speech)

    async def close(self) -> None:
        return None

    def _keep(self, channel: Channel, to: str, text: str) -> DeliveryOutcome:
        error = _check_phone(self._settings, channel, to, text)
        if error:
            return _rejected(channel, error)
        sequence = self._outbox.add(
            channel=channel, to=to, sender=self._sender, subject="", body=text
        )
        return DeliveryOutcome(
            status=DeliveryStatus.SENT,
            channel=channel,
            attempts=1,
            provider_id=f"outbox-{sequence}",
        )


class _TwilioResource(msgspec.Struct, frozen=True):
    # Twilio's answers carry many more fields; only the id is needed, so unknown fields
    # are allowed here, unlike in the node's own messages.
    sid: str


class _TwilioError(msgspec.Struct, frozen=True):
    code: int | None = None
    message: str = ""


async def _read_bounded(response: aiohttp.ClientResponse, limit_bytes: int) -> bytes:
    body = bytearray()
    async for chunk in response.content.iter_chunked(8192):
        body += chunk
        if len(body) >= limit_bytes:
            # A provider that answers with megabytes is broken; what was read will do.
            break
    return bytes(body[:limit_bytes])


def _retry_after_s(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0  # An HTTP date instead of seconds: fall back to our own backoff.


class TwilioSms:
    """SMS and voice calls through Twilio's REST API (or a service with the same shape)."""

    def __init__(
        self, settings: NotifierSettings, *, auth_token: str, sleep: Sleep = asyncio.sleep
    ) -> None:
        self._settings = settings
        account = quote(settings.sms_account_sid, safe="")
        base = settings.sms_api_base_url.rstrip("/")
        self._accounts_url = f"{base}/{_TWILIO_API_VERSION}/Accounts/{account}"
        self._authorization = aiohttp.encode_basic_auth(settings.sms_account_sid, auth_token)
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: NotifierSettings) -> TwilioSms:
        return cls(settings, auth_token=_read_secret(settings.sms_auth_token_file))

    def __repr__(self) -> str:
        return f"TwilioSms({self._accounts_url!r})"

    async def send_sms(self, to: str, body: str) -> DeliveryOutcome:
        form = {"To": to, "From": self._settings.sms_from_number, "Body": body}
        return await self._send(Channel.SMS, "Messages.json", form, body)

    async def call(self, to: str, speech: str) -> DeliveryOutcome:
        twiml = f'<Response><Say language="ja-JP">{escape(speech)}</Say></Response>'
        form = {"To": to, "From": self._settings.sms_from_number, "Twiml": twiml}
        return await self._send(Channel.VOICE, "Calls.json", form, speech)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _send(
        self, channel: Channel, resource: str, form: dict[str, str], text: str
    ) -> DeliveryOutcome:
        error = _check_phone(self._settings, channel, form["To"], text)
        if error:
            return _rejected(channel, error)
        return await _with_retries(
            lambda: self._post(f"{self._accounts_url}/{resource}", form),
            channel=channel,
            settings=self._settings,
            sleep=self._sleep,
        )

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use, because a session belongs to the event loop it was made on.
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self._settings.sms_timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def _post(self, url: str, form: dict[str, str]) -> _Try:
        limit_bytes = self._settings.provider_response_max_bytes
        try:
            headers = {"Authorization": self._authorization}
            async with self._client().post(url, data=form, headers=headers) as response:
                raw = await _read_bounded(response, limit_bytes)
                status = response.status
                retry_after_s = _retry_after_s(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as error:
            return _Try(status=DeliveryStatus.FAILED, error=type(error).__name__)
        if 200 <= status < 300:
            try:
                sid = msgspec.json.decode(raw, type=_TwilioResource).sid
            except msgspec.DecodeError:
                sid = ""  # Accepted all the same; the id is only for tracing.
            return _Try(status=DeliveryStatus.SENT, provider_id=sid)
        try:
            answer = msgspec.json.decode(raw, type=_TwilioError)
        except msgspec.DecodeError:
            answer = _TwilioError()
        passing = status == 429 or status >= 500
        return _Try(
            status=DeliveryStatus.FAILED if passing else DeliveryStatus.REJECTED,
            error=f"twilio_{answer.code if answer.code is not None else status}",
            detail=answer.message,
            retry_after_s=retry_after_s,
        )


def build_sms_provider(settings: NotifierSettings, outbox: Outbox | None) -> SmsProvider:
    """The SMS provider the settings name; the outbox one needs the development outbox."""
    if settings.sms_provider is SmsProviderKind.TWILIO:
        return TwilioSms.from_settings(settings)
    if outbox is None:
        raise ValueError("sms_provider outbox needs the development outbox (smtp_embedded)")
    return OutboxSms(settings, outbox)


# The queue ----------------------------------------------------------------------------

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
        while True:
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
