"""Mail over SMTP (aiosmtplib) to the co-op's relay, or to the development mail server."""

from __future__ import annotations

import asyncio
import email
import email.policy
import email.utils
from email.message import EmailMessage

import aiosmtplib

from coopnode.actors.notify.delivery import Attempt, Sleep, read_secret, rejected, with_retries
from coopnode.actors.notify.messages import Channel, DeliveryOutcome, DeliveryStatus, MailMessage
from coopnode.settings import NotifierSettings


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
        return cls(settings, port=port, password=read_secret(settings.smtp_password_file))

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
            return rejected(Channel.MAIL, "too_large")
        try:
            mail = self.build(message)
        except (ValueError, TypeError):
            # A line break in a header or an address the mail library refuses.
            return rejected(Channel.MAIL, "invalid_message")
        return await with_retries(
            lambda: self._attempt(mail, message.to),
            channel=Channel.MAIL,
            settings=settings,
            sleep=self._sleep,
        )

    async def _attempt(self, mail: EmailMessage, recipient: str) -> Attempt:
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
            return Attempt(status=DeliveryStatus.REJECTED, error="invalid_address")
        except (aiosmtplib.SMTPException, OSError) as error:
            return Attempt(status=DeliveryStatus.FAILED, error=type(error).__name__)
        return Attempt(status=DeliveryStatus.SENT)


def _smtp_try(code: int) -> Attempt:
    # SMTP 4xx replies are passing (mailbox busy, greylisting); 5xx replies are final.
    status = DeliveryStatus.FAILED if 400 <= code < 500 else DeliveryStatus.REJECTED
    return Attempt(status=status, error=f"smtp_{code}")
