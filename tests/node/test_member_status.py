"""Suspending and resuming an account reaches the tills whoever does it: the member on the
portal page or through the wallet's OAuth API, staff through the wallet API or at the
counter. Within a second the card of a suspended account is on the deny list pushed to
every connected till and refused online; a resumed account's card works again."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from yarl import URL

from coopnode.domain.money import Reason
from tests.identity.nodeclient import (
    PASSWORD,
    Member,
    authorize,
    call,
    code_in,
    enrol,
    last_sequence,
    redeem_code,
    session,
    set_password,
    staff_session,
    wait_message,
    wallet_session,
)
from tests.nodeproc import NodeProcess
from tests.tillclient import TIMEOUT_S, RawTill, add_till

pytestmark = pytest.mark.slow

# The portal keeps the wallet's access token in this cookie (http/portal/wallet.py).
TOKEN_COOKIE = "cn_wallet_token"  # The cookie's name.


async def member_with_card(
    client: aiohttp.ClientSession, node: NodeProcess, tag: str
) -> tuple[Member, str]:
    """A member enrolled at the counter (wallet open) whose IC card is bound."""
    member = Member(tag)
    await enrol(client, node, member)
    idm = "55" + member.member_no[-14:].rjust(14, "0")
    body = {"idm": idm, "member_no": member.member_no}
    status, card = await call(client, node, "POST", "/api/v1/cards", body, token=node.token)
    assert status == 201, card
    return member, idm


async def pay_token(client: aiohttp.ClientSession, node: NodeProcess, member: Member) -> str:
    """FLOWS §5: the wallet sign-in and consent; an access token with wallet:pay."""
    signed_in = await wallet_session(client, node, member)
    code, verifier = await authorize(
        client, node, signed_in["csrf_token"], "wallet:read wallet:pay"
    )
    status, token = await redeem_code(client, node, code, verifier)
    assert status == 200, token
    return str(token["access_token"])


async def mypage_login(client: aiohttp.ClientSession, node: NodeProcess, member: Member) -> str:
    """FLOWS §4 through the JSON API; returns the my-page session's CSRF token."""
    login = {"mail": member.mail, "password": PASSWORD}
    status, flow = await call(client, node, "POST", "/api/v1/mypage/login", login)
    assert status == 200, flow
    after = await last_sequence(client, node)
    send = {"flow_id": flow["flow_id"]}
    status, _ = await call(client, node, "POST", "/api/v1/mypage/login/send-code", send)
    assert status == 200
    mail = await wait_message(client, node, member.mail, after)
    verify = {"flow_id": flow["flow_id"], "code": code_in(mail["body"])}
    status, signed_in = await call(client, node, "POST", "/api/v1/mypage/login/verify", verify)
    assert status == 200 and signed_in["kind"] == "mypage", signed_in
    return str(signed_in["csrf_token"])


async def deny_list(client: aiohttp.ClientSession, node: NodeProcess) -> list[str]:
    status, deny = await call(client, node, "GET", "/api/v1/deny-list", token=node.token)
    assert status == 200, deny
    return list(deny["idms"])


async def assert_refused_at_the_till(
    client: aiohttp.ClientSession, node: NodeProcess, till: RawTill, idm: str
) -> None:
    await asyncio.wait_for(till.deny_changed.wait(), TIMEOUT_S)
    _, update = till.deny_updates[-1]
    assert idm in update.blocked
    refused = await till.decide(till.tap(idm, 100))
    assert not refused.approved and refused.reason is Reason.SUSPENDED
    assert idm in await deny_list(client, node)


async def assert_works_again(
    client: aiohttp.ClientSession, node: NodeProcess, till: RawTill, idm: str
) -> None:
    await asyncio.wait_for(till.deny_changed.wait(), TIMEOUT_S)
    _, update = till.deny_updates[-1]
    assert idm in update.unblocked
    assert (await till.decide(till.tap(idm, 100))).approved
    assert idm not in await deny_list(client, node)


async def test_suspended_through_the_wallet_api_until_the_counter_resumes(
    node: NodeProcess,
) -> None:
    async with session() as client:
        member, idm = await member_with_card(client, node, "suspapi")
        token = await pay_token(client, node, member)
        staff_csrf = await staff_session(client, node)
        till = await RawTill(node.url, *add_till(node, "shop-55")).open()
        try:
            assert (await till.decide(till.tap(idm, 100))).approved
            till.deny_changed.clear()
            status, changed = await call(
                client, node, "POST", "/api/v1/member/wallet/suspend", token=token
            )
            assert status == 200 and changed["status"] == "suspended", changed
            await assert_refused_at_the_till(client, node, till, idm)
            # The counter resumes it (the desk, through the identity actor).
            till.deny_changed.clear()
            resume = f"/api/v1/staff/members/{member.member_no}/resume"
            status, done = await call(client, node, "POST", resume, csrf=staff_csrf)
            assert status == 200, done
            await assert_works_again(client, node, till, idm)
        finally:
            await till.close()


async def test_suspended_on_the_portal_page_until_staff_resume(node: NodeProcess) -> None:
    async with session() as client:
        member, idm = await member_with_card(client, node, "suspportal")
        await set_password(client, node, member)
        csrf = await mypage_login(client, node, member)
        # The token the my-page's own registration would have put in this cookie.
        token = await pay_token(client, node, member)
        client.cookie_jar.update_cookies({TOKEN_COOKIE: token}, response_url=URL(node.url))
        till = await RawTill(node.url, *add_till(node, "shop-55")).open()
        try:
            assert (await till.decide(till.tap(idm, 100))).approved
            # The first post asks the member to confirm, and suspends nothing.
            async with client.post(
                node.url + "/mypage/emoney/suspend", data={"csrf": csrf}, allow_redirects=False
            ) as response:
                page = await response.text()
                assert response.status == 200 and 'id="suspend-confirmation"' in page, page[:400]
            assert (await till.decide(till.tap(idm, 100))).approved
            till.deny_changed.clear()
            async with client.post(
                node.url + "/mypage/emoney/suspend",
                data={"csrf": csrf, "confirm": "yes"},
                allow_redirects=False,
            ) as response:
                page = await response.text()
                assert response.status == 200 and 'id="suspend-done"' in page, page[:400]
            await assert_refused_at_the_till(client, node, till, idm)
            till.deny_changed.clear()
            resume = f"/api/v1/wallets/{member.member_no}/resume"
            status, changed = await call(client, node, "POST", resume, token=node.token)
            assert status == 200 and changed["status"] == "active", changed
            await assert_works_again(client, node, till, idm)
        finally:
            await till.close()
