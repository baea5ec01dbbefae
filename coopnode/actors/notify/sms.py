"""SMS and voice calls: the `SmsProvider` protocol and its two adapters.

    SmsProvider             the protocol both adapters follow
    ├── OutboxSms           keeps SMS and calls in the development `Outbox`
    └── TwilioSms           Twilio's REST API (Messages.json, Calls.json) over aiohttp

Logs name the kind of message, the masked recipient and the error code, never a body, a
token or a provider's free-text message.
"""

from __future__ import annotations

import asyncio
import re
from typing import Protocol
from urllib.parse import quote
from xml.sax.saxutils import escape

import aiohttp
import msgspec

from coopnode.actors.notify.delivery import Attempt, Sleep, read_secret, rejected, with_retries
from coopnode.actors.notify.messages import Channel, DeliveryOutcome, DeliveryStatus
from coopnode.actors.notify.outbox import Outbox
from coopnode.settings import NotifierSettings, SmsProviderKind

# E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
_TWILIO_API_VERSION = "2010-04-01"


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
            return rejected(channel, error)
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
        return cls(settings, auth_token=read_secret(settings.sms_auth_token_file))

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
            return rejected(channel, error)
        return await with_retries(
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

    async def _post(self, url: str, form: dict[str, str]) -> Attempt:
        limit_bytes = self._settings.provider_response_max_bytes
        try:
            headers = {"Authorization": self._authorization}
            async with self._client().post(url, data=form, headers=headers) as response:
                raw = await _read_bounded(response, limit_bytes)
                status = response.status
                retry_after_s = _retry_after_s(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as error:
            return Attempt(status=DeliveryStatus.FAILED, error=type(error).__name__)
        if 200 <= status < 300:
            try:
                sid = msgspec.json.decode(raw, type=_TwilioResource).sid
            except msgspec.DecodeError:
                sid = ""  # Accepted all the same; the id is only for tracing.
            return Attempt(status=DeliveryStatus.SENT, provider_id=sid)
        try:
            answer = msgspec.json.decode(raw, type=_TwilioError)
        except msgspec.DecodeError:
            answer = _TwilioError()
        passing = status == 429 or status >= 500
        return Attempt(
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
