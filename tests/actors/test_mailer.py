"""The notifier against a real SMTP server on loopback and a fake Twilio over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from coopnode.actors.notify import mails
from coopnode.actors.notify.dev_smtp import DevMailServer
from coopnode.actors.notify.mails import PaidItem
from coopnode.actors.notify.messages import (
    Channel,
    DeliveryOutcome,
    DeliveryStatus,
    MailMessage,
    Notification,
    SmsMessage,
    VoiceMessage,
)
from coopnode.actors.notify.notifier import Notifier
from coopnode.actors.notify.outbox import Outbox
from coopnode.actors.notify.sms import OutboxSms, TwilioSms
from coopnode.actors.notify.smtp import MailSender
from coopnode.domain.money import Purse
from coopnode.settings import NotifierSettings, SmsProviderKind

MAIL = "taro@example.ac.jp"
PHONE = "+819012345678"
ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "test-auth-token"
FROM_NUMBER = "+815012345678"

# FLOWS §0: what a new member pays at enrolment.
ENROLMENT_ITEMS = [
    PaidItem("生協加入 10口（出資金）", 20_000),
    PaidItem("学生総合共済", 14_400),
    PaidItem("学生賠償責任保険", 8_500),
    PaidItem("就学費用保障保険", 2_600),
    PaidItem("学生生活110番", 9_450),
    PaidItem("電子マネー", 40_000),
    PaidItem("ミール", 96_000),
]


def _settings(**overrides: Any) -> NotifierSettings:
    # Short waits keep the tests fast; the retry logic is the same at any scale.
    values: dict[str, Any] = {"send_backoff_ms": 10, "send_backoff_max_ms": 40, "send_retry_max": 3}
    values.update(overrides)
    return NotifierSettings(**values)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _RecordingSleep:
    """Records the backoff waits instead of sleeping; runs a hook at the first one."""

    def __init__(self, on_first: Any = None) -> None:
        self.waits: list[float] = []
        self._on_first = on_first

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self._on_first is not None:
            hook, self._on_first = self._on_first, None
            await hook()


@pytest.fixture
async def mail_server() -> AsyncIterator[DevMailServer]:
    server = DevMailServer(_settings())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _enrolment_mail() -> mails.MailText:
    return mails.enrolment_completed_mail(
        coop_name="〇〇大学生活協同組合",
        member_name="生協 太郎",
        member_no="123456789012",
        items=ENROLMENT_ITEMS,
        password_guide_url="https://coop.example/guide/password",
    )


# Mail ---------------------------------------------------------------------------------


async def test_a_japanese_mail_arrives_intact(mail_server: DevMailServer) -> None:
    subject, body = _enrolment_mail()
    sender = MailSender(_settings(), port=mail_server.port)
    after = mail_server.outbox.last_sequence

    outcome = await sender.send(MailMessage(to=MAIL, subject=subject, body=body))

    assert outcome.status is DeliveryStatus.SENT
    assert outcome.attempts == 1
    received = await mail_server.outbox.wait_for(MAIL, after=after, timeout_s=30)
    assert received.channel is Channel.MAIL
    assert (
        received.subject
        == "【重要】大学生協ご加入に伴う組合員番号のお知らせと「アプリ登録」のお願い"
    )
    assert received.body == body
    assert received.sender == "大学生協 <noreply@coop.example>"
    assert mail_server.outbox.latest(MAIL) == received


def test_the_mime_mail_is_ascii_on_the_wire() -> None:
    mail = MailSender(_settings(), port=25).build(
        MailMessage(to=MAIL, subject="大学生協加入情報（メールアドレス）変更受付", body="本文")
    )
    raw = mail.as_bytes(policy=mail.policy.clone(cte_type="7bit"))
    raw.decode("ascii")  # Encoded words and base64: any relay carries it unchanged.
    assert b"=?utf-8?" in raw
    assert mail["Content-Type"].params["charset"] == "utf-8"


async def test_mail_is_retried_until_the_server_comes_up() -> None:
    port = _free_port()
    settings = _settings(smtp_port=port)
    server = DevMailServer(settings)
    sleep = _RecordingSleep(on_first=server.start)
    sender = MailSender(settings, port=port, sleep=sleep)
    try:
        outcome = await sender.send(MailMessage(to=MAIL, subject="再送", body="届きました"))
        assert outcome.status is DeliveryStatus.SENT
        assert outcome.attempts == 2
        assert sleep.waits == [0.01]
        received = await server.outbox.wait_for(MAIL, timeout_s=30)
        # A mail body always ends with a line break on the wire.
        assert received.body == "届きました\n"
    finally:
        await server.stop()


async def test_mail_gives_up_after_the_retries_with_an_outcome() -> None:
    settings = _settings(smtp_port=_free_port())
    sleep = _RecordingSleep()
    sender = MailSender(settings, port=settings.smtp_port, sleep=sleep)

    outcome = await sender.send(MailMessage(to=MAIL, subject="件名", body="本文"))

    assert outcome.status is DeliveryStatus.FAILED
    assert outcome.attempts == settings.send_retry_max + 1
    # Doubled each time, and capped.
    assert sleep.waits == [0.01, 0.02, 0.04]


async def test_a_broken_header_is_rejected_without_sending() -> None:
    sender = MailSender(_settings(smtp_port=_free_port()))
    outcome = await sender.send(MailMessage(to=MAIL, subject="件名\r\nBcc: x@evil", body="本文"))
    assert outcome.status is DeliveryStatus.REJECTED
    assert outcome.error == "invalid_message"


async def test_an_oversized_body_is_rejected() -> None:
    settings = _settings(mail_body_max_chars=256)
    outcome = await MailSender(settings, port=25).send(
        MailMessage(to=MAIL, subject="件名", body="あ" * 257)
    )
    assert outcome.status is DeliveryStatus.REJECTED
    assert outcome.error == "too_large"


# The outbox -------------------------------------------------------------------------


def test_the_outbox_keeps_the_newest_messages() -> None:
    outbox = Outbox(max_messages=3)
    for index in range(5):
        outbox.add(channel=Channel.SMS, to=PHONE, sender="x", subject="", body=str(index))
    assert [message.body for message in outbox.list()] == ["2", "3", "4"]
    assert outbox.list(channel=Channel.MAIL) == ()
    latest = outbox.latest(PHONE)
    assert latest is not None and latest.body == "4"


async def test_the_outbox_wakes_a_waiter_from_another_thread() -> None:
    outbox = Outbox(max_messages=10)
    after = outbox.last_sequence
    waiting = asyncio.create_task(outbox.wait_for(MAIL, after=after, timeout_s=30))
    await asyncio.sleep(0)
    await asyncio.to_thread(
        outbox.add, channel=Channel.MAIL, to=MAIL, sender="s", subject="件名", body="本文"
    )
    message = await waiting
    assert message.subject == "件名"
    with pytest.raises(TimeoutError):
        await outbox.wait_for(MAIL, after=message.sequence, timeout_s=0.05)


# The queue --------------------------------------------------------------------------


def test_the_queue_refuses_when_full() -> None:
    settings = _settings(queue_max_messages=2)
    outbox = Outbox(10)
    notifier = Notifier(
        settings, mail=MailSender(settings, port=25), sms=OutboxSms(settings, outbox)
    )
    message = SmsMessage(to=PHONE, body="認証コード")
    assert [notifier.submit(message) for _ in range(3)] == [True, True, False]
    assert notifier.queued == 2


async def test_queued_messages_are_sent_by_the_workers(mail_server: DevMailServer) -> None:
    settings = _settings()
    outcomes: list[DeliveryOutcome] = []
    all_done = asyncio.Event()

    def record(_message: Notification, outcome: DeliveryOutcome) -> None:
        outcomes.append(outcome)
        if len(outcomes) == 3:
            all_done.set()

    notifier = Notifier(
        settings,
        mail=MailSender(settings, port=mail_server.port),
        sms=OutboxSms(settings, mail_server.outbox),
        on_outcome=record,
    )
    code = "482913"
    subject, body = mails.verification_code_mail(code=code, valid_minutes=10)
    assert notifier.submit(MailMessage(to=MAIL, subject=subject, body=body, kind="verify"))
    assert notifier.submit(
        SmsMessage(to=PHONE, body=mails.sms_passcode_text(code=code, valid_minutes=10))
    )
    assert notifier.submit(VoiceMessage(to=PHONE, speech=mails.voice_passcode_text(code=code)))
    with capture_logs() as logs:
        await notifier.start()
        await asyncio.wait_for(all_done.wait(), timeout=10)
        await notifier.stop()

    assert all(outcome.sent for outcome in outcomes)
    outbox = mail_server.outbox
    assert {message.channel for message in outbox.list()} == {
        Channel.MAIL,
        Channel.SMS,
        Channel.VOICE,
    }
    mail = outbox.latest(MAIL, Channel.MAIL)
    assert mail is not None and code in mail.body
    voice = outbox.latest(PHONE, Channel.VOICE)
    assert voice is not None and "4、8、2、9、1、3" in voice.body
    # The passcode reached the outbox three times and no log line once.
    assert logs and all(code not in repr(entry) for entry in logs)
    assert all(MAIL not in repr(entry) for entry in logs)


# Twilio -----------------------------------------------------------------------------


class FakeTwilio:
    """Answers like Twilio's REST API and records what it was sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        # Statuses to answer with before accepting, e.g. [503, 429].
        self.failures: list[int] = []
        self.app = web.Application()
        base = "/2010-04-01/Accounts/{sid}/"
        self.app.router.add_post(base + "Messages.json", self.handle)
        self.app.router.add_post(base + "Calls.json", self.handle)

    @staticmethod
    def _error(status: int, code: int, message: str) -> web.Response:
        body = {"code": code, "message": message, "more_info": "https://x", "status": status}
        return web.json_response(body, status=status)

    async def handle(self, request: web.Request) -> web.Response:
        expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if request.match_info["sid"] != ACCOUNT_SID:
            return self._error(404, 20404, "The requested resource was not found")
        if request.headers.get("Authorization") != f"Basic {expected}":
            return self._error(401, 20003, "Authenticate")
        if request.content_type != "application/x-www-form-urlencoded":
            return self._error(400, 21201, "No form body")
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.requests.append((request.path.rsplit("/", 1)[-1], form))
        if self.failures:
            return self._error(self.failures.pop(0), 20500, "Internal Server Error")
        if not re.fullmatch(r"\+819[0-9]{9}", form.get("To", "")):
            return self._error(400, 21211, f"The 'To' number {form.get('To')} is not valid.")
        prefix = "SM" if request.path.endswith("Messages.json") else "CA"
        sid = f"{prefix}{len(self.requests):032x}"
        return web.json_response({"sid": sid, "status": "queued", "to": form["To"]}, status=201)


