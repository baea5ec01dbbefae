"""Every staff route, for every role and for a machine's token with and without the scope:
admitted exactly when `ROLE_PERMISSIONS` (or the token's scopes) grant the route's
permission, refused with 403 `forbidden` otherwise, and the handler never runs then.

The routes are collected from the app as the node builds it (the API's table and the
console's pages): every route that declares `staff_may`. The identity engine is the
node's own (`IdentityService` over a real LMDB store, in this process through the actor's
encoding); each route's handler is replaced by a spy, so only the access is exercised.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from coopnode.actors.backup.client import BackupClient
from coopnode.actors.identity.actor import LocalIdentity
from coopnode.actors.identity.messages import (
    AuditList,
    AuditPage,
    BootstrapAdministrator,
    Bootstrapped,
    CreateStaff,
    StaffCreated,
    StaffDisable,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenRevoke,
)
from coopnode.actors.notify.messages import Notification
from coopnode.actors.wallet.client import WalletClient
from coopnode.domain.identity import SessionKind
from coopnode.domain.staff import ROLE_PERMISSIONS, Permission, Role
from coopnode.http.app import api_routes_key, make_app
from coopnode.http.console.room import console_routes_key
from coopnode.http.edge import CALLER, Route, permission_of, staff_token_key
from coopnode.http.errors import error_middleware
from coopnode.http.identity_front import IdentityFront, identity_key, notifier_key
from coopnode.http.tills.hub import TillHub
from coopnode.metrics import Metrics
from coopnode.payments.charging import Charging
from tests.identity.harness import Harness

STAFF_TOKEN = "s" * 32
PASSWORD = "Permission-Table-2026!"


class AcceptingNotifier:
    def submit(self, message: Notification) -> bool:
        return True


class NoRegistry:
    """The till hub's registry: never called, since the app is not started."""


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    built = Harness(tmp_path)
    try:
        yield built
    finally:
        built.close()


def staff_routes(identity: LocalIdentity, harness: Harness) -> tuple[Route, ...]:
    """Every route of the node's app that declares `staff_may`, API and console alike."""
    settings = harness.settings
    app = make_app(
        settings,
        WalletClient([], settings.wallet, Metrics()),
        Metrics(),
        STAFF_TOKEN,
        tills=TillHub(NoRegistry(), settings.till, Metrics()),
        identity=IdentityFront(client=identity, notifier=AcceptingNotifier()),
        charging=cast(Charging, object()),
        konbini_webhook_key="k" * 32,
        backups=BackupClient(None),
    )
    every = app[api_routes_key] + app[console_routes_key]
    return tuple(route for route in every if permission_of(route.access) is not None)


class Caller(msgspec.Struct, frozen=True):
    name: str
    headers: dict[str, str]
    cookies: dict[str, str]
    permissions: frozenset[Permission]


async def _staff_caller(harness: Harness, role: Role) -> Caller:
    staff_id = f"{role.value.replace('_', '')[:20]}1"
    created = await harness.call(
        CreateStaff(actor="test", staff_id=staff_id, name=role.value, password=PASSWORD, role=role)
    )
    assert isinstance(created, StaffCreated), created
    with harness.store.write() as tx:
        issued, session_id = harness.service.sessions.open(tx, SessionKind.STAFF, staff_id, "")
    return Caller(
        name=f"a {role.value}",
        headers={"X-CSRF-Token": issued.csrf_token},
        cookies={"cn_staff": session_id},
        permissions=ROLE_PERMISSIONS[role],
    )


async def _token_caller(harness: Harness, name: str, scopes: list[Permission]) -> Caller:
    made = await harness.call(TokenCreate(actor="staff:admin", name=name, scopes=scopes))
    assert isinstance(made, TokenCreated), made
    return Caller(
        name=f"token {name}",
        headers={"Authorization": f"Bearer {made.token}"},
        cookies={},
        permissions=frozenset(scopes),
    )


@pytest.fixture
async def spied(
    harness: Harness,
) -> AsyncIterator[tuple[TestClient[Any, Any], tuple[Route, ...], dict[str, list[object]]]]:
    """The staff routes, each with its access and a spy for its handler."""
    identity = LocalIdentity(harness.service)
    routes = staff_routes(identity, harness)
    app = web.Application(middlewares=[error_middleware])
    app[staff_token_key] = STAFF_TOKEN
    app[identity_key] = identity
    app[notifier_key] = AcceptingNotifier()
    calls: dict[str, list[object]] = {}
    for route in routes:
        seen = calls.setdefault(f"{route.method} {route.path}", [])

        async def spy(request: web.Request, seen: list[object] = seen) -> web.Response:
            seen.append(request[CALLER])
            return web.json_response({"ran": True})

        served = msgspec.structs.replace(route, handler=spy)
        app.router.add_route(route.method, route.path, served.serve)
    async with TestClient(TestServer(app)) as client:
        yield client, routes, calls


