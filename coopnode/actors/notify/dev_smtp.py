"""The development mail server: aiosmtpd on loopback, keeping every mail it receives in
the in-memory `Outbox`, so that development mail really crosses SMTP."""

from __future__ import annotations

import asyncio
import email
import email.policy
import email.utils
from typing import Any

from aiosmtpd.controller import Controller

from coopnode.actors.notify.messages import Channel
from coopnode.actors.notify.outbox import Outbox
from coopnode.logs import get_logger
from coopnode.settings import NotifierSettings

_log = get_logger("coopnode.notifier")


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
