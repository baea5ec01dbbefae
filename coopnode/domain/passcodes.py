"""One-time passcodes sent by mail, SMS or voice, and TOTP codes from an authenticator app.

Pure rules without I/O: every function takes the current time (`now_s`, seconds since the
epoch) and the node's secret key explicitly, and returns a new state with an outcome, so
the identity actor decides where states live and tests control the clock.

Passcodes (FLOWS §1–§5):
- six digits drawn with `secrets`; only an HMAC-SHA256 digest keyed by the node secret is
  kept, bound to the account, the purpose and the destination, so a code sent for one
  flow cannot be used in another and a leaked state does not reveal the code;
- a code is valid `passcode_ttl_s`, used at most once, and dies after
  `passcode_attempts_max` wrong tries;
- an account has one live code: issuing a new one ("send a new code") replaces the old;
- sending is limited by a resend cool-down and an hourly cap per account.

TOTP (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits) accepts the previous, current and
next step, refuses a step at or before the last one accepted (a code cannot be replayed),
and locks for `totp_lockout_s` after `passcode_attempts_max` wrong codes in a row.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import struct
from enum import StrEnum
from typing import Annotated
from urllib.parse import quote, urlencode

import msgspec

from coopnode.domain.errors import InvariantViolation

PASSCODE_DIGITS = 6
TOTP_DIGITS = 6
TOTP_STEP_S = 30
# 160 bits, the key length RFC 4226 §4 recommends for HMAC-SHA1.
TOTP_SECRET_BYTES = 20
# The node secret must be at least as long as the HMAC-SHA256 output to add no weakness.
KEY_MIN_BYTES = 32
# Codes sent are remembered for the hourly cap over this window.
RATE_WINDOW_S = 3600


class PasscodePurpose(StrEnum):
    """The flow a code was sent for; a code only verifies for the purpose it was sent for."""

    MAIL_CHANGE = "mail_change"  # FLOWS §1, both to the current and to the new address.
    # §2. The linter takes the name for a hard-coded password; it names a flow.
    PASSWORD_SETUP = "password_setup"  # noqa: S105
    SIGN_IN = "sign_in"  # §3, the SMS or voice second factor.
    MYPAGE_LOGIN = "mypage_login"  # §4
    WALLET_LOGIN = "wallet_login"  # §5
    GUARDIAN_SETUP = "guardian_setup"  # a guardian confirms the invited address (§3 step 5)
    GUARDIAN_SIGN_IN = "guardian_sign_in"  # a guardian's mailed second factor


class PasscodeReason(StrEnum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"  # Also when no code is live: either way, ask for a new one.
    USED = "used"
    LOCKED = "locked"
    COOLDOWN = "cooldown"
    RATE_LIMITED = "rate_limited"


class PasscodePolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The bounds of passcodes; the node reads them from `[verification]` in its settings."""

    # Ten minutes, as the seed's mails say: long enough to switch to the mail app and back.
    passcode_ttl_s: Annotated[int, msgspec.Meta(ge=60, le=3600)] = 600
    # Five wrong tries give a guesser a 5-in-a-million chance per code.
    passcode_attempts_max: Annotated[int, msgspec.Meta(ge=1, le=10)] = 5
    # Codes an account may be sent per hour, so nobody can flood a mailbox or a phone.
    passcodes_per_hour_max: Annotated[int, msgspec.Meta(ge=1, le=50)] = 5
    # Seconds between two sends to one account, so a double click sends one code.
    passcode_resend_cooldown_s: Annotated[int, msgspec.Meta(ge=0, le=600)] = 60
    # TOTP steps accepted either side of now, for clocks that drift.
    totp_window_steps: Annotated[int, msgspec.Meta(ge=0, le=2)] = 1
    # How long TOTP refuses every code after too many wrong ones in a row.
    totp_lockout_s: Annotated[int, msgspec.Meta(ge=1, le=86_400)] = 300


