"""Passcode and TOTP rules, with the clock passed in."""

from __future__ import annotations

import base64
import hmac
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec
import pytest

from coopnode.domain.errors import InvariantViolation
from coopnode.domain.passcodes import (
    PasscodePolicy,
    PasscodePurpose,
    PasscodeReason,
    PasscodeState,
    TotpState,
    issue,
    totp_code,
    totp_secret_new,
    totp_uri,
    totp_verify,
    verify,
)

KEY = b"k" * 32
POLICY = PasscodePolicy()
T0 = 1_700_000_000.0
MAIL = "taro@example.ac.jp"


def _issue(state: PasscodeState, now_s: float = T0, **kwargs: Any) -> tuple[PasscodeState, Any]:
    kwargs.setdefault("purpose", PasscodePurpose.MAIL_CHANGE)
    kwargs.setdefault("destination", MAIL)
    return issue(state, key=KEY, now_s=now_s, policy=kwargs.pop("policy", POLICY), **kwargs)


def _verify(state: PasscodeState, code: str, now_s: float, **kwargs: Any) -> tuple[Any, Any]:
    kwargs.setdefault("purpose", PasscodePurpose.MAIL_CHANGE)
    return verify(state, key=KEY, code=code, now_s=now_s, policy=POLICY, **kwargs)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def _fresh() -> PasscodeState:
    return PasscodeState(account="123456789012")


def test_a_code_has_six_digits_and_verifies_once() -> None:
    state, issued = _issue(_fresh())
    assert issued.reason is PasscodeReason.OK
    assert len(issued.code) == 6 and issued.code.isdigit()

    state, result = _verify(state, issued.code, T0 + 10)
    assert result.reason is PasscodeReason.OK
    state, again = _verify(state, issued.code, T0 + 11)
    assert again.reason is PasscodeReason.USED


def test_the_code_is_never_stored_in_clear() -> None:
    state, issued = _issue(_fresh())
    assert state.digest != issued.code.encode()
    assert len(state.digest) == 32  # An HMAC-SHA256 digest.
    assert issued.code.encode() not in msgspec.json.encode(state)
    assert issued.code.encode() not in msgspec.msgpack.encode(state)
    assert issued.code not in repr(issued)


def test_a_code_expires_after_its_ttl() -> None:
    state, issued = _issue(_fresh())
    ttl_s = POLICY.passcode_ttl_s
    _, late = _verify(state, issued.code, T0 + ttl_s)
    assert late.reason is PasscodeReason.EXPIRED
    _, in_time = _verify(state, issued.code, T0 + ttl_s - 1)
    assert in_time.reason is PasscodeReason.OK


def test_wrong_tries_count_down_then_the_code_is_dead() -> None:
    state, issued = _issue(_fresh())
    for left in range(POLICY.passcode_attempts_max - 1, -1, -1):
        state, result = _verify(state, _wrong(issued.code), T0 + 1)
        assert result.reason is PasscodeReason.WRONG
        assert result.attempts_left == left
    state, result = _verify(state, issued.code, T0 + 2)
    assert result.reason is PasscodeReason.LOCKED
    assert state.digest == b""


def test_malformed_input_counts_as_a_wrong_try() -> None:
    state, _ = _issue(_fresh())
    state, result = _verify(state, "12a456", T0 + 1)
    assert result.reason is PasscodeReason.WRONG
    assert state.wrong_attempts == 1


def test_a_code_only_verifies_for_its_purpose() -> None:
    state, issued = _issue(_fresh(), purpose=PasscodePurpose.MAIL_CHANGE)
    _, result = _verify(state, issued.code, T0 + 1, purpose=PasscodePurpose.SIGN_IN)
    assert result.reason is PasscodeReason.WRONG


def test_a_new_code_replaces_the_old_one() -> None:
    state, first = _issue(_fresh())
    state, second = _issue(state, now_s=T0 + POLICY.passcode_resend_cooldown_s)
    assert second.reason is PasscodeReason.OK
    if first.code != second.code:
        _, stale = _verify(state, first.code, T0 + 61)
        assert stale.reason is PasscodeReason.WRONG
    _, result = _verify(state, second.code, T0 + 62)
    assert result.reason is PasscodeReason.OK


def test_resend_waits_for_the_cooldown() -> None:
    state, _ = _issue(_fresh())
    cooldown_s = POLICY.passcode_resend_cooldown_s
    same, refused = _issue(state, now_s=T0 + cooldown_s - 10)
    assert refused.reason is PasscodeReason.COOLDOWN
    assert refused.retry_after_s == 10
    assert refused.code == ""
    assert same is state
    _, allowed = _issue(state, now_s=T0 + cooldown_s)
    assert allowed.reason is PasscodeReason.OK


