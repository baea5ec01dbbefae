"""The front's one error tree and its one table from reason code to status."""

from __future__ import annotations

import msgspec
import pytest

from coopnode.actors.identity.messages import Refused
from coopnode.domain.errors import InvariantViolation, OperatingError
from coopnode.domain.money import Reason
from coopnode.http.errors import (
    REASON_STATUS,
    AccessRefused,
    ApiError,
    ErrorBody,
    FormRefused,
    IdentityRefused,
    PageError,
    error_response,
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


def test_the_identity_actor_keeps_the_status_it_chose() -> None:
    # The same code is 400 after an authenticator's code and 409 after a mailed one.
    for status in (400, 409):
        refused = Refused(status=status, reason="passcode_used", message="used")
        assert IdentityRefused(refused).status == status
    locked = Refused(
        status=429, reason="locked", message="wait", retry_after_s=30, attempts_left=None
    )
    response = error_response(IdentityRefused(locked))
    assert (response.status, response.headers["Retry-After"]) == (429, "30")
    assert response.body is not None and isinstance(response.body, bytes)
    body = msgspec.json.decode(response.body, type=ErrorBody)
    assert body == ErrorBody(reason="locked", message="wait", retry_after_s=30)


def test_a_page_states_its_own_status() -> None:
    error = PageError(503, "error.unavailable")
    assert (error.status, error.reason, error.key) == (503, "unavailable", "error.unavailable")


def test_every_503_says_when_to_try_again() -> None:
    response = error_response(ApiError(Reason.OVERLOADED, "busy"))
    assert (response.status, response.headers["Retry-After"]) == (503, "1")
    assert "Retry-After" not in error_response(ApiError(Reason.INVALID_INPUT, "no")).headers