@pytest.fixture
async def twilio() -> AsyncIterator[tuple[FakeTwilio, NotifierSettings]]:
    fake = FakeTwilio()
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server()
    settings = _settings(
        sms_provider=SmsProviderKind.TWILIO,
        sms_api_base_url=str(server.make_url("")),
        sms_account_sid=ACCOUNT_SID,
        sms_auth_token_file="/run/secrets/unused-in-tests",
        sms_from_number=FROM_NUMBER,
    )
    try:
        yield fake, settings
    finally:
        await server.close()


async def test_twilio_sms_speaks_the_rest_api(twilio: tuple[FakeTwilio, NotifierSettings]) -> None:
    fake, settings = twilio
    sms = TwilioSms(settings, auth_token=AUTH_TOKEN)
    try:
        outcome = await sms.send_sms(PHONE, "【大学生協】認証コード：123456")
    finally:
        await sms.close()
    assert outcome.status is DeliveryStatus.SENT
    assert outcome.provider_id.startswith("SM")
    assert fake.requests == [
        (
            "Messages.json",
            {"To": PHONE, "From": FROM_NUMBER, "Body": "【大学生協】認証コード：123456"},
        )
    ]


async def test_twilio_call_reads_the_text_in_japanese(
    twilio: tuple[FakeTwilio, NotifierSettings],
) -> None:
    fake, settings = twilio
    sms = TwilioSms(settings, auth_token=AUTH_TOKEN)
    speech = "認証コードは 1、2、3 です <&>"
    try:
        outcome = await sms.call(PHONE, speech)
    finally:
        await sms.close()
    assert outcome.status is DeliveryStatus.SENT
    assert outcome.provider_id.startswith("CA")
    resource, form = fake.requests[0]
    assert resource == "Calls.json"
    assert (form["To"], form["From"]) == (PHONE, FROM_NUMBER)
    # The TwiML was built by the code under test, not received from outside.
    say = ET.fromstring(form["Twiml"]).find("Say")  # noqa: S314
    assert say is not None
    assert say.get("language") == "ja-JP"
    assert say.text == speech


