"""No card number, CVC, password, passcode or token reaches a log line."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from coopnode.domain.charging import luhn_valid
from coopnode.logs import configure_logging, get_logger, redact_text
from coopnode.settings import LogFormat, LogSettings

CARD = "4111111111111111"
SECRETS = [
    CARD, "4111 1111 1111 1111", "123", "Secr3t!pass", "482913", "tok_abcdef123456", "9f" * 32,
]  # fmt: skip


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    structlog.reset_defaults()
    configure_logging(LogSettings(format=LogFormat.JSON, level="debug"))
    return stream


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_secret_fields_are_redacted_from_structlog_events(captured: io.StringIO) -> None:
    get_logger("test").info(
        "charge by card",
        card_number=CARD,
        cvc="123",
        password="Secr3t!pass",
        passcode="482913",
        access_token="tok_abcdef123456",
        signing_key_hex="9f" * 32,
        session_key=b"\x01" * 32,
        nested={"security_code": "123", "pan": CARD},
        member_no="202600000017",
        amount_yen=5000,
    )
    output = captured.getvalue()
    for secret in SECRETS:
        assert secret not in output
    [line] = lines(captured)
    assert line["member_no"] == "202600000017"  # Not a secret: kept for tracing.
    assert line["amount_yen"] == 5000
    assert line["card_number"] == "[REDACTED]"
    assert line["signing_key_hex"] == line["session_key"] == "[REDACTED]"  # A till's keys.


def test_card_numbers_inside_free_text_and_stdlib_logs_are_masked(captured: io.StringIO) -> None:
    logging.getLogger("aiohttp.server").error("bad request body: {'number': '4111 1111 1111 1111'}")
    get_logger("test").warning(f"acquirer said card {CARD} declined", detail=f"pan={CARD}")
    output = captured.getvalue()
    assert CARD not in output and "4111 1111 1111 1111" not in output
    assert "…1111" in output  # The last four digits are kept to help support staff.


def test_secrets_in_urls_are_redacted(captured: io.StringIO) -> None:
    get_logger("test").info("GET /oauth/callback?code=482913&state=x&access_token=tok_abcdef123456")
    output = captured.getvalue()
    assert "482913" not in output and "tok_abcdef123456" not in output
    assert "state=x" in output


def test_numbers_that_are_not_card_numbers_stay() -> None:
    assert redact_text("member 202600000017 paid 1250 yen") == "member 202600000017 paid 1250 yen"
    assert luhn_valid(CARD) and not luhn_valid("4111111111111112")
    assert redact_text("idm 4111111111111112") == "idm 4111111111111112"