class PasscodeState(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The passcode record of one account (a member number or a normalised address)."""

    account: str
    purpose: PasscodePurpose = PasscodePurpose.SIGN_IN
    # Where the live code was sent; verification binds the code to it.
    destination: str = ""
    # HMAC-SHA256 of the live code; empty once it is used, dead, or before the first send.
    digest: bytes = b""
    issued_at_s: float = 0.0
    expires_at_s: float = 0.0
    wrong_attempts: int = 0
    used: bool = False
    # When codes were sent within the last hour, oldest first; at most the hourly cap.
    sent_at_s: tuple[float, ...] = ()


class IssueResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What `issue` decided. `code` is the only copy of the code in clear: send it, drop it."""

    reason: PasscodeReason
    code: str = ""
    # When refused: seconds until a send would be allowed.
    retry_after_s: int = 0

    def __repr__(self) -> str:
        # The code must not reach a log line or a traceback through a repr.
        return f"IssueResult(reason={self.reason.value!r}, retry_after_s={self.retry_after_s})"


class VerifyResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    reason: PasscodeReason
    attempts_left: int = 0


def _check_key(key: bytes) -> None:
    if len(key) < KEY_MIN_BYTES:
        raise InvariantViolation(f"the passcode key must be at least {KEY_MIN_BYTES} bytes")


def _digest(key: bytes, state: PasscodeState, purpose: PasscodePurpose, code: str) -> bytes:
    # The unit separator cannot occur in any field, so distinct inputs never collide.
    message = "\x1f".join((purpose.value, state.account, state.destination, code))
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _recent_sends(state: PasscodeState, now_s: float) -> tuple[float, ...]:
    return tuple(sent for sent in state.sent_at_s if now_s - sent < RATE_WINDOW_S)


def issue(
    state: PasscodeState,
    *,
    key: bytes,
    purpose: PasscodePurpose,
    destination: str,
    now_s: float,
    policy: PasscodePolicy,
) -> tuple[PasscodeState, IssueResult]:
    """Mint a code for `destination`, replacing any live code, unless sending is throttled."""
    _check_key(key)
    recent = _recent_sends(state, now_s)
    if recent:
        since_last_s = now_s - recent[-1]
        if since_last_s < policy.passcode_resend_cooldown_s:
            wait_s = math.ceil(policy.passcode_resend_cooldown_s - since_last_s)
            return state, IssueResult(reason=PasscodeReason.COOLDOWN, retry_after_s=wait_s)
    if len(recent) >= policy.passcodes_per_hour_max:
        # The oldest send that still counts must leave the window before another is allowed.
        oldest = recent[-policy.passcodes_per_hour_max]
        wait_s = max(1, math.ceil(oldest + RATE_WINDOW_S - now_s))
        return state, IssueResult(reason=PasscodeReason.RATE_LIMITED, retry_after_s=wait_s)
    code = f"{secrets.randbelow(10**PASSCODE_DIGITS):0{PASSCODE_DIGITS}d}"
    fresh = PasscodeState(
        account=state.account,
        purpose=purpose,
        destination=destination,
        issued_at_s=now_s,
        expires_at_s=now_s + policy.passcode_ttl_s,
        sent_at_s=(*recent, now_s)[-policy.passcodes_per_hour_max :],
    )
    fresh = msgspec.structs.replace(fresh, digest=_digest(key, fresh, purpose, code))
    return fresh, IssueResult(reason=PasscodeReason.OK, code=code)


def _well_formed(code: str, digits: int) -> bool:
    return len(code) == digits and code.isascii() and code.isdigit()


def verify(
    state: PasscodeState,
    *,
    key: bytes,
    purpose: PasscodePurpose,
    code: str,
    now_s: float,
    policy: PasscodePolicy,
) -> tuple[PasscodeState, VerifyResult]:
    """Check a code typed by the member; a success uses the code up."""
    _check_key(key)
    # The digest is computed on every path so that the time taken says nothing about
    # which check refused the code.
    candidate = _digest(key, state, purpose, code.strip())
    if state.used:
        return state, VerifyResult(reason=PasscodeReason.USED)
    if state.wrong_attempts >= policy.passcode_attempts_max:
        return state, VerifyResult(reason=PasscodeReason.LOCKED)
    if not state.digest or now_s >= state.expires_at_s or now_s < state.issued_at_s:
        return state, VerifyResult(reason=PasscodeReason.EXPIRED)
    matches = hmac.compare_digest(candidate, state.digest)
    if matches and _well_formed(code.strip(), PASSCODE_DIGITS):
        return (
            msgspec.structs.replace(state, digest=b"", used=True),
            VerifyResult(reason=PasscodeReason.OK),
        )
    wrong_attempts = state.wrong_attempts + 1
    attempts_left = policy.passcode_attempts_max - wrong_attempts
    # A code that has had its last try is dead: its digest is dropped with it.
    digest = state.digest if attempts_left > 0 else b""
    return (
        msgspec.structs.replace(state, wrong_attempts=wrong_attempts, digest=digest),
        VerifyResult(reason=PasscodeReason.WRONG, attempts_left=attempts_left),
    )


# TOTP -------------------------------------------------------------------------------


class TotpState(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """An enrolled authenticator. The secret must be stored encrypted by its owner."""

    secret: str  # Base32, as shown in the enrolment QR code.
    # The last time step accepted; codes of this step or earlier are refused.
    last_step: int = -1
    wrong_in_row: int = 0
    locked_until_s: float = 0.0

    def __repr__(self) -> str:
        return f"TotpState(secret=[REDACTED], last_step={self.last_step})"


class TotpResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    reason: PasscodeReason
    retry_after_s: int = 0


def totp_secret_new() -> str:
    """A new base32 secret (160 bits, no padding) for an authenticator app."""
    return base64.b32encode(secrets.token_bytes(TOTP_SECRET_BYTES)).decode().rstrip("=")


def _secret_bytes(secret: str) -> bytes:
    cleaned = secret.replace(" ", "").upper()
    try:
        return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except ValueError as error:
        raise InvariantViolation("a stored TOTP secret is not valid base32") from error


def totp_uri(secret: str, account: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads from the enrolment QR code."""
    label = f"{quote(issuer, safe='')}:{quote(account, safe='@')}"
    query = urlencode(
        {
            "secret": secret,
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": TOTP_DIGITS,
            "period": TOTP_STEP_S,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


def hotp(key: bytes, counter: int, digits: int = TOTP_DIGITS) -> str:
    """RFC 4226 HOTP with HMAC-SHA1 and dynamic truncation."""
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    binary = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFF_FFFF
    return f"{binary % 10**digits:0{digits}d}"


def totp_step(now_s: float) -> int:
    return math.floor(now_s) // TOTP_STEP_S


def totp_code(secret: str, now_s: float, digits: int = TOTP_DIGITS) -> str:
    """The code an authenticator shows at `now_s` (RFC 6238, T0 = 0)."""
    return hotp(_secret_bytes(secret), totp_step(now_s), digits)


def _matching_step(secret: str, code: str, now_s: float, window: int) -> int | None:
    key = _secret_bytes(secret)
    current = totp_step(now_s)
    found: int | None = None
    # Every step of the window is compared, in constant time, whatever matched first.
    for step in range(current - window, current + window + 1):
        if hmac.compare_digest(hotp(key, step).encode(), code.encode()) and found is None:
            found = step
    return found


def totp_verify(
    state: TotpState, *, code: str, now_s: float, policy: PasscodePolicy
) -> tuple[TotpState, TotpResult]:
    """Check a code from the member's authenticator app."""
    if now_s < state.locked_until_s:
        wait_s = max(1, math.ceil(state.locked_until_s - now_s))
        return state, TotpResult(reason=PasscodeReason.LOCKED, retry_after_s=wait_s)
    code = code.strip()
    step = None
    if _well_formed(code, TOTP_DIGITS):
        step = _matching_step(state.secret, code, now_s, policy.totp_window_steps)
    if step is not None and step <= state.last_step:
        return state, TotpResult(reason=PasscodeReason.USED)
    if step is not None:
        accepted = msgspec.structs.replace(state, last_step=step, wrong_in_row=0)
        return accepted, TotpResult(reason=PasscodeReason.OK)
    wrong_in_row = state.wrong_in_row + 1
    if wrong_in_row >= policy.passcode_attempts_max:
        locked = msgspec.structs.replace(
            state, wrong_in_row=0, locked_until_s=now_s + policy.totp_lockout_s
        )
        return locked, TotpResult(reason=PasscodeReason.WRONG, retry_after_s=policy.totp_lockout_s)
    return msgspec.structs.replace(state, wrong_in_row=wrong_in_row), TotpResult(
        reason=PasscodeReason.WRONG
    )