async def test_twilio_5xx_and_429_are_retried(twilio: tuple[FakeTwilio, NotifierSettings]) -> None:
    fake, settings = twilio
    fake.failures = [503, 429]
    sleep = _RecordingSleep()
    sms = TwilioSms(settings, auth_token=AUTH_TOKEN, sleep=sleep)
    try:
        outcome = await sms.send_sms(PHONE, "本文")
    finally:
        await sms.close()
    assert outcome.status is DeliveryStatus.SENT
    assert outcome.attempts == 3
    assert sleep.waits == [0.01, 0.02]
    assert len(fake.requests) == 3


async def test_twilio_errors_are_outcomes_with_its_code(
    twilio: tuple[FakeTwilio, NotifierSettings],
) -> None:
    _, settings = twilio
    wrong_token = TwilioSms(settings, auth_token="not-the-token", sleep=_RecordingSleep())
    refused_number = TwilioSms(settings, auth_token=AUTH_TOKEN, sleep=_RecordingSleep())
    try:
        unauthorised = await wrong_token.send_sms(PHONE, "本文")
        invalid = await refused_number.send_sms("+12025550123", "本文")
    finally:
        await wrong_token.close()
        await refused_number.close()
    assert (unauthorised.status, unauthorised.error, unauthorised.attempts) == (
        DeliveryStatus.REJECTED,
        "twilio_20003",
        1,
    )
    assert (invalid.status, invalid.error, invalid.attempts) == (
        DeliveryStatus.REJECTED,
        "twilio_21211",
        1,
    )
    assert "is not valid" in invalid.detail


