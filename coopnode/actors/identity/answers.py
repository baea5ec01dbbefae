"""How the identity parts answer: a reply in an `Answer`, and the refusals they share.

Each refusal names its HTTP status here, in the actor, as it always has; the front turns
a `Refused` into its one error shape.
"""

from __future__ import annotations

from coopnode.actors.identity.messages import Answer, ErrorCode, IdentityReply, Refused
from coopnode.actors.notify.messages import Notification
from coopnode.domain.errors import InvalidInput
from coopnode.domain.passcodes import PasscodeReason

_PASSCODE_STATUS: dict[PasscodeReason, int] = {
    PasscodeReason.WRONG: 400,
    PasscodeReason.EXPIRED: 410,
    PasscodeReason.USED: 409,
    PasscodeReason.LOCKED: 429,
    PasscodeReason.COOLDOWN: 429,
    PasscodeReason.RATE_LIMITED: 429,
}
_PASSCODE_MESSAGES: dict[PasscodeReason, str] = {
    PasscodeReason.WRONG: "the code is not correct",
    PasscodeReason.EXPIRED: "the code has expired; send a new code",
    PasscodeReason.USED: "the code was used already; send a new code",
    PasscodeReason.LOCKED: "too many wrong codes; send a new code",
    PasscodeReason.COOLDOWN: "a code was sent a moment ago; wait before asking for another",
    PasscodeReason.RATE_LIMITED: "too many codes were sent this hour; try again later",
}


def answer(reply: IdentityReply, notifications: list[Notification] | None = None) -> Answer:
    return Answer(reply=reply, notifications=notifications or [])


def refused(
    status: int,
    reason: str,
    message: str,
    *,
    retry_after_s: int = 0,
    attempts_left: int | None = None,
) -> Refused:
    return Refused(
        status=status,
        reason=reason,
        message=message,
        retry_after_s=retry_after_s,
        attempts_left=attempts_left,
    )


def passcode_refusal(
    reason: PasscodeReason, retry_after_s: int = 0, attempts_left: int = 0
) -> Refused:
    return refused(
        _PASSCODE_STATUS[reason],
        f"passcode_{reason.value}",
        _PASSCODE_MESSAGES[reason],
        retry_after_s=retry_after_s,
        attempts_left=attempts_left if reason is PasscodeReason.WRONG else None,
    )


def busy() -> Answer:
    return answer(
        refused(503, ErrorCode.BUSY, "the node is busy; try again in a moment", retry_after_s=1)
    )


def invalid(error: InvalidInput) -> Answer:
    return answer(refused(400, error.reason, error.message))


def unknown_step(step: str) -> Answer:
    return answer(refused(400, ErrorCode.INVALID_INPUT, f"unknown step {step!r}"))
