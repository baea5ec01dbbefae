"""X-Forwarded-Proto and X-Forwarded-For are believed from a trusted proxy only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from coopnode.http.forwarded import forwarded_middleware


async def seen(request: web.Request) -> web.Response:
    return web.json_response(
        {"scheme": request.scheme, "secure": request.secure, "remote": request.remote}
    )


async def _client(trusted: list[str]) -> TestClient[web.Request, web.Application]:
    app = web.Application(middlewares=[forwarded_middleware(trusted)])
    app.router.add_get("/seen", seen)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def clients() -> AsyncIterator[list[TestClient[web.Request, web.Application]]]:
    made: list[TestClient[web.Request, web.Application]] = []
    yield made
    for client in made:
        await client.close()


PROXY_HEADERS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.9, 203.0.113.5"}


async def test_a_trusted_proxy_gives_the_browsers_scheme_and_address(
    clients: list[TestClient[web.Request, web.Application]],
) -> None:
    clients.append(client := await _client(["127.0.0.0/8"]))
    answer = await (await client.get("/seen", headers=PROXY_HEADERS)).json()
    # The last address is the one the proxy added; the first came from the client.
    assert answer == {"scheme": "https", "secure": True, "remote": "203.0.113.5"}


async def test_from_any_other_peer_the_headers_are_ignored(
    clients: list[TestClient[web.Request, web.Application]],
) -> None:
    clients.append(client := await _client(["10.0.0.0/8"]))
    answer = await (await client.get("/seen", headers=PROXY_HEADERS)).json()
    assert answer == {"scheme": "http", "secure": False, "remote": "127.0.0.1"}


async def test_a_trusted_proxys_nonsense_is_not_taken(
    clients: list[TestClient[web.Request, web.Application]],
) -> None:
    clients.append(client := await _client(["127.0.0.1"]))
    headers = {"X-Forwarded-Proto": "gopher", "X-Forwarded-For": "not-an-address"}
    answer = await (await client.get("/seen", headers=headers)).json()
    assert answer == {"scheme": "http", "secure": False, "remote": "127.0.0.1"}
