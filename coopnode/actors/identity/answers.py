"""How the identity parts answer: a reply in an `Answer`, and the refusals they share.

A refusal names a reason and a sentence, never an HTTP status: the edge gives each reason
its status from one table (`coopnode.http.errors.REASON_STATUS`). Every refusal of the
room is built here, by `refused`, which takes only an `IdentityReason` or a wallet
`Reason`: the two enumerations the table has a row for, every member of each
(`tests/http/test_errors.py`).
"""

from __future__ import annotations

from coopnode.actors.identity.messages import (
    Answer,
    IdentityReason,
    IdentityReply,
    Refused,
)
from coopnode.actors.notify.messages import Notification
from coopnode.domain.errors import InvalidInput
from coopnode.domain.identity import PASSWORD_MESSAGES, PasswordProblem
from coopnode.domain.money import Reason as WalletReason
from coopnode.domain.passcodes import PasscodeReason

# The reason of each outcome of a code check but OK (`passcode_` and its value), and of
# each problem of a new password (`password_` and its value). Built from the domain's
# enumerations, so one added there without its reason here stops the actor at import.
_PASSCODE_REASONS: dict[PasscodeReason, IdentityReason] = {
    outcome: IdentityReason(f"passcode_{outcome.value}")
    for outcome in PasscodeReason
    if outcome is not PasscodeReason.OK
}
_PASSWORD_REASONS: dict[PasswordProblem, IdentityReason] = {
    problem: IdentityReason(f"password_{problem.value}") for problem in PasswordProblem
}
_PASSCODE_MESSAGES: dict[PasscodeReason, str] = {
    PasscodeReason.WRONG: "the code is not correct",
    PasscodeReason.EXPIRED: "the code has expired; send a new code",
    PasscodeReason.USED: "the code was used already; send a new code",
    PasscodeReason.LOCKED: "too many wrong codes; send a new code",
    PasscodeReason.COOLDOWN: "a code was sent a moment ago; wait before asking for another",
    PasscodeReason.RATE_LIMITED: "too many codes were sent this hour; try again later",
}
_TOTP_MESSAGE = "the code from the authenticator app is not correct"
_REASON_CODES = frozenset(reason.value for reason in IdentityReason)


def answer(reply: IdentityReply, notifications: list[Notification] | None = None) -> Answer:
    return Answer(reply=reply, notifications=notifications or [])


def known_reason(code: str) -> IdentityReason | None:
    """The room's reason of this code, if it has one: for codes that come from elsewhere
    (the domain's `InvalidInput`, authlib's errors)."""
    return IdentityReason(code) if code in _REASON_CODES else None


def refused(
    reason: IdentityReason | WalletReason,
    message: str,
    *,
    retry_after_s: int = 0,
    attempts_left: int | None = None,
) -> Refused:
    """The one way the room says no: a reason code and a sentence, with the seconds to
    wait or the tries left when they apply."""
    return Refused(
        reason=reason.value,
        message=message,
        retry_after_s=retry_after_s,
        attempts_left=attempts_left,
    )


def passcode_refusal(
    outcome: PasscodeReason, retry_after_s: int = 0, attempts_left: int = 0
) -> Refused:
    """A code that was sent (mail, SMS, voice) was not taken, or none may be sent now."""
    return refused(
        _PASSCODE_REASONS[outcome],
        _PASSCODE_MESSAGES[outcome],
        retry_after_s=retry_after_s,
        attempts_left=attempts_left if outcome is PasscodeReason.WRONG else None,
    )


def totp_refusal(outcome: PasscodeReason, retry_after_s: int = 0) -> Refused:
    """A code from the member's authenticator app was not taken. A code of a time step
    used before is `totp_used`: the app shows the next one, nothing is sent again."""
    used = outcome is PasscodeReason.USED
    reason = IdentityReason.TOTP_USED if used else _PASSCODE_REASONS[outcome]
    return refused(reason, _TOTP_MESSAGE, retry_after_s=retry_after_s)


def password_refusal(problem: PasswordProblem) -> Answer:
    """A new password that the rules refuse, with the rule it breaks."""
    return answer(refused(_PASSWORD_REASONS[problem], PASSWORD_MESSAGES[problem]))


def busy() -> Answer:
    return answer(
        refused(IdentityReason.BUSY, "the node is busy; try again in a moment", retry_after_s=1)
    )


def invalid(error: InvalidInput) -> Answer:
    """A value out of the domain's bounds. Its code is kept when it is one of the room's
    (every code the domain raises is: `tests/http/test_errors.py`), and read as
    `invalid_input` otherwise, with the same status and sentence."""
    reason = known_reason(error.reason) or IdentityReason.INVALID_INPUT
    return answer(refused(reason, error.message))


def unknown_step(step: str) -> Answer:
    return answer(refused(IdentityReason.INVALID_INPUT, f"unknown step {step!r}"))
