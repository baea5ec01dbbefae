"""What the notifier sends and what it answers: the notifications (a tagged union of
frozen Structs) and the outcome of a delivery.

    Notification            what crosses the boundary
    ├── MailMessage         to a mail address
    ├── SmsMessage          to a phone number
    └── VoiceMessage        a call that reads a text out

Bodies carry passcodes: a notification's repr shows its kind and a masked recipient only.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


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
