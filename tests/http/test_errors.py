"""The front's one error tree and its one table from reason code to status, which has
a row for every reason the identity actor refuses with."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import msgspec
import pytest
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import errors as rfc6749_errors
from authlib.oauth2.rfc6750 import errors as rfc6750_errors

import coopnode.actors.identity
import coopnode.domain
from coopnode.actors.identity.answers import invalid, passcode_refusal, refused, totp_refusal
from coopnode.actors.identity.messages import IdentityReason, Refused
from coopnode.domain.errors import InvalidInput, InvariantViolation, OperatingError
from coopnode.domain.identity import PasswordProblem
from coopnode.domain.money import Reason
from coopnode.domain.passcodes import PasscodeReason
from coopnode.http.errors import (
    REASON_STATUS,
    AccessRefused,
    ApiError,
    ErrorBody,
    FormRefused,
    IdentityRefused,
    PageError,
    error_response,
    one_status_each,
    status_of,
)


def test_every_wallet_reason_has_its_status() -> None:
    assert set(Reason) <= set(REASON_STATUS)
    assert all(400 <= status <= 599 for status in REASON_STATUS.values())


def test_the_tree() -> None:
    for kind in (AccessRefused, FormRefused, IdentityRefused, PageError):
        assert issubclass(kind, ApiError)
    assert issubclass(ApiError, OperatingError)


def test_a_raise_names_a_reason_and_the_table_gives_its_status() -> None:
    assert ApiError(Reason.SUSPENDED, "suspended").status == 403
    assert AccessRefused("unauthorized", "sign in first").status == 401
    assert FormRefused("too_large", "the form is too large").status == 413
    with pytest.raises(InvariantViolation, match="no status"):
        ApiError("no_such_reason", "a reason the table does not know")


# The statuses the identity actor chose for each reason at its call sites before the
# status moved to the edge (the wallet's reasons it passed on at enrolment apart): what
# clients saw then, and see now.
STATUSES_THE_ACTOR_CHOSE: dict[int, set[str]] = {
    400: {
        "invalid_input",
        "invalid_mail",
        "invalid_phone",
        "invalid_staff_id",
        "phone_mismatch",
        "passcode_wrong",
        *(f"password_{problem.value}" for problem in PasswordProblem),
    },
    401: {"unauthorized", "session_expired", "invalid_credentials"},
    403: {"csrf"},
    404: {"not_found", "no_match", "document_unknown", "event_unknown"},
    409: {
        "out_of_order",
        "conflict",
        "mail_in_use",
        "phone_in_use",
        "emoney_in_use",
        "passcode_used",
        "family_self",
        "family_too_many",
        "event_closed",
        "event_full",
    },
    410: {"flow_expired", "passcode_expired"},
    429: {
        "locked",
        "passcode_locked",
        "passcode_cooldown",
        "passcode_rate_limited",
        "family_invitations_exhausted",
        "desk_daily_limit",
    },
    503: {"busy", "wallet"},
}


def test_every_reason_the_identity_actor_can_return_has_its_status() -> None:
    assert set(IdentityReason) | set(Reason) <= set(REASON_STATUS)


def test_the_statuses_clients_see_are_the_ones_the_actor_chose() -> None:
    chosen = {
        reason: status for status, group in STATUSES_THE_ACTOR_CHOSE.items() for reason in group
    }
    assert {reason: REASON_STATUS[reason] for reason in chosen} == chosen
    # Once one code at two statuses: a mailed code spent (409), an authenticator's code
    # of a time step used before (400). Now two reasons, each with the status it had.
    assert status_of(passcode_refusal(PasscodeReason.USED).reason) == 409
    assert status_of(totp_refusal(PasscodeReason.USED).reason) == 400
    assert status_of(totp_refusal(PasscodeReason.LOCKED).reason) == 429
    assert status_of(totp_refusal(PasscodeReason.WRONG).reason) == 400


def test_a_wallet_decline_at_enrolment_is_answered_as_the_wallet_routes_answer_it() -> None:
    # The rules' refusals of the deposits stay 422 and "not now" 503, as they were; the
    # outcomes the enrolment once answered 422 by mistake now say what they are.
    for reason in (Reason.UNKNOWN_COOP, Reason.UNKNOWN_MEAL_PLAN, Reason.PURSE_NOT_ALLOWED):
        assert status_of(reason) == 422
    for reason in (Reason.OVERLOADED, Reason.UNAVAILABLE, Reason.OUTCOME_UNKNOWN):
        assert status_of(reason) == 503
    assert IdentityRefused(refused(Reason.STORAGE_FULL, "full")).status == 507


def test_every_oauth_error_authlib_raises_is_a_reason_with_authlibs_status() -> None:
    kinds: list[Any] = [
        kind
        for module in (rfc6749_errors, rfc6750_errors)
        for kind in vars(module).values()
        if isinstance(kind, type) and issubclass(kind, OAuth2Error)
    ]
    # The server's errors (the client's are `…Exception`s), each with its code.
    statuses = {
        str(kind.error): int(kind.status_code)
        for kind in kinds
        if kind.__name__.endswith("Error") and kind.error
    }
    assert len(statuses) >= 12  # the modules were read
    assert set(statuses) - set(IdentityReason) == set()
    assert {code: REASON_STATUS[code] for code in statuses} == statuses


def _invalid_input_codes() -> set[str]:
    """Every code the domain raises `InvalidInput` with, read from its source."""
    codes: set[str] = set()
    for path in Path(coopnode.domain.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and ast.unparse(node.func) == "InvalidInput"):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant):
                codes.add(str(first.value))
            elif isinstance(first, ast.Attribute) and ast.unparse(first.value) == "Reason":
                codes.add(Reason[first.attr].value)
            else:
                raise AssertionError(f"{path}: InvalidInput with a code not written out")
    return codes


def test_every_invalid_input_code_of_the_domain_is_an_identity_reason() -> None:
    codes = _invalid_input_codes()
    assert {"invalid_input", "invalid_mail"} <= codes  # the source was read
    assert codes - set(IdentityReason) == set()
    answered = invalid(InvalidInput("invalid_phone", "no"))
    assert isinstance(answered.reply, Refused) and answered.reply.reason == "invalid_phone"


def test_the_identity_room_refuses_only_through_refused() -> None:
    room = Path(coopnode.actors.identity.__file__).parent
    built_elsewhere = [
        f"{path.relative_to(room)}:{node.lineno}"
        for path in sorted(room.rglob("*.py"))
        if path.name != "answers.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "Refused"
    ]
    assert built_elsewhere == []


def test_an_identity_refusal_has_its_reasons_status() -> None:
    locked = refused(IdentityReason.LOCKED, "wait", retry_after_s=30)
    response = error_response(IdentityRefused(locked))
    assert (response.status, response.headers["Retry-After"]) == (429, "30")
    assert response.body is not None and isinstance(response.body, bytes)
    body = msgspec.json.decode(response.body, type=ErrorBody)
    assert body == ErrorBody(reason="locked", message="wait", retry_after_s=30)


def test_a_reason_with_two_statuses_is_refused_when_the_table_is_built() -> None:
    assert one_status_each([("unauthorized", 401)], [("unauthorized", 401)]) == {
        "unauthorized": 401
    }
    with pytest.raises(InvariantViolation, match="two statuses"):
        one_status_each([("passcode_used", 409)], [("passcode_used", 400)])


def test_a_page_states_its_own_status() -> None:
    error = PageError(503, "error.unavailable")
    assert (error.status, error.reason, error.key) == (503, "unavailable", "error.unavailable")


def test_every_503_says_when_to_try_again() -> None:
    response = error_response(ApiError(Reason.OVERLOADED, "busy"))
    assert (response.status, response.headers["Retry-After"]) == (503, "1")
    assert "Retry-After" not in error_response(ApiError(Reason.INVALID_INPUT, "no")).headers