async def test_a_number_not_in_e164_is_refused_before_any_request(
    twilio: tuple[FakeTwilio, NotifierSettings],
) -> None:
    fake, settings = twilio
    sms = TwilioSms(settings, auth_token=AUTH_TOKEN)
    outcome = await sms.send_sms("090-1234-5678", "本文")
    await sms.close()
    assert outcome.error == "invalid_number"
    assert fake.requests == []


# Templates --------------------------------------------------------------------------


def test_the_enrolment_mail_totals_its_items() -> None:
    subject, body = _enrolment_mail()
    assert subject == "【重要】大学生協ご加入に伴う組合員番号のお知らせと「アプリ登録」のお願い"
    amounts = [int(amount.replace(",", "")) for amount in re.findall(r"：([0-9,]+)円", body)]
    *items, total = amounts
    assert items == [item.amount_yen for item in ENROLMENT_ITEMS]
    assert total == sum(items) == 190_950
    assert "合計：190,950円" in body
    assert "123456789012" in body
    assert "組合員であることを証明する" in body
    assert "https://coop.example/guide/password" in body


def test_the_mail_change_and_konbini_mails() -> None:
    subject, body = mails.mail_change_passcode_mail(
        passcode="012345", passcode_entry_url="https://coop.example/mail/passcode", valid_minutes=10
    )
    assert subject == "大学生協加入情報（メールアドレス）変更受付"
    assert "パスコード：012345" in body
    assert "https://coop.example/mail/passcode" in body

    subject, body = mails.konbini_charge_mail(
        customer_name_kana="セイキョウ タロウ",
        amount_yen=10_000,
        purse=Purse.CAFETERIA,
        store_name="ローソン",
        payment_info_url="https://coop.example/konbini/abc",
        pay_by="2026年4月10日 23:59",
    )
    assert subject == "【大学生協事業連合】コンビニチャージのお知らせ"
    assert "チャージ金額：10,000円" in body
    assert "学食マネー" in body


def test_outcomes_encode_as_messages() -> None:
    outcome = DeliveryOutcome(status=DeliveryStatus.SENT, channel=Channel.SMS, attempts=1)
    assert msgspec.json.decode(msgspec.json.encode(outcome), type=DeliveryOutcome) == outcome
    message = MailMessage(to=MAIL, subject="件名", body="パスコード：123456")
    assert "123456" not in repr(message)
    decoded = msgspec.json.decode(msgspec.json.encode(message), type=Notification)
    assert decoded == message
