"""An authorization code redeemed twice has leaked: the second redemption is refused and
revokes the token the first one gave (RFC 6749 §4.1.2), over the in-process identity
service of `Harness`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import msgspec
import pytest

from coopnode.actors.identity.messages import (
    OAuthAnswer,
    OAuthDecide,
    OAuthHttp,
    OAuthIntrospect,
    OAuthToken,
    Refused,
    TokenInfo,
)
from tests.identity.harness import Harness
from tests.identity.nodeclient import REDIRECT_URI, pkce
from tests.identity.test_service import MEMBER, enrol


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    built = Harness(tmp_path)
    try:
        yield built
    finally:
        built.close()


async def _code(harness: Harness, challenge: str) -> str:
    query = [
        ("response_type", "code"),
        ("client_id", "mypage"),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "wallet:read"),
        ("state", "s1"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
    http = OAuthHttp(
        method="POST", uri=f"http://127.0.0.1:8080/oauth/authorize?{urlencode(query)}", query=query
    )
    answer = await harness.call(OAuthDecide(member_no=MEMBER, http=http, allow=True))
    assert isinstance(answer, OAuthAnswer) and answer.status == 302, answer
    location = dict((name.lower(), value) for name, value in answer.headers)["location"]
    return parse_qs(urlsplit(location).query)["code"][0]


async def _redeem(harness: Harness, code: str, verifier: str) -> OAuthAnswer:
    form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", "mypage"),
        ("code_verifier", verifier),
    ]
    http = OAuthHttp(method="POST", uri="http://127.0.0.1:8080/oauth/token", form=form)
    answer = await harness.call(OAuthToken(http=http))
    assert isinstance(answer, OAuthAnswer), answer
    return answer


async def _live(harness: Harness, access_token: str) -> bool:
    reply = await harness.call(
        OAuthIntrospect(authorization=f"Bearer {access_token}", scope="wallet:read")
    )
    assert isinstance(reply, TokenInfo | Refused), reply
    return isinstance(reply, TokenInfo)


async def test_a_code_redeemed_twice_revokes_the_token_it_gave(harness: Harness) -> None:
    await enrol(harness)
    verifier, challenge = pkce()
    code = await _code(harness, challenge)
    first = await _redeem(harness, code, verifier)
    assert first.status == 200
    token = msgspec.json.decode(first.body)["access_token"]
    assert await _live(harness, token)
    # Another code's token is not touched by this code's replay.
    other_verifier, other_challenge = pkce()
    other = await _redeem(harness, await _code(harness, other_challenge), other_verifier)
    other_token = msgspec.json.decode(other.body)["access_token"]

    second = await _redeem(harness, code, verifier)
    assert second.status == 400
    assert msgspec.json.decode(second.body)["error"] == "invalid_grant"
    assert not await _live(harness, token)
    assert await _live(harness, other_token)
    # A third try is refused the same way and changes nothing more.
    assert (await _redeem(harness, code, verifier)).status == 400


async def test_a_replay_after_the_code_expired_still_revokes(harness: Harness) -> None:
    await enrol(harness)
    verifier, challenge = pkce()
    code = await _code(harness, challenge)
    token = msgspec.json.decode((await _redeem(harness, code, verifier)).body)["access_token"]
    harness.clock.advance(harness.settings.identity.oauth_code_ttl_s + 1)
    assert await _live(harness, token)
    assert (await _redeem(harness, code, verifier)).status == 400
    assert not await _live(harness, token)
