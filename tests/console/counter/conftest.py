"""The counter's tests: one node for them all, whose demo co-op withdraws under the
issue's example rule (the meal plan pro rata of the term, money refunded, points
forfeited), and helpers to enrol members and sign a clerk in."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from coopnode.domain import passcodes
from tests.identity.nodeclient import Member, call, enrol
from tests.nodeproc import NodeProcess, remove_tree, short_tmpdir

WITHDRAWAL_RULE = (
    '{purses = {meal = "pro_rata", cafeteria = "refund", textbook = "refund",'
    ' base = "refund", points = "forfeit"}, term_start = "04-01"}'
)


@pytest.fixture(scope="session")
def counter_node() -> Iterator[NodeProcess]:
    data_dir = short_tmpdir("cctr")
    env = {"COOPNODE_COOPS__DEMO__WITHDRAWAL": WITHDRAWAL_RULE}
    process = NodeProcess(data_dir, env=env).start()
    try:
        yield process
    finally:
        process.stop()
        remove_tree(data_dir)


class Clerk:
    """A staff account signed in on `client`: its id, CSRF token and session cookie."""

    def __init__(self, staff_id: str, csrf: str, cookie: str) -> None:
        self.staff_id = staff_id
        self.csrf = csrf
        self.cookie = cookie


async def sign_in_clerk(client: aiohttp.ClientSession, node: NodeProcess) -> Clerk:
    """Create a staff account with the staff token and sign it in (password, then TOTP)."""
    staff_id = f"clerk{secrets.randbelow(10**6)}"
    password = "Counter-Clerk-2026!"
    body = {"staff_id": staff_id, "name": "窓口 花子", "password": password}
    body["role"] = "administrator"
    status, created = await call(
        client, node, "POST", "/api/v1/staff/accounts", body, token=node.token
    )
    assert status == 201, created
    sign_in = {"staff_id": staff_id, "password": password}
    status, flow = await call(client, node, "POST", "/api/v1/staff/sign-in", sign_in)
    assert status == 200, flow
    code = passcodes.totp_code(created["secret"], time.time())
    verify = {"flow_id": flow["flow_id"], "code": code}
    status, signed_in = await call(client, node, "POST", "/api/v1/staff/sign-in/verify", verify)
    assert status == 200 and signed_in["kind"] == "staff", signed_in
    cookie = next(c.value for c in client.cookie_jar if c.key == "cn_staff")
    return Clerk(staff_id, signed_in["csrf_token"], cookie)


async def enrolled(client: aiohttp.ClientSession, node: NodeProcess, tag: str) -> Member:
    member = Member(tag)
    await enrol(client, node, member)
    return member


async def bind_card(client: aiohttp.ClientSession, node: NodeProcess, member: Member) -> str:
    idm = secrets.token_hex(8)
    body = {"idm": idm, "member_no": member.member_no}
    status, card = await call(client, node, "POST", "/api/v1/cards", body, token=node.token)
    assert status == 201, card
    return idm


async def shop_tap(
    client: aiohttp.ClientSession, node: NodeProcess, member: Member, amount_yen: int
) -> dict[str, Any]:
    key = f"till-test:{secrets.token_hex(6)}"
    body = {"key": key, "amount_yen": amount_yen, "till_kind": "shop", "store": "shop-main"}
    path = f"/api/v1/wallets/{member.member_no}/payments"
    status, booked = await call(client, node, "POST", path, body, token=node.token)
    assert status == 200, booked
    return dict(booked)
