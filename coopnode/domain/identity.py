"""The rules of member and staff identity, without I/O: addresses, passwords, lock-out,
sessions, and the order of the steps of each flow (FLOWS §1–§5).

Every function takes the current time explicitly (`now_s`), so the identity service
decides where records live and tests control the clock.

Records kept on disk by the identity store are defined here too, as frozen Structs that
refuse unknown fields. None of them holds a secret in clear: passwords are argon2id
strings, session and flow ids and OAuth codes and tokens are SHA-256 digests, passcodes
are HMAC digests (see `passcodes`), and TOTP secrets are sealed with the node's key.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Annotated

import msgspec

from coopnode.domain.errors import InvalidInput
from coopnode.domain.passcodes import PasscodeState
from coopnode.domain.staff import Permission, Role

# RFC 5321 limits a path to 256 octets, so an address to 254 characters.
MAIL_MAX_CHARS = 254
_MAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
_COUNTRY_CODE = re.compile(r"^\+?[1-9][0-9]{0,2}$")
_STAFF_ID = re.compile(r"^[a-z][a-z0-9._-]{2,31}$")

MemberNo = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{12}$")]
StaffId = Annotated[str, msgspec.Meta(pattern=_STAFF_ID.pattern)]


def digest(secret: str) -> bytes:
    """The SHA-256 of a random id (session, flow, OAuth code or token): what is stored."""
    return hashlib.sha256(secret.encode()).digest()


# Addresses and numbers ---------------------------------------------------------------


def normalise_mail(text: str) -> str:
    """The address as an account key: trimmed, NFKC (full-width to half-width), lower case."""
    mail = unicodedata.normalize("NFKC", text).strip().lower()
    if len(mail) > MAIL_MAX_CHARS or not _MAIL.match(mail):
        raise InvalidInput("invalid_mail", "this is not a valid mail address")
    return mail


def normalise_phone(number: str, country_code: str = "+81") -> str:
    """A phone number in E.164 form. A national number loses its leading 0 (090 → +8190)."""
    cleaned = re.sub(r"[\s()\-ー－]", "", unicodedata.normalize("NFKC", number))
    if not cleaned.startswith("+"):
        code = unicodedata.normalize("NFKC", country_code).strip()
        if not _COUNTRY_CODE.match(code):
            raise InvalidInput("invalid_phone", "the country code is not valid")
        cleaned = "+" + code.lstrip("+") + cleaned.removeprefix("0")
    if not _E164.match(cleaned):
        raise InvalidInput("invalid_phone", "this is not a valid phone number")
    return cleaned


def is_phone_like(text: str) -> bool:
    """Whether a sign-in identifier is a phone number rather than a mail address."""
    return "@" not in text and any(char.isdigit() for char in text)


def mask_mail(mail: str) -> str:
    """Show enough of an address for its owner to recognise it (FLOWS §1 step 4)."""
    local, _, domain = mail.rpartition("@")
    shown = local[:2] if len(local) > 3 else local[:1]
    return f"{shown}{'*' * max(3, len(local) - len(shown))}@{domain}"


def mask_phone(phone: str) -> str:
    return f"{phone[:3]}{'*' * (len(phone) - 5)}{phone[-2:]}" if len(phone) > 6 else "***"


def check_staff_id(staff_id: str) -> str:
    if not _STAFF_ID.match(staff_id):
        raise InvalidInput("invalid_staff_id", "a staff id is 3–32 lower-case letters or digits")
    return staff_id


# Passwords ------------------------------------------------------------------------------


class PasswordProblem(StrEnum):
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    NEEDS_LOWER = "needs_lower"
    NEEDS_UPPER = "needs_upper"
    NEEDS_DIGIT = "needs_digit"
    NEEDS_SYMBOL = "needs_symbol"
    COMMON = "common"
    CONTAINS_ACCOUNT = "contains_account"
    MISMATCH = "mismatch"


PASSWORD_MESSAGES: dict[PasswordProblem, str] = {
    PasswordProblem.TOO_SHORT: "the password is too short",
    PasswordProblem.TOO_LONG: "the password is too long",
    PasswordProblem.NEEDS_LOWER: "the password needs a lower-case letter",
    PasswordProblem.NEEDS_UPPER: "the password needs an upper-case letter",
    PasswordProblem.NEEDS_DIGIT: "the password needs a digit",
    PasswordProblem.NEEDS_SYMBOL: "the password needs a symbol",
    PasswordProblem.COMMON: "this password is too common; choose another",
    PasswordProblem.CONTAINS_ACCOUNT: "the password must not contain your address or number",
    PasswordProblem.MISMATCH: "the password and its confirmation differ",
}


@cache
def common_passwords() -> frozenset[str]:
    """The shipped blocklist, lower case."""
    text = resources.files("coopnode.domain").joinpath("data/common_passwords.txt").read_text()
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def check_password(
    password: str, *, min_chars: int, max_chars: int, context: tuple[str, ...] = ()
) -> PasswordProblem | None:
    """The co-op's rule (lower, upper, digit, symbol, 8 or more), a maximum of at least 64,
    the blocklist, and no account identifier inside. None when the password is acceptable.
    """
    # NFKC first, so that full-width characters typed on a Japanese keyboard count as the
    # letters and digits they look like.
    text = unicodedata.normalize("NFKC", password)
    if len(text) < min_chars:
        return PasswordProblem.TOO_SHORT
    if len(text) > max_chars:
        return PasswordProblem.TOO_LONG
    checks = (
        (str.islower, PasswordProblem.NEEDS_LOWER),
        (str.isupper, PasswordProblem.NEEDS_UPPER),
        (str.isdigit, PasswordProblem.NEEDS_DIGIT),
        (lambda char: not char.isalnum() and not char.isspace(), PasswordProblem.NEEDS_SYMBOL),
    )
    for test, problem in checks:
        if not any(test(char) for char in text):
            return problem
    lowered = text.lower()
    if lowered in common_passwords():
        return PasswordProblem.COMMON
    for word in context:
        if len(word) >= 4 and word.lower() in lowered:
            return PasswordProblem.CONTAINS_ACCOUNT
    return None


def password_bytes(password: str) -> bytes:
    """What is hashed: the NFKC form, so the same password typed either width matches."""
    return unicodedata.normalize("NFKC", password).encode()


# Lock-out -------------------------------------------------------------------------------


class Throttle(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Failures in a row for one identifier (an address, a member number, a staff id)."""

    failures: int = 0
    locked_until_s: float = 0.0


