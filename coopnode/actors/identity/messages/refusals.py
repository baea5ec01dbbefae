"""How the identity actor says no: `Refused`, with a reason code and a sentence.

The actor names a reason, never an HTTP status: the status is the edge's, read from its
one table (`coopnode.http.errors.REASON_STATUS`, which has a row for every
`IdentityReason` and every wallet `Reason`; `tests/http/test_errors.py` holds it to that).
A refusal is built by `answers.refused`, which takes only these two kinds of reason.
"""

from __future__ import annotations

from enum import StrEnum

from coopnode.actors.identity.messages.base import IdentityMessage


class IdentityReason(StrEnum):
    """Every reason the identity actor refuses with, besides the wallet's `Reason`s it
    passes on when a member's wallet cannot be opened at enrolment."""

    # Sessions and sign-in.
    UNAUTHORIZED = "unauthorized"  # no live session of a kind the request takes
    SESSION_EXPIRED = "session_expired"
    CSRF = "csrf"
    INVALID_CREDENTIALS = "invalid_credentials"
    LOCKED = "locked"  # too many wrong tries of a password or a member lookup
    # Flows and the records they touch.
    NOT_FOUND = "not_found"
    FLOW_EXPIRED = "flow_expired"
    OUT_OF_ORDER = "out_of_order"
    NO_MATCH = "no_match"
    PHONE_MISMATCH = "phone_mismatch"
    EMONEY_IN_USE = "emoney_in_use"
    MAIL_IN_USE = "mail_in_use"
    PHONE_IN_USE = "phone_in_use"
    CONFLICT = "conflict"
    # A value out of bounds: the request's own, and the domain's `InvalidInput` codes.
    INVALID_INPUT = "invalid_input"
    INVALID_MAIL = "invalid_mail"
    INVALID_PHONE = "invalid_phone"
    INVALID_STAFF_ID = "invalid_staff_id"
    # A one-time code sent by mail, SMS or voice: `passcode_` and the `PasscodeReason`.
    PASSCODE_WRONG = "passcode_wrong"
    PASSCODE_EXPIRED = "passcode_expired"
    PASSCODE_USED = "passcode_used"
    PASSCODE_LOCKED = "passcode_locked"
    PASSCODE_COOLDOWN = "passcode_cooldown"
    PASSCODE_RATE_LIMITED = "passcode_rate_limited"
    # An authenticator app's code for a time step already used: wait for the app's next
    # code (400). Not `passcode_used` (409): a code that was sent is spent, and a new one
    # must be sent. The two once shared `passcode_used` and differed only by the status
    # the actor chose; a reason now has one status.
    TOTP_USED = "totp_used"
    # A new password that the rules refuse: `password_` and the `PasswordProblem`.
    PASSWORD_TOO_SHORT = "password_too_short"  # noqa: S105
    PASSWORD_TOO_LONG = "password_too_long"  # noqa: S105
    PASSWORD_NEEDS_LOWER = "password_needs_lower"  # noqa: S105
    PASSWORD_NEEDS_UPPER = "password_needs_upper"  # noqa: S105
    PASSWORD_NEEDS_DIGIT = "password_needs_digit"  # noqa: S105
    PASSWORD_NEEDS_SYMBOL = "password_needs_symbol"  # noqa: S105
    PASSWORD_COMMON = "password_common"  # noqa: S105
    PASSWORD_CONTAINS_ACCOUNT = "password_contains_account"  # noqa: S105
    PASSWORD_MISMATCH = "password_mismatch"  # noqa: S105
    # Not now: the actor's password threads are all busy, or the wallet did not answer.
    BUSY = "busy"
    WALLET = "wallet"
    # Family access.
    FAMILY_SELF = "family_self"
    FAMILY_TOO_MANY = "family_too_many"
    FAMILY_INVITATIONS_EXHAUSTED = "family_invitations_exhausted"
    # The member desk.
    DESK_DAILY_LIMIT = "desk_daily_limit"
    DOCUMENT_UNKNOWN = "document_unknown"
    EVENT_UNKNOWN = "event_unknown"
    EVENT_CLOSED = "event_closed"
    EVENT_FULL = "event_full"
    # OAuth: the codes of RFC 6749 §4.1.2.1 and RFC 6750 §3.1, as authlib raises them
    # on the authorization and resource side (`oauth._refused`).
    INVALID_REQUEST = "invalid_request"
    INVALID_CLIENT = "invalid_client"
    INVALID_GRANT = "invalid_grant"
    UNAUTHORIZED_CLIENT = "unauthorized_client"
    UNSUPPORTED_RESPONSE_TYPE = "unsupported_response_type"
    UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type"
    INVALID_SCOPE = "invalid_scope"
    ACCESS_DENIED = "access_denied"
    INSECURE_TRANSPORT = "insecure_transport"
    MISSING_AUTHORIZATION = "missing_authorization"
    UNSUPPORTED_TOKEN_TYPE = "unsupported_token_type"  # noqa: S105
    INVALID_TOKEN = "invalid_token"  # noqa: S105
    INSUFFICIENT_SCOPE = "insufficient_scope"
    # Staff (issue 13 §1): a role or an API token's scopes without the permission the
    # route needs, and the staff token's one use once an administrator exists.
    FORBIDDEN = "forbidden"
    BOOTSTRAP_DONE = "bootstrap_done"


class Refused(IdentityMessage, frozen=True, tag="refused"):
    """A refusal: `reason` is an `IdentityReason`, or the wallet's `Reason` at enrolment
    (text on the wire, since one field cannot decode two enumerations)."""

    reason: str
    message: str
    retry_after_s: int = 0
    attempts_left: int | None = None

    def __repr__(self) -> str:
        return f"Refused({self.reason!r}, {self.message!r})"
