"""Family access (FLOWS §3 step 5) through the portal's pages: a member grants a guardian
read access, the guardian sees only the cafeteria calendar and the purchase history, a
guardian without a grant is refused, and a revoke ends the access. A guardian who is not a
member accepts the mailed invitation (code, password), signs in with a mailed code, and
reaches no member page.

The pages run on an aiohttp test server over the in-process identity service and wallet
shard of `Harness` (`tests.identity.portal_app`).
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from coopnode.actors.identity.messages import (
    Done,
    Family,
    FamilyGrant,
    FamilyList,
    FamilyRevoke,
    FlowAnswer,
    GuardianStart,
    Refused,
)
from coopnode.actors.notify.messages import MailMessage
from coopnode.catalogues import catalogue
from coopnode.domain.identity import SessionKind
from coopnode.domain.messages import Pay
from coopnode.domain.money import TillKind
from coopnode.http.errors import status_of
from coopnode.http.identity_front import (
    COOKIE_NAMES,
)
from tests.identity.harness import Harness
from tests.identity.portal_app import as_, portal_client, portal_session
from tests.identity.test_service import MAIL, MEMBER, code_in, enrol, set_password

GUARDIAN = "202698765432"
GUARDIAN_MAIL = "parent@example.jp"
GUARDIAN_PHONE = "090-3333-4444"
OTHER = "202611112222"
OTHER_MAIL = "other@student.demo-u.ac.jp"


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


async def test_grant_view_refuse_and_revoke(harness: Harness, client: TestClient[Any, Any]) -> None:
    await enrol(harness)
    await enrol(harness, member_no=GUARDIAN, mail=GUARDIAN_MAIL, phone=GUARDIAN_PHONE)
    await enrol(harness, member_no=OTHER, mail=OTHER_MAIL, phone="090-5555-6666")
    for mail in (MAIL, GUARDIAN_MAIL, OTHER_MAIL):
        await set_password(harness, mail=mail)
    member = await portal_session(harness, MAIL, "090-1111-2222")
    guardian = await portal_session(harness, GUARDIAN_MAIL, GUARDIAN_PHONE)
    other = await portal_session(harness, OTHER_MAIL, "090-5555-6666")
    pay = Pay(
        key="f1", member_no=MEMBER, amount_yen=480, till_kind=TillKind.SHOP, store="shop-main"
    )
    await harness.wallet.submit(pay)
    view = f"/portal/family/{MEMBER}"

    # Before any grant the guardian is refused.
    refused = await client.get(view, cookies=as_(client, guardian), allow_redirects=False)
    assert refused.status == 403
    # The grant form needs the session's CSRF token.
    cookies = as_(client, member)
    forged = await client.post(
        "/portal/family", data={"guardian_mail": GUARDIAN_MAIL}, cookies=cookies
    )
    assert forged.status == 403
    own = await client.post(
        "/portal/family",
        data={"guardian_mail": MAIL, "csrf": member.csrf_token},
        cookies=cookies,
        allow_redirects=False,
    )
    assert own.status == 409
    granted = await client.post(
        "/portal/family",
        data={"guardian_mail": GUARDIAN_MAIL, "csrf": member.csrf_token},
        cookies=cookies,
        allow_redirects=False,
    )
    assert granted.status == 303
    # An address with no portal account gets the very same answer: the form tells a
    # member nothing about who else has an account.
    unknown = await client.post(
        "/portal/family",
        data={"guardian_mail": "nobody@example.org", "csrf": member.csrf_token},
        cookies=cookies,
        allow_redirects=False,
    )
    assert (unknown.status, unknown.headers["Location"]) == (
        granted.status,
        granted.headers["Location"],
    )
    listed = await client.get("/portal/family", cookies=cookies)
    listed_text = await listed.text()
    assert 'id="revoke-1"' in listed_text and 'id="revoke-2"' in listed_text

    # The guardian sees the member's calendar and purchases, and nothing else.
    paid = datetime.datetime.fromtimestamp(harness.clock(), ZoneInfo("Asia/Tokyo"))
    page = await client.get(f"{view}?month={paid:%Y-%m}", cookies=as_(client, guardian))
    body = await page.text()
    assert page.status == 200
    # The store by the name members know (portal.stores), never by its id.
    assert 'id="cafeteria"' in body and "生協ショップ" in body and "480" in body
    assert "shop-main" not in body
    assert "balance" not in body and MAIL not in body and "/mypage/emoney" not in body
    guardian_list = await client.get("/portal/family", cookies=as_(client, guardian))
    assert f'id="ward-{MEMBER}"' in await guardian_list.text()
    # Another account, without a grant, is refused; without a session, sent to sign in.
    stranger = await client.get(view, cookies=as_(client, other), allow_redirects=False)
    assert stranger.status == 403
    client.session.cookie_jar.clear()
    anonymous = await client.get(view, allow_redirects=False)
    assert anonymous.status == 303 and anonymous.headers["Location"] == "/portal/sign-in"

    # The member revokes: the guardian's access ends.
    revoked = await client.post(
        "/portal/family/revoke",
        data={"guardian_mail": GUARDIAN_MAIL, "csrf": member.csrf_token},
        cookies=as_(client, member),
        allow_redirects=False,
    )
    assert revoked.status == 303
    after = await client.get(view, cookies=as_(client, guardian), allow_redirects=False)
    assert after.status == 403


PARENT_MAIL = "parent.sato@example.jp"
PARENT_PASSWORD = "Hahaoya-Mikan-77!"  # A test password.


def _cookie(client: TestClient[Any, Any], name: str) -> str:
    cookies = client.session.cookie_jar.filter_cookies(client.make_url("/"))
    return cookies[name].value if name in cookies else ""


async def _form_token(client: TestClient[Any, Any], path: str) -> str:
    page = await client.get(path)
    assert page.status == 200
    token = _cookie(client, "cn_form")
    assert token
    return token


def _mails_to(harness: Harness, mail: str) -> list[MailMessage]:
    return [note for note in harness.sent if isinstance(note, MailMessage) and note.to == mail]


async def test_guardian_without_account_accepts_the_invitation(
    harness: Harness, client: TestClient[Any, Any]
) -> None:
    await enrol(harness)
    await set_password(harness)
    member = await portal_session(harness, MAIL, "090-1111-2222")
    pay = Pay(key="g1", member_no=MEMBER, amount_yen=350, till_kind=TillKind.SHOP, store="shop-2")
    await harness.wallet.submit(pay)

    # The member's grant mails the guardian an invitation to the guardian's page.
    granted = await client.post(
        "/portal/family",
        data={"guardian_mail": PARENT_MAIL, "csrf": member.csrf_token},
        cookies=as_(client, member),
        allow_redirects=False,
    )
    assert granted.status == 303
    (invitation,) = _mails_to(harness, PARENT_MAIL)
    assert invitation.subject == catalogue("ja").text("mail.family.subject")
    assert "/portal/guardian" in invitation.body and "確認コード" in invitation.body

    # An address nobody invited gets the same page, and no mail.
    client.session.cookie_jar.clear()
    token = await _form_token(client, "/portal/guardian")
    stranger = await client.post(
        "/portal/guardian/start", data={"mail": "stranger@example.org", "csrf": token}
    )
    invited = await client.post("/portal/guardian/start", data={"mail": PARENT_MAIL, "csrf": token})
    assert stranger.status == invited.status == 200
    assert (
        'id="verify-code"' in await stranger.text() and 'id="verify-code"' in await invited.text()
    )
    assert _mails_to(harness, "stranger@example.org") == []
    # Without the form token nothing starts.
    forged = await client.post("/portal/guardian/start", data={"mail": PARENT_MAIL})
    assert forged.status == 403

    # A wrong code and a weak password are refused next to the field and change nothing.
    code = code_in(_mails_to(harness, PARENT_MAIL)[-1].body)
    wrong = "000000" if code != "000000" else "111111"
    refused = await client.post(
        "/portal/guardian/verify", data={"action": "verify", "code": wrong, "csrf": token}
    )
    assert refused.status == 400 and 'id="e-code"' in await refused.text()
    verified = await client.post(
        "/portal/guardian/verify", data={"action": "verify", "code": code, "csrf": token}
    )
    assert verified.status == 200 and 'id="guardian-verified"' in await verified.text()
    weak = await client.post(
        "/portal/guardian/password",
        data={"password": "password", "password_confirm": "password", "csrf": token},
    )
    assert weak.status == 400 and 'id="e-password"' in await weak.text()
    with harness.store.read() as tx:
        assert tx.guardian(PARENT_MAIL) is None
    set_ = await client.post(
        "/portal/guardian/password",
        data={"password": PARENT_PASSWORD, "password_confirm": PARENT_PASSWORD, "csrf": token},
        allow_redirects=False,
    )
    assert set_.status == 303 and set_.headers["Location"] == "/portal/guardian/sign-in?done=1"
    with harness.store.read() as tx:
        stored = tx.guardian(PARENT_MAIL)
    assert stored is not None and stored.password_hash.startswith(b"$argon2id$")
    assert PARENT_PASSWORD.encode() not in stored.password_hash

    # Sign-in: a wrong password and an unknown address read the same; the right one mails
    # a code, and the code opens a guardian session.
    for mail, password in ((PARENT_MAIL, "Wrong-Pass-123!"), ("nobody@example.org", "X-1aaaaaa")):
        bad = await client.post(
            "/portal/guardian/sign-in", data={"mail": mail, "password": password, "csrf": token}
        )
        assert bad.status == 400 and 'id="e-password"' in await bad.text()
    before = len(_mails_to(harness, PARENT_MAIL))
    signing = await client.post(
        "/portal/guardian/sign-in",
        data={"mail": PARENT_MAIL, "password": PARENT_PASSWORD, "csrf": token},
    )
    assert signing.status == 200
    assert len(_mails_to(harness, PARENT_MAIL)) == before + 1
    sign_in_code = code_in(_mails_to(harness, PARENT_MAIL)[-1].body)
    opened = await client.post(
        "/portal/guardian/sign-in/verify",
        data={"code": sign_in_code, "csrf": token},
        allow_redirects=False,
    )
    assert opened.status == 303 and opened.headers["Location"] == "/portal/guardian/home"
    assert _cookie(client, COOKIE_NAMES[SessionKind.GUARDIAN])

    # The guardian sees the member's calendar and purchases, and nothing of a member's.
    home = await client.get("/portal/guardian/home")
    assert home.status == 200 and f'id="ward-{MEMBER}"' in await home.text()
    paid = datetime.datetime.fromtimestamp(harness.clock(), ZoneInfo("Asia/Tokyo"))
    view = await client.get(f"/portal/family/{MEMBER}?month={paid:%Y-%m}")
    body = await view.text()
    assert view.status == 200
    # A store the settings do not name reads as "a co-op store", not as its id.
    assert 'id="cafeteria"' in body and "生協店舗" in body and "350" in body
    assert "shop-2" not in body
    assert "/mypage/emoney" not in body and MAIL not in body and 'id="nav-family"' not in body
    for path in ("/portal/home", "/portal/family", "/mypage/home", "/mypage/emoney"):
        member_page = await client.get(path, allow_redirects=False)
        assert member_page.status == 303, path
        assert member_page.headers["Location"] in ("/portal/sign-in", "/mypage"), path
    other = await client.get("/portal/family/202600000001", allow_redirects=False)
    assert other.status == 403

    # The member revokes: the guardian's view ends at once.
    revoked = await client.post(
        "/portal/family/revoke",
        data={"guardian_mail": PARENT_MAIL, "csrf": member.csrf_token},
        cookies=as_(client, member),
        allow_redirects=False,
    )
    assert revoked.status == 303
    guardian_cookie = COOKIE_NAMES[SessionKind.GUARDIAN]
    client.session.cookie_jar.update_cookies(
        {guardian_cookie: opened.cookies[guardian_cookie].value}
    )
    after = await client.get(f"/portal/family/{MEMBER}", allow_redirects=False)
    assert after.status == 403
    emptied = await client.get("/portal/guardian/home")
    assert f'id="ward-{MEMBER}"' not in await emptied.text()
    # And the invitation no longer lets the address set a password: no code is mailed.
    harness.clock.advance(120)
    started = await harness.call(GuardianStart(mail=PARENT_MAIL))
    assert isinstance(started, FlowAnswer)
    assert len(_mails_to(harness, PARENT_MAIL)) == before + 1


async def test_family_invitations_are_bounded_per_member_and_per_address(
    harness: Harness, client: TestClient[Any, Any]
) -> None:
    """A loop of grants and revokes cannot mail one address, or many, without end: three
    invitations a day reach one address, five leave one member; a refusal changes
    nothing and says when to try again; a day later both bounds have room again."""
    await enrol(harness)

    async def grant(mail: str) -> Any:
        return await harness.call(FamilyGrant(member_no=MEMBER, guardian_mail=mail))

    def invitations(to: str) -> int:
        return sum(
            1
            for m in harness.sent
            if isinstance(m, MailMessage) and m.to == to and m.kind == "family"
        )

    for _ in range(3):
        assert isinstance(await grant(GUARDIAN_MAIL), Done)
        assert isinstance(
            await harness.call(FamilyRevoke(member_no=MEMBER, guardian_mail=GUARDIAN_MAIL)), Done
        )
        harness.clock.advance(60)
    refused = await grant(GUARDIAN_MAIL)
    assert isinstance(refused, Refused), refused
    assert (status_of(refused.reason), refused.reason) == (429, "family_invitations_exhausted")
    assert 0 < refused.retry_after_s <= 86_400 - 3 * 60 + 60
    assert invitations(GUARDIAN_MAIL) == 3
    listed = await harness.call(FamilyList(member_no=MEMBER))
    assert isinstance(listed, Family) and listed.guardians == []  # Refused: nothing granted.

    # The member's own bound: two more addresses take the day's five, the sixth is refused.
    assert isinstance(await grant("aunt@example.jp"), Done)
    assert isinstance(await grant("uncle@example.jp"), Done)
    refused = await grant("grandma@example.jp")
    assert isinstance(refused, Refused) and refused.reason == "family_invitations_exhausted"
    assert invitations("grandma@example.jp") == 0

    # The portal page says so in the member's language, and keeps what was typed.
    await set_password(harness)
    member = await portal_session(harness, MAIL, "090-1111-2222")
    page = await client.post(
        "/portal/family",
        data={"guardian_mail": "grandma@example.jp", "csrf": member.csrf_token},
        cookies=as_(client, member),
    )
    assert page.status == 429
    body = await page.text()
    assert "本日の保護者への招待は上限に達しました" in body and "grandma@example.jp" in body

    harness.clock.advance(86_400)
    assert isinstance(await grant("grandma@example.jp"), Done)
    assert isinstance(await grant(GUARDIAN_MAIL), Done)
    assert invitations(GUARDIAN_MAIL) == 4
