"""Helpers for driving the identity API of a real node, reading mail from its outbox."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp

from coopnode.domain import passcodes
from tests.nodeproc import NodeProcess

_CODE = re.compile(r"(?:パスコード|確認コード|認証コード)：([0-9]{6})")
_SPOKEN = re.compile(r"お知らせします。([0-9、]+)。")
# Member numbers of this module's members: far from the demo's and the wallet tests'.
_numbers = itertools.count(1)
PASSWORD = "Sakura-Kaede-2026!"
REDIRECT_URI = "http://127.0.0.1:8080/mypage/wallet/callback"
# Every secret a test saw, so the last test can look for them in the data directory.
SEEN_SECRETS: set[str] = set()


def remember(secret: str) -> str:
    SEEN_SECRETS.add(secret)
    return secret


def code_in(text: str) -> str:
    found = _CODE.search(text)
    if found is None:
        spoken = _SPOKEN.search(text)
        if spoken is None:
            raise AssertionError(f"no code in {text!r}")
        return remember(spoken.group(1).replace("、", ""))
    return remember(found.group(1))


class Member:
    """A member this test enrols: unique number, address and phone."""

    def __init__(self, tag: str) -> None:
        serial = next(_numbers) + int(time.time()) % 10_000 * 100
        self.member_no = f"2026{77_000_000 + serial:08d}"
        self.mail = f"{tag}{serial}@student.demo-u.ac.jp"
        self.phone_national = f"090{serial:08d}"
        self.phone = f"+8190{serial:08d}"
        self.birth_date = "2006-05-17"

    def enrolment(self) -> dict[str, Any]:
        return {
            "member_no": self.member_no,
            "name": "試験 太郎",
            "kana": "シケン タロウ",
            "birth_date": self.birth_date,
            "mail": self.mail,
            "phone": self.phone_national,
            "coop": "demo",
            "share_units": 10,
            "insurance": [{"label": "学生総合共済", "amount_yen": 14400}],
            "emoney_yen": 40000,
            "meal_plan": "meal-1000",
            "meal_yen": 96000,
        }


def session() -> aiohttp.ClientSession:
    # The node is reached by IP address, whose cookies aiohttp keeps only when told to.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def call(
    client: aiohttp.ClientSession,
    node: NodeProcess,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    csrf: str | None = None,
) -> tuple[int, Any]:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    async with client.request(
        method, node.url + path, json=body, headers=headers, allow_redirects=False
    ) as response:
        raw = await response.read()
        if response.content_type == "application/json" and raw:
            return response.status, await response.json()
        return response.status, raw.decode(errors="replace")


async def last_sequence(client: aiohttp.ClientSession, node: NodeProcess) -> int:
    status, page = await call(client, node, "GET", "/dev/outbox.json?to=none@invalid.example")
    assert status == 200, page
    return int(page["last_sequence"])


async def wait_message(
    client: aiohttp.ClientSession,
    node: NodeProcess,
    to: str,
    after: int,
    *,
    channel: str | None = None,
    timeout_s: float = 90.0,
) -> dict[str, Any]:
    """The first message to `to` newer than `after`, read from the node's outbox."""
    deadline = time.monotonic() + timeout_s
    query = f"/dev/outbox.json?to={to.replace('+', '%2B')}&after={after}"
    if channel:
        query += f"&channel={channel}"
    while time.monotonic() < deadline:
        status, page = await call(client, node, "GET", query)
        assert status == 200, page
        if page["messages"]:
            message: dict[str, Any] = page["messages"][0]
            return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"no message to {to} within {timeout_s} s")


async def enrol(client: aiohttp.ClientSession, node: NodeProcess, member: Member) -> Any:
    """Enrol the member and wait for the enrolment mail, so later reads see only later mail."""
    after = await last_sequence(client, node)
    status, body = await call(
        client, node, "POST", "/api/v1/members", member.enrolment(), token=node.token
    )
    assert status == 201, body
    await wait_message(client, node, member.mail, after)
    return body