def throttle_wait_s(throttle: Throttle, now_s: float) -> int:
    """Seconds until the identifier may try again; 0 when it may now."""
    return max(0, int(throttle.locked_until_s - now_s + 0.999)) if throttle.locked_until_s else 0


def throttle_failed(
    throttle: Throttle, now_s: float, *, failures_max: int, lockout_s: int
) -> Throttle:
    failures = throttle.failures + 1
    if failures >= failures_max:
        return Throttle(failures=0, locked_until_s=now_s + lockout_s)
    return Throttle(failures=failures, locked_until_s=0.0)


# Sends ----------------------------------------------------------------------------------


class SendWindow(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """When mails of one kind went to one subject (a member, an address), oldest first."""

    sent_at_s: tuple[float, ...] = ()


def admit_send(
    window: SendWindow, now_s: float, *, window_s: int, sends_max: int
) -> tuple[SendWindow, int]:
    """Count one more send within the last `window_s`, or say how long until one may go.

    Returns the window with this send counted and 0, or the window unchanged and the
    seconds (at least 1) until the oldest send that counts leaves it.
    """
    recent = tuple(sent for sent in window.sent_at_s if now_s - sent < window_s)
    if len(recent) >= sends_max:
        oldest = recent[-sends_max]
        return window, max(1, math.ceil(oldest + window_s - now_s))
    return SendWindow(sent_at_s=(*recent, now_s)[-sends_max:]), 0


# OAuth scopes ---------------------------------------------------------------------------


class WalletScope(StrEnum):
    """What a my-page token may do with the member's e-money (FLOWS §5)."""

    READ = "wallet:read"  # The balances and the history.
    PAY = "wallet:pay"  # Move money between purses, and suspend the account.


# What each scope lets an app do, in words, is the catalogues' (`coopnode.catalogues.labels`).


# Sessions -------------------------------------------------------------------------------


class SessionKind(StrEnum):
    PORTAL = "portal"  # マイポータル, after a password and a second factor (FLOWS §3).
    MYPAGE = "mypage"  # 組合員マイページ, after a password and a mailed code (FLOWS §4).
    WALLET = "wallet"  # 電子マネー, after a one-time code (FLOWS §5).
    STAFF = "staff"  # Co-op staff, after a password and TOTP.
    # A guardian who is not a member, after a password and a mailed code: sees only the
    # family view of the members who granted them access (FLOWS §3 step 5).
    GUARDIAN = "guardian"


class SessionRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    kind: SessionKind
    # A member number, or a staff id for staff sessions.
    subject: str
    created_at_s: float
    last_seen_s: float


def session_alive(
    session: SessionRecord, now_s: float, *, idle_timeout_s: int, absolute_timeout_s: int
) -> bool:
    if now_s < session.created_at_s:
        return False  # A clock that went back is not trusted to extend a session.
    return (
        now_s - session.last_seen_s < idle_timeout_s
        and now_s - session.created_at_s < absolute_timeout_s
    )


# Records --------------------------------------------------------------------------------


class Account(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A member's identity, keyed by member number and found by address or phone."""

    member_no: str
    coop: str
    name: str
    kana: str
    birth_date: str  # YYYY-MM-DD
    mail: str  # normalised; the sign-in id
    phone: str  # E.164
    enrolled_at_s: float
    # A digest of the enrolment request, so a repeated import is recognised as the same.
    enrolment_fingerprint: bytes
    password_hash: bytes = b""  # argon2id, libsodium's string form
    password_set_at_s: float = 0.0
    totp_sealed: bytes = b""  # a sealed TotpState once enrolled
    totp_pending_sealed: bytes = b""  # a sealed secret shown in a QR, not yet confirmed
    wallet_registered_at_s: float = 0.0

    def __repr__(self) -> str:
        return f"Account(member_no={self.member_no!r})"


class StaffAccount(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    staff_id: str
    name: str
    password_hash: bytes
    totp_sealed: bytes
    created_at_s: float
    # What the staff member may do (`domain.staff`). Accounts written before roles were
    # recorded read as counter clerks: the least a staff account ever did.
    role: Role = Role.COUNTER_CLERK
    # When an administrator disabled the account (0: active): it signs in no more and
    # its sessions ended then.
    disabled_at_s: float = 0.0

    def __repr__(self) -> str:
        return f"StaffAccount(staff_id={self.staff_id!r})"


class ApiTokenRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A machine's API token (a POS integration, the load harness), stored under the
    digest of the token, which is shown once and kept nowhere in clear."""

    token_id: str  # a short random id that names the token in pages and links
    name: str  # unique among all tokens ever made: the audit log's `token:<name>`
    scopes: list[Permission]
    created_at_s: float
    created_by: str  # the audit log's name of the administrator who made it
    last_used_s: float = 0.0
    revoked_at_s: float = 0.0  # 0: live

    def __repr__(self) -> str:
        return f"ApiTokenRecord(token_id={self.token_id!r}, name={self.name!r})"


class GuardianAccount(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A guardian who is not a member: known by the (normalised) address a member granted
    family access to, which is also the sign-in id and the subject of their sessions.
    """

    mail: str
    password_hash: bytes  # argon2id, libsodium's string form
    password_set_at_s: float
    created_at_s: float

    def __repr__(self) -> str:
        return "GuardianAccount(…)"


class FlowKind(StrEnum):
    MAIL_CHANGE = "mail_change"  # FLOWS §1
    PASSWORD = "password"  # noqa: S105  # FLOWS §2 and the forgotten password.
    # A guardian's invitation: the address confirmed with a code, then a password (as §2).
    GUARDIAN_SETUP = "guardian_setup"
    GUARDIAN_SIGN_IN = "guardian_sign_in"  # a guardian's password, then a mailed code
    PORTAL_SIGN_IN = "portal_sign_in"  # FLOWS §3
    MYPAGE_LOGIN = "mypage_login"  # FLOWS §4
    WALLET_LOGIN = "wallet_login"  # FLOWS §5
    STAFF_SIGN_IN = "staff_sign_in"


class FlowState(StrEnum):
    # Mail change (§1).
    MEMBER_FOUND = "member_found"
    CURRENT_CODE_SENT = "current_code_sent"
    CURRENT_VERIFIED = "current_verified"
    NEW_CODE_SENT = "new_code_sent"
    # Password (§2), wallet login (§5).
    CODE_SENT = "code_sent"
    VERIFIED = "verified"
    # Sign-ins (§3, §4, staff): the password was right, a second factor is needed.
    SECOND_FACTOR = "second_factor"
    DONE = "done"
    CANCELLED = "cancelled"


class FlowRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    kind: FlowKind
    state: FlowState
    # The member number or staff id; empty when the identifier typed matches nobody, so
    # that the flow answers exactly as it would for an account and leads nowhere.
    subject: str
    # The key of the passcode record and of lock-out: the account, or what was typed.
    passcode_key: str
    created_at_s: float
    expires_at_s: float
    # Where the live code went (§1 new address; §3 the phone; §5 mail or phone).
    destination: str = ""
    channel: str = ""
    new_mail: str = ""
    # A double submit of the finishing step answers with the first result: the session
    # id sealed with the node's key, until `result_until_s`, and the code that finished.
    result_sealed: bytes = b""
    result_until_s: float = 0.0
    finished_by: bytes = b""
    last_sent_at_s: float = 0.0


def flow_expired(flow: FlowRecord, now_s: float) -> bool:
    return now_s >= flow.expires_at_s or now_s < flow.created_at_s


class PendingLogin(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A my-page login waiting for its code, so a double-submitted login is one login."""

    flow_sealed: bytes
    until_s: float


class AuditEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    seq: int
    at_s: float
    # "staff:<id>" for a signed-in staff member, "token:<name>" for a machine's API token,
    # "staff-token" for the bootstrap of the first administrator.
    actor: str
    action: str
    target: str
    detail: str = ""


class OAuthCodeRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    client_id: str
    member_no: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str
    expires_at_s: float
    # Set when the code is redeemed: the digest of the access token it gave. The record is
    # kept as long as that token lives, so that a second redemption revokes it.
    redeemed_token_key: bytes = b""


class OAuthTokenRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    grant_id: str
    client_id: str
    member_no: str
    scope: str
    issued_at_s: float
    expires_at_s: float
    revoked: bool = False


PasscodeRecord = PasscodeState


# The order of the steps ------------------------------------------------------------------

# For each flow and step, the states the step may be taken from. Anything else is out of
# order and refused without changing the flow: a code cannot be checked before it was
# sent, a password cannot be set before the address was verified, and so on.
_LIVE = frozenset(
    state for state in FlowState if state not in (FlowState.DONE, FlowState.CANCELLED)
)
STEP_FROM: dict[tuple[FlowKind, str], frozenset[FlowState]] = {
    (FlowKind.MAIL_CHANGE, "send_current"): frozenset(
        {FlowState.MEMBER_FOUND, FlowState.CURRENT_CODE_SENT}
    ),
    (FlowKind.MAIL_CHANGE, "verify_current"): frozenset({FlowState.CURRENT_CODE_SENT}),
    (FlowKind.MAIL_CHANGE, "new_address"): frozenset(
        {FlowState.CURRENT_VERIFIED, FlowState.NEW_CODE_SENT}
    ),
    (FlowKind.MAIL_CHANGE, "resend"): frozenset({FlowState.NEW_CODE_SENT}),
    (FlowKind.MAIL_CHANGE, "verify_new"): frozenset({FlowState.NEW_CODE_SENT}),
    (FlowKind.PASSWORD, "resend"): frozenset({FlowState.CODE_SENT}),
    (FlowKind.PASSWORD, "verify"): frozenset({FlowState.CODE_SENT}),
    (FlowKind.PASSWORD, "set"): frozenset({FlowState.VERIFIED}),
    (FlowKind.GUARDIAN_SETUP, "resend"): frozenset({FlowState.CODE_SENT}),
    (FlowKind.GUARDIAN_SETUP, "verify"): frozenset({FlowState.CODE_SENT}),
    (FlowKind.GUARDIAN_SETUP, "set"): frozenset({FlowState.VERIFIED}),
    (FlowKind.GUARDIAN_SIGN_IN, "send_code"): frozenset(
        {FlowState.SECOND_FACTOR, FlowState.CODE_SENT}
    ),
    (FlowKind.GUARDIAN_SIGN_IN, "verify"): frozenset({FlowState.CODE_SENT}),
    (FlowKind.PORTAL_SIGN_IN, "send_code"): frozenset(
        {FlowState.SECOND_FACTOR, FlowState.CODE_SENT}
    ),
    (FlowKind.PORTAL_SIGN_IN, "verify"): frozenset({FlowState.CODE_SENT}),
    (FlowKind.PORTAL_SIGN_IN, "verify_totp"): frozenset(
        {FlowState.SECOND_FACTOR, FlowState.CODE_SENT}
    ),
    (FlowKind.MYPAGE_LOGIN, "send_code"): frozenset({FlowState.SECOND_FACTOR, FlowState.CODE_SENT}),
    (FlowKind.MYPAGE_LOGIN, "verify"): frozenset({FlowState.CODE_SENT}),
    (FlowKind.WALLET_LOGIN, "resend"): frozenset({FlowState.CODE_SENT}),
    (FlowKind.WALLET_LOGIN, "verify"): frozenset({FlowState.CODE_SENT}),
    (FlowKind.STAFF_SIGN_IN, "verify_totp"): frozenset({FlowState.SECOND_FACTOR}),
}
for _kind in FlowKind:
    STEP_FROM[(_kind, "cancel")] = _LIVE


def step_allowed(kind: FlowKind, step: str, state: FlowState) -> bool:
    return state in STEP_FROM.get((kind, step), frozenset())
