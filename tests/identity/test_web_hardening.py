"""Web hardening (issue 11 §6) on the portal's pages: redirect targets, security headers,
cookie flags, foreign origins, malformed forms and the invitation bound.

The pages run on an aiohttp test server over the in-process identity service and wallet
shard of `Harness` (`tests.identity.portal_app`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from coopnode.domain.identity import SessionKind
from coopnode.http.api.oauth import OAUTH_ROUTES
from coopnode.http.errors import error_middleware
from coopnode.http.hardening import foreign_origin, setup_hardening
from coopnode.http.identity_front import COOKIE_NAMES, identity_key, notifier_key
from coopnode.http.portal.core import FORM_COOKIE, is_local_path
from tests.identity.harness import Harness
from tests.identity.portal_app import (
    AcceptingNotifier,
    HarnessPort,
    as_,
    portal_client,
    portal_session,
)
from tests.identity.test_service import MAIL, PASSWORD, enrol, mypage_session, set_password


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    built = Harness(tmp_path)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
async def client(harness: Harness) -> AsyncIterator[TestClient[Any, Any]]:
    async with portal_client(harness) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "target",
    ["//evil.example", "/\t/evil.example", "/\\evil.example", "/ /evil.example", "evil", ""],
)
def test_a_redirect_target_off_this_node_is_not_a_local_path(target: str) -> None:
    assert not is_local_path(target)


def test_a_path_with_a_query_is_local() -> None:
    assert is_local_path("/portal/home?lang=en&x=%2F%2Fa")


async def test_the_language_link_never_leads_off_the_node(client: TestClient[Any, Any]) -> None:
    tab = await client.get("/lang/en?next=/%09/evil.example", allow_redirects=False)
    assert (tab.status, tab.headers["Location"]) == (303, "/portal")
    kept = await client.get("/lang/en?next=/portal/guide%3Fa%3D1", allow_redirects=False)
    assert kept.headers["Location"] == "/portal/guide?a=1"
    for broken in ("/%0d%0aSet-Cookie:%20x=1", "/portal%0a"):
        answer = await client.get(f"/lang/en?next={broken}", allow_redirects=False)
        assert answer.status == 400
        assert "Set-Cookie: x" not in str(answer.headers)


BROWSER_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


@pytest.mark.parametrize("path", ["/portal/sign-in", "/static/portal.css", "/portal/nowhere"])
async def test_every_answer_carries_the_browser_headers(
    client: TestClient[Any, Any], path: str
) -> None:
    answer = await client.get(path, allow_redirects=False)
    for name, value in BROWSER_HEADERS.items():
        assert answer.headers.get(name) == value, name
    policy = answer.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    # Outside production the node may be reached over plain HTTP: no HSTS.
    assert "Strict-Transport-Security" not in answer.headers


async def test_production_answers_carry_hsts(harness: Harness) -> None:
    async with portal_client(harness, production=True) as production:
        answer = await production.get("/portal/sign-in")
        assert answer.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_the_pages_have_no_inline_script_or_style() -> None:
    """The policy allows no inline script or style, so no template may hold one."""
    templates = Path(__file__).parents[2] / "coopnode" / "http" / "portal" / "templates"
    pages = sorted(templates.rglob("*.html"))
    assert len(pages) > 60, "the templates are not where the test looks"
    for template in pages:
        source = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", source), template.name
        assert "<style" not in source and "style=" not in source, template.name
        assert not re.search(r"\son[a-z]+=", source), template.name


def _set_cookies(answer: Any) -> dict[str, str]:
    """Each cookie the answer sets, by name, as its Set-Cookie header says it."""
    headers: list[str] = answer.headers.getall("Set-Cookie", [])
    return {header.split("=", 1)[0]: header for header in headers}


def _flags_hold(header: str) -> bool:
    lowered = header.lower()
    return "; secure" in lowered and "; httponly" in lowered and "samesite=lax" in lowered


async def test_production_cookies_are_secure_httponly_and_lax(harness: Harness) -> None:
    await enrol(harness)
    await set_password(harness)
    mypage = await mypage_session(harness)
    async with portal_client(harness, production=True) as production:
        form_page = await production.get("/portal/sign-in")
        token = _set_cookies(form_page)[FORM_COOKIE].split("=", 1)[1].split(";")[0]
        signed = await production.post(
            "/portal/sign-in",
            data={"mail": MAIL, "password": PASSWORD, "csrf": token},
            cookies={FORM_COOKIE: token},
        )
        assert signed.status == 200
        set_by_sign_in = _set_cookies(signed)
        assert "cn_mfa_methods" in set_by_sign_in
        connect = await production.get(
            "/mypage/wallet/connect",
            cookies={COOKIE_NAMES[SessionKind.MYPAGE]: mypage.session_id},
            allow_redirects=False,
        )
        assert connect.status == 303
        set_by_connect = _set_cookies(connect)
        assert "cn_oauth" in set_by_connect
    for name, header in {**_set_cookies(form_page), **set_by_sign_in, **set_by_connect}.items():
        assert _flags_hold(header), (name, header)


async def _form_token(client: TestClient[Any, Any]) -> str:
    page = await client.get("/portal/sign-in")
    return _set_cookies(page)[FORM_COOKIE].split("=", 1)[1].split(";")[0]


@pytest.mark.parametrize(
    ("origin", "status"),
    [("http://evil.example", 403), ("null", 403), (None, 200), ("own", 200)],
)
async def test_a_form_from_another_origin_is_refused(
    harness: Harness, client: TestClient[Any, Any], origin: str | None, status: int
) -> None:
    await enrol(harness)
    await set_password(harness)
    token = await _form_token(client)
    headers = {}
    if origin is not None:
        headers["Origin"] = str(client.make_url("/")).rstrip("/") if origin == "own" else origin
    answer = await client.post(
        "/portal/sign-in",
        data={"mail": MAIL, "password": PASSWORD, "csrf": token},
        cookies={FORM_COOKIE: token},
        headers=headers,
    )
    assert answer.status == status
    if status == 403:
        assert "別のサイトから送られたフォーム" in await answer.text()
        assert "cn_mfa_methods" not in _set_cookies(answer)


async def test_a_signed_in_form_from_another_origin_changes_nothing(
    harness: Harness, client: TestClient[Any, Any]
) -> None:
    await enrol(harness)
    await set_password(harness)
    member = await portal_session(harness, MAIL, "090-1111-2222")
    answer = await client.post(
        "/portal/family",
        data={"guardian_mail": "parent@example.jp", "csrf": member.csrf_token},
        cookies=as_(client, member),
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert answer.status == 403
    listed = await client.get("/portal/family", cookies=as_(client, member))
    assert 'id="revoke-1"' not in await listed.text()


async def test_the_configured_public_origin_is_this_nodes_own(harness: Harness) -> None:
    app = web.Application()
    setup_hardening(app, production=True, public_urls=("https://coop.example.ac.jp/portal",))
    request = make_mocked_request(
        "POST", "/portal/sign-in", headers={"Origin": "https://coop.example.ac.jp"}, app=app
    )
    assert foreign_origin(request) is None
    forged = make_mocked_request(
        "POST", "/portal/sign-in", headers={"Origin": "https://coop.example.ac.jp.evil"}, app=app
    )
    assert foreign_origin(forged) == "https://coop.example.ac.jp.evil"


MALFORMED: list[tuple[str, bytes]] = [
    (
        "multipart/form-data; boundary=x",
        b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--\r\n',
    ),
    ("application/x-www-form-urlencoded", b"mail=\xff\xfe&password=x"),
    ("application/x-www-form-urlencoded", b"mail=%ff%fe&password=x"),
    ("application/x-www-form-urlencoded", b"&".join(b"f%d=1" % n for n in range(400))),
    ("application/x-www-form-urlencoded", b"a=" + b"x" * 70_000),
    ("application/json", b'{"mail": "x"}'),
]


@pytest.mark.parametrize(("content_type", "body"), MALFORMED)
@pytest.mark.parametrize("path", ["/portal/sign-in", "/portal/password/details"])
async def test_a_malformed_portal_form_is_a_4xx_page(
    client: TestClient[Any, Any], path: str, content_type: str, body: bytes
) -> None:
    token = await _form_token(client)
    answer = await client.post(
        path, data=body, headers={"Content-Type": content_type}, cookies={FORM_COOKIE: token}
    )
    assert answer.status in (400, 413), await answer.text()


@pytest.fixture
async def oauth(harness: Harness) -> AsyncIterator[TestClient[Any, Any]]:
    """The OAuth token and revocation endpoints, behind the node's error middleware."""
    app = web.Application(middlewares=[error_middleware])
    app[identity_key] = HarnessPort(harness)
    app[notifier_key] = AcceptingNotifier()
    setup_hardening(app, production=False)
    for route in OAUTH_ROUTES:
        if route.path in ("/oauth/token", "/oauth/revoke"):
            app.router.add_route(route.method, route.path, route.handler)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.mark.parametrize(("content_type", "body"), MALFORMED)
@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke"])
async def test_a_malformed_oauth_form_is_a_4xx_with_its_reason(
    oauth: TestClient[Any, Any], path: str, content_type: str, body: bytes
) -> None:
    answer = await oauth.post(path, data=body, headers={"Content-Type": content_type})
    assert answer.status in (400, 413)
    # RFC 6749 §5.2's shape, as the token endpoint's every other refusal.
    assert (await answer.json())["error"] in ("invalid_request", "too_large")


async def test_an_oauth_form_from_another_origin_is_refused(oauth: TestClient[Any, Any]) -> None:
    answer = await oauth.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": "x"},
        headers={"Origin": "http://evil.example"},
    )
    assert answer.status == 403
    assert (await answer.json())["error"] == "foreign_origin"
