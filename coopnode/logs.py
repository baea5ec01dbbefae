"""Structured logging: JSON lines in production, readable lines on a terminal.

`redact` runs on every event, from structlog and from the standard library's loggers
(aiohttp, Ray), before it is rendered: secrets never reach a log line.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from coopnode.domain.charging import luhn_valid
from coopnode.settings import LogFormat, LogSettings

REDACTED = "[REDACTED]"

# Keys whose values are secret whatever they hold.
_SECRET_KEY = re.compile(
    r"(pass(word|code|wd)?|pin|cvc|cvv|security_code|card_number|pan|secret|token|"
    r"authorization|cookie|otp|totp|verifier|api_key|private_key|signing_key|session_key|"
    r"seed)",
    re.IGNORECASE,
)
# Keys that are secret only under these exact names (`code` is also a reason code field).
_SECRET_EXACT = frozenset({"code", "confirmation_code", "verification_code", "card", "key_seed"})
# Card numbers: 13 to 19 digits, possibly grouped by spaces or hyphens.
_CARD_NUMBER = re.compile(r"(?<![0-9])(?:[0-9][ -]?){12,18}[0-9](?![0-9])")
# Secrets passed in URLs or forms: token=…, code=…, password=…
_SECRET_PARAM = re.compile(
    r"((?:access_token|refresh_token|token|code|password|passcode|code_verifier|cvc)=)[^&\s\"']+",
    re.IGNORECASE,
)


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return f"[CARD …{digits[-4:]}]"
    return match.group(0)


def redact_text(text: str) -> str:
    """Mask card numbers and secret URL or form parameters inside free text."""
    text = _CARD_NUMBER.sub(_mask_card, text)
    return _SECRET_PARAM.sub(lambda match: match.group(1) + REDACTED, text)


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_KEY.search(key) or key.lower() in _SECRET_EXACT:
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(key, item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 10**12:
        return redact_text(str(value))
    return value


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor that removes secrets from every key of the event."""
    for key in list(event):
        if key == "event" and isinstance(event[key], str):
            event[key] = redact_text(event[key])
        elif key not in ("level", "timestamp", "logger"):
            event[key] = _redact_value(key, event[key])
    return event


def _renderer(settings: LogSettings) -> Any:
    use_json = settings.format is LogFormat.JSON or (
        settings.format is LogFormat.AUTO and not sys.stderr.isatty()
    )
    if use_json:
        return structlog.processors.JSONRenderer(ensure_ascii=False)
    return structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())


def configure_logging(settings: LogSettings) -> None:
    """Route structlog and the standard library's logging through one redacting pipeline."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _renderer(settings),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level.upper())
    logging.getLogger("aiohttp.access").setLevel(
        logging.INFO if settings.access_log else logging.WARNING
    )
    # The development SMTP server narrates every SMTP command at INFO; mails are counted
    # by the notifier's own lines instead.
    logging.getLogger("mail.log").setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
