"""The identity engine's staff-access rules, with the node's own service over a real LMDB
store and a clock the test moves: the last administrator stays one, a token is kept only
as its digest and named once, its last use is written at most once a minute, and a
disabled account signs in no more and loses its sessions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coopnode.actors.identity.messages import (
    AuthorizeStaff,
    CreateStaff,
    Done,
    Refused,
    SignIn,
    StaffAuthorized,
    StaffCreated,
    StaffDisable,
    StaffSetRole,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenRoster,
)
from coopnode.domain.identity import SessionKind
from coopnode.domain.staff import Permission, Role
from tests.identity.harness import Harness

PASSWORD = "Staff-Access-2026!"


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    built = Harness(tmp_path)
    try:
        yield built
    finally:
        built.close()


async def _staff(harness: Harness, staff_id: str, role: Role) -> None:
    made = await harness.call(
        CreateStaff(actor="test", staff_id=staff_id, name=staff_id, password=PASSWORD, role=role)
    )
    assert isinstance(made, StaffCreated), made


async def test_the_last_active_administrator_can_be_neither_demoted_nor_disabled(
    harness: Harness,
) -> None:
    await _staff(harness, "admin1", Role.ADMINISTRATOR)
    demote = StaffSetRole(actor="staff:admin1", staff_id="admin1", role=Role.ACCOUNTANT)
    refused = await harness.call(demote)
    assert isinstance(refused, Refused) and refused.reason == "conflict"
    refused = await harness.call(StaffDisable(actor="staff:admin1", staff_id="admin1"))
    assert isinstance(refused, Refused) and refused.reason == "conflict"
    # With a second administrator, either may go.
    await _staff(harness, "admin2", Role.ADMINISTRATOR)
    assert isinstance(await harness.call(demote), Done)
    unknown = await harness.call(StaffDisable(actor="staff:admin2", staff_id="nobody1"))
    assert isinstance(unknown, Refused) and unknown.reason == "not_found"


async def test_a_token_is_kept_as_its_digest_named_once_and_touched_once_a_minute(
    harness: Harness, tmp_path: Path
) -> None:
    made = await harness.call(
        TokenCreate(actor="staff:admin1", name="pos-1", scopes=[Permission.MEMBERS_READ])
    )
    assert isinstance(made, TokenCreated) and made.token.startswith("cn_")
    for path in (tmp_path / "identity").rglob("*.mdb"):
        assert made.token.encode() not in path.read_bytes(), f"the token is in clear in {path}"
    again = await harness.call(
        TokenCreate(actor="staff:admin1", name="pos-1", scopes=[Permission.TILLS_READ])
    )
    assert isinstance(again, Refused) and again.reason == "conflict"
    for name, scopes in (("Not A Name", [Permission.TILLS_READ]), ("pos-2", [])):
        bad = await harness.call(TokenCreate(actor="staff:admin1", name=name, scopes=scopes))
        assert isinstance(bad, Refused) and bad.reason == "invalid_input", name

    def last_used() -> float:
        roster = harness.service.staff_access.list_tokens(TokenList())
        assert isinstance(roster, TokenRoster)
        return next(view.last_used_s for view in roster.tokens if view.name == "pos-1")

    check = AuthorizeStaff(authorization=f"Bearer {made.token}", permission=Permission.MEMBERS_READ)
    assert isinstance(await harness.call(check), StaffAuthorized)
    first = last_used()
    assert first == harness.clock()
    interval_s = harness.settings.identity.api_token_touch_interval_s
    harness.clock.advance(interval_s - 1)
    assert isinstance(await harness.call(check), StaffAuthorized)
    assert last_used() == first
    harness.clock.advance(1)
    assert isinstance(await harness.call(check), StaffAuthorized)
    assert last_used() == harness.clock()


async def test_a_disabled_account_signs_in_no_more_and_its_sessions_end(
    harness: Harness,
) -> None:
    await _staff(harness, "admin1", Role.ADMINISTRATOR)
    await _staff(harness, "clerk1", Role.COUNTER_CLERK)
    with harness.store.write() as tx:
        _, session_id = harness.service.sessions.open(tx, SessionKind.STAFF, "clerk1", "")
    check = AuthorizeStaff(session_id=session_id, permission=Permission.MEMBERS_READ)
    authorized = await harness.call(check)
    assert isinstance(authorized, StaffAuthorized) and authorized.actor == "staff:clerk1"
    assert authorized.role is Role.COUNTER_CLERK
    assert isinstance(
        await harness.call(StaffDisable(actor="staff:admin1", staff_id="clerk1")), Done
    )
    refused = await harness.call(check)
    assert isinstance(refused, Refused) and refused.reason == "unauthorized"
    sign_in = SignIn(kind=SessionKind.STAFF, identifier="clerk1", password=PASSWORD)
    refused = await harness.call(sign_in)
    assert isinstance(refused, Refused) and refused.reason == "invalid_credentials"


async def test_a_new_role_holds_from_the_next_request_of_an_open_session(
    harness: Harness,
) -> None:
    await _staff(harness, "admin1", Role.ADMINISTRATOR)
    await _staff(harness, "clerk1", Role.COUNTER_CLERK)
    with harness.store.write() as tx:
        _, session_id = harness.service.sessions.open(tx, SessionKind.STAFF, "clerk1", "")
    check = AuthorizeStaff(session_id=session_id, permission=Permission.BOOKS_READ)
    refused = await harness.call(check)
    assert isinstance(refused, Refused) and refused.reason == "forbidden"
    promote = StaffSetRole(actor="staff:admin1", staff_id="clerk1", role=Role.ACCOUNTANT)
    assert isinstance(await harness.call(promote), Done)
    authorized = await harness.call(check)
    assert isinstance(authorized, StaffAuthorized) and authorized.role is Role.ACCOUNTANT