def test_codes_per_hour_are_capped() -> None:
    state = _fresh()
    step_s = POLICY.passcode_resend_cooldown_s
    for index in range(POLICY.passcodes_per_hour_max):
        state, issued = _issue(state, now_s=T0 + index * step_s)
        assert issued.reason is PasscodeReason.OK
    now_s = T0 + POLICY.passcodes_per_hour_max * step_s
    _, capped = _issue(state, now_s=now_s)
    assert capped.reason is PasscodeReason.RATE_LIMITED
    assert capped.retry_after_s == 3600 - POLICY.passcodes_per_hour_max * step_s
    # An hour after the first send, one more is allowed.
    _, again = _issue(state, now_s=T0 + 3600)
    assert again.reason is PasscodeReason.OK


def test_no_code_issued_reads_as_expired() -> None:
    _, result = _verify(_fresh(), "123456", T0)
    assert result.reason is PasscodeReason.EXPIRED


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    # The rules call `hmac.compare_digest` through the module, so patching it there counts.
    monkeypatch.setattr(hmac, "compare_digest", spy)
    state, issued = _issue(_fresh())
    _verify(state, _wrong(issued.code), T0 + 1)
    _verify(state, issued.code, T0 + 1)
    assert len(calls) == 2
    assert all(a != issued.code.encode() and b != issued.code.encode() for a, b in calls)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(InvariantViolation):
        issue(
            _fresh(),
            key=b"short",
            purpose=PasscodePurpose.SIGN_IN,
            destination=MAIL,
            now_s=T0,
            policy=POLICY,
        )


# TOTP ---------------------------------------------------------------------------------

# RFC 6238 Appendix B, SHA1: the ASCII seed "12345678901234567890", 8-digit codes.
RFC6238_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC6238_SHA1 = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("time_s", "expected"), RFC6238_SHA1)
def test_rfc6238_appendix_b_vectors(time_s: int, expected: str) -> None:
    assert totp_code(RFC6238_SECRET, time_s, digits=8) == expected
    # Six digits are the last six of the same truncated value.
    assert totp_code(RFC6238_SECRET, time_s) == expected[-6:]


def test_totp_accepts_one_step_of_drift_and_refuses_reuse() -> None:
    state = TotpState(secret=totp_secret_new())
    now_s = T0
    previous = totp_code(state.secret, now_s - 30)
    state, result = totp_verify(state, code=previous, now_s=now_s, policy=POLICY)
    assert result.reason is PasscodeReason.OK

    state, replay = totp_verify(state, code=previous, now_s=now_s, policy=POLICY)
    assert replay.reason is PasscodeReason.USED

    current = totp_code(state.secret, now_s)
    state, result = totp_verify(state, code=current, now_s=now_s, policy=POLICY)
    assert result.reason is PasscodeReason.OK
    _, replay = totp_verify(state, code=current, now_s=now_s + 5, policy=POLICY)
    assert replay.reason is PasscodeReason.USED


def test_totp_refuses_codes_outside_the_window() -> None:
    state = TotpState(secret=totp_secret_new())
    too_old = totp_code(state.secret, T0 - 60)
    too_new = totp_code(state.secret, T0 + 60)
    window = {totp_code(state.secret, T0 + offset) for offset in (-30, 0, 30)}
    for code in (too_old, too_new):
        if code not in window:  # A one-in-a-million collision would make the check moot.
            _, result = totp_verify(state, code=code, now_s=T0, policy=POLICY)
            assert result.reason is PasscodeReason.WRONG


def test_totp_locks_after_too_many_wrong_codes() -> None:
    state = TotpState(secret=totp_secret_new())
    window = {totp_code(state.secret, T0 + offset) for offset in (-30, 0, 30)}
    wrong = next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in window)
    for _ in range(POLICY.passcode_attempts_max):
        state, result = totp_verify(state, code=wrong, now_s=T0, policy=POLICY)
        assert result.reason is PasscodeReason.WRONG
    right = totp_code(state.secret, T0)
    _, locked = totp_verify(state, code=right, now_s=T0 + 1, policy=POLICY)
    assert locked.reason is PasscodeReason.LOCKED
    later = T0 + POLICY.totp_lockout_s
    _, result = totp_verify(state, code=totp_code(state.secret, later), now_s=later, policy=POLICY)
    assert result.reason is PasscodeReason.OK


def test_totp_secret_and_enrolment_uri() -> None:
    secret = totp_secret_new()
    assert len(base64.b32decode(secret + "=" * (-len(secret) % 8))) == 20
    assert secret != totp_secret_new()

    uri = totp_uri(secret, "taro@example.ac.jp", "大学生協")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth"
    assert parts.netloc == "totp"
    assert unquote(parts.path) == "/大学生協:taro@example.ac.jp"
    query = parse_qs(parts.query)
    assert query == {
        "secret": [secret],
        "issuer": ["大学生協"],
        "algorithm": ["SHA1"],
        "digits": ["6"],
        "period": ["30"],
    }
    assert secret not in repr(TotpState(secret=secret))