async def set_password(
    client: aiohttp.ClientSession, node: NodeProcess, member: Member, password: str = PASSWORD
) -> None:
    after = await last_sequence(client, node)
    status, flow = await call(client, node, "POST", "/api/v1/flows/password", {"mail": member.mail})
    assert status == 200 and flow["state"] == "code_sent", flow
    mail = await wait_message(client, node, member.mail, after)
    step = {"flow_id": flow["flow_id"], "code": code_in(mail["body"])}
    status, verified = await call(client, node, "POST", "/api/v1/flows/password/verify", step)
    assert status == 200 and verified["state"] == "verified", verified
    body = {
        "flow_id": flow["flow_id"],
        "password": remember(password),
        "password_confirm": password,
    }
    status, done = await call(client, node, "POST", "/api/v1/flows/password/set", body)
    assert status == 200 and done["state"] == "done", done


async def wallet_session(
    client: aiohttp.ClientSession, node: NodeProcess, member: Member
) -> dict[str, Any]:
    """FLOWS §5 steps 1–2: sign in to the wallet with the mobile number and an SMS code."""
    after = await last_sequence(client, node)
    status, flow = await call(
        client, node, "POST", "/api/v1/wallet-auth/start", {"identifier": member.phone_national}
    )
    assert status == 200, flow
    sms = await wait_message(client, node, member.phone, after, channel="sms")
    step = {"flow_id": flow["flow_id"], "code": code_in(sms["body"])}
    status, signed_in = await call(client, node, "POST", "/api/v1/wallet-auth/verify", step)
    assert status == 200, signed_in
    for cookie in client.cookie_jar:
        remember(cookie.value)
    remember(signed_in["csrf_token"])
    return dict(signed_in)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


async def authorize(
    client: aiohttp.ClientSession, node: NodeProcess, csrf: str, scope: str
) -> tuple[str, str]:
    """Step 3 of FLOWS §5: the consent, allowed; returns the code and the PKCE verifier."""
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(8)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": "mypage",
            "redirect_uri": REDIRECT_URI,
            "scope": scope,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    status, consent = await call(client, node, "GET", f"/oauth/authorize?{query}")
    assert status == 200 and consent["client_name"] == "組合員マイページ", consent
    assert [item["scope"] for item in consent["scopes"]] == scope.split()
    status, _ = await call(client, node, "POST", f"/oauth/authorize?{query}", {"decision": "allow"})
    assert status == 403  # No CSRF token.
    async with client.post(
        node.url + f"/oauth/authorize?{query}",
        json={"decision": "allow"},
        headers={"X-CSRF-Token": csrf},
        allow_redirects=False,
    ) as response:
        assert response.status == 302, await response.text()
        location = urlsplit(response.headers["Location"])
    params = parse_qs(location.query)
    assert params["state"] == [state]
    return remember(params["code"][0]), verifier


async def redeem_code(
    client: aiohttp.ClientSession, node: NodeProcess, code: str, verifier: str
) -> tuple[int, dict[str, Any]]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": "mypage",
        "code_verifier": verifier,
    }
    async with client.post(node.url + "/oauth/token", data=form) as response:
        body = await response.json(content_type=None)
        if "access_token" in body:
            remember(body["access_token"])
        return response.status, body


async def staff_session(client: aiohttp.ClientSession, node: NodeProcess) -> str:
    """A new staff account, signed in with its authenticator code; returns the CSRF token."""
    staff_id = f"clerk{secrets.randbelow(10**6)}"
    password = remember("Counter-Clerk-2026!")
    body = {"staff_id": staff_id, "name": "窓口 一郎", "password": password}
    status, created = await call(
        client, node, "POST", "/api/v1/staff/accounts", body, token=node.token
    )
    assert status == 201, created
    secret = remember(created["secret"])
    sign_in = {"staff_id": staff_id, "password": password}
    status, flow = await call(client, node, "POST", "/api/v1/staff/sign-in", sign_in)
    assert status == 200, flow
    verify = {"flow_id": flow["flow_id"], "code": passcodes.totp_code(secret, time.time())}
    status, signed_in = await call(client, node, "POST", "/api/v1/staff/sign-in/verify", verify)
    assert status == 200 and signed_in["kind"] == "staff", signed_in
    return remember(signed_in["csrf_token"])