async def _call(client: TestClient[Any, Any], route: Route, caller: Caller) -> tuple[int, Any]:
    client.session.cookie_jar.clear()
    url = re.sub(r"{\w+}", "x1", route.path)
    async with client.request(
        route.method, url, headers=caller.headers, cookies=caller.cookies
    ) as response:
        return response.status, await response.json()


async def test_every_staff_route_admits_exactly_the_roles_and_scopes_that_grant_it(
    harness: Harness,
    spied: tuple[TestClient[Any, Any], tuple[Route, ...], dict[str, list[object]]],
) -> None:
    client, routes, calls = spied
    assert len(routes) > 40, "the route table was not read"
    # Every part of the console and every staff table of the API is in it.
    paths = {route.path for route in routes}
    assert {"/console/staff", "/console/tokens", "/console/audit"} <= paths
    assert {"/api/v1/wallets/{member_no}/suspend", "/api/v1/staff/tokens"} <= paths
    callers = [await _staff_caller(harness, role) for role in Role]
    for permission in {permission_of(route.access) for route in routes}:
        assert permission is not None
        without = [each for each in Permission if each is not permission]
        slug = permission.value.replace(".", "-").replace("_", "-")
        callers.append(await _token_caller(harness, f"with-{slug}", [permission]))
        callers.append(await _token_caller(harness, f"without-{slug}", without))
    for route in routes:
        permission = permission_of(route.access)
        assert permission is not None
        seen = calls[f"{route.method} {route.path}"]
        slug = permission.value.replace(".", "-").replace("_", "-")
        for caller in callers:
            if caller.name.startswith("token ") and not caller.name.endswith(f"-{slug}"):
                continue  # A token is tried on the routes of its own permission.
            before = len(seen)
            status, body = await _call(client, route, caller)
            where = f"{route.method} {route.path} by {caller.name}"
            if permission in caller.permissions:
                assert (status, body) == (200, {"ran": True}), where
                assert len(seen) == before + 1, where
            else:
                assert (status, body["reason"]) == (403, "forbidden"), (where, body)
                assert permission.value in body["message"], where
                assert len(seen) == before, f"{where}: the handler ran"
    # Each change a route audits is in the log under whoever made it, never a shared name.
    audit = await harness.call(AuditList(limit=500))
    assert isinstance(audit, AuditPage)
    suspended = {e.actor for e in audit.entries if e.action == "member.suspend"}
    assert suspended == {
        "staff:counterclerk1",
        "staff:administrator1",
        "token:with-members-change",
    }, suspended


async def test_without_credentials_a_staff_route_answers_401(
    spied: tuple[TestClient[Any, Any], tuple[Route, ...], dict[str, list[object]]],
) -> None:
    client, routes, calls = spied
    nobody = Caller(name="nobody", headers={}, cookies={}, permissions=frozenset())
    for route in routes:
        status, body = await _call(client, route, nobody)
        assert (status, body["reason"]) == (401, "unauthorized"), route.path
    assert all(seen == [] for seen in calls.values())


async def test_a_revoked_token_and_a_disabled_account_are_refused_at_once(
    harness: Harness,
    spied: tuple[TestClient[Any, Any], tuple[Route, ...], dict[str, list[object]]],
) -> None:
    client, routes, _ = spied
    route = next(r for r in routes if r.path == "/api/v1/staff/audit")
    token = await _token_caller(harness, "auditor", [Permission.AUDIT_READ])
    assert (await _call(client, route, token))[0] == 200
    listed = await harness.call(TokenRevoke(actor="staff:admin", token_id="nosuch"))
    assert getattr(listed, "reason", "") == "not_found"
    roster = harness.service.staff_access.list_tokens(TokenList())
    token_id = next(view.token_id for view in roster.tokens if view.name == "auditor")
    await harness.call(TokenRevoke(actor="staff:admin", token_id=token_id))
    status, body = await _call(client, route, token)
    assert (status, body["reason"]) == (401, "unauthorized")
    # An accountant may read the audit log until an administrator disables the account.
    accountant = await _staff_caller(harness, Role.ACCOUNTANT)
    assert (await _call(client, route, accountant))[0] == 200
    staff_id = f"{Role.ACCOUNTANT.value.replace('_', '')[:20]}1"
    await harness.call(StaffDisable(actor="staff:admin", staff_id=staff_id))
    status, body = await _call(client, route, accountant)
    assert (status, body["reason"]) == (401, "unauthorized")
    # The staff token's one use: the first administrator, then never again.
    first = BootstrapAdministrator(
        actor="staff-token", staff_id="root1", name="r", password=PASSWORD
    )
    assert isinstance(await harness.call(first), Bootstrapped)
    again = await harness.call(msgspec.structs.replace(first, staff_id="root2"))
    assert getattr(again, "reason", "") == "bootstrap_done"
