"""The portal home's desk (FLOWS §3 step 5) over HTTP on a real node: inquiries and their
answers by mail, document requests marked sent, event applications with their capacity,
deadline and cancel, and the student-ID IC card bound through the card registry. Bad input
changes nothing, and the staff endpoints refuse without the staff token.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import secrets
from typing import Any

import aiohttp
import pytest

from tests.identity.nodeclient import (
    PASSWORD,
    Member,
    call,
    code_in,
    enrol,
    last_sequence,
    remember,
    session,
    set_password,
    wait_message,
)
from tests.nodeproc import NodeProcess

pytestmark = pytest.mark.slow

NO_TOKEN = ""
JST = datetime.timezone(datetime.timedelta(hours=9))


async def portal_member(
    client: aiohttp.ClientSession, node: NodeProcess, tag: str
) -> tuple[Member, str]:
    """Enrol a member, set the password and sign in to the portal; the session's CSRF token."""
    member = Member(tag)
    await enrol(client, node, member)
    await set_password(client, node, member)
    sign_in = {"mail": member.mail, "password": PASSWORD}
    status, flow = await call(client, node, "POST", "/api/v1/portal/sign-in", sign_in)
    assert status == 200, flow
    after = await last_sequence(client, node)
    send = {"flow_id": flow["flow_id"], "method": "sms", "country_code": "+81"}
    send["phone"] = member.phone_national
    status, sent = await call(client, node, "POST", "/api/v1/portal/sign-in/send-code", send)
    assert status == 200, sent
    sms = await wait_message(client, node, member.phone, after, channel="sms")
    verify = {"flow_id": flow["flow_id"], "code": code_in(sms["body"])}
    status, signed = await call(client, node, "POST", "/api/v1/portal/sign-in/verify", verify)
    assert status == 200 and signed["kind"] == "portal", signed
    for cookie in client.cookie_jar:
        remember(cookie.value)
    return member, remember(signed["csrf_token"])


async def get(client: aiohttp.ClientSession, node: NodeProcess, path: str) -> str:
    async with client.get(node.url + path, allow_redirects=False) as response:
        assert response.status == 200, (path, response.status)
        return await response.text()


async def post(
    client: aiohttp.ClientSession, node: NodeProcess, path: str, form: dict[str, str]
) -> tuple[int, str]:
    async with client.post(node.url + path, data=form, allow_redirects=False) as response:
        return response.status, await response.text()


def rows(page: str, table: str) -> list[str]:
    """The ids of a list's rows on a page."""
    body = page.split(f'id="{table}-list"', 1)[1].split("</table>", 1)[0]
    return re.findall(rf'<tr id="{table}-([0-9]+)"', body)


def staff(node: NodeProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return node.request(method, path, body)


def inquiry_form(csrf: str, **changes: str) -> dict[str, str]:
    form = {
        "csrf": csrf,
        "idem": secrets.token_urlsafe(12),
        "category": "emoney",
        "subject": "ミールプランの残額について",
        "body": "ミールプランの本日の残額はどこで確認できますか。",
        "answer_by": "mail",
    }
    return {**form, **changes}


async def test_inquiry_is_listed_answered_by_staff_and_mailed(node: NodeProcess) -> None:
    async with session() as client:
        member, csrf = await portal_member(client, node, "inq")
        home = await get(client, node, "/portal/home")
        assert rows(home, "inquiry") == [] and "表示するレコードはありません。" in home
        # Bad input: each error next to its field, and nothing is recorded.
        bad = [
            inquiry_form(csrf, body="短い"),
            inquiry_form(csrf, body="あ" * 1001),
            inquiry_form(csrf, subject=""),
            inquiry_form(csrf, category="lottery"),
            inquiry_form(csrf, answer_by="fax"),
        ]
        for form, field in zip(
            bad, ["body", "body", "subject", "category", "answer_by"], strict=True
        ):
            status, page = await post(client, node, "/portal/inquiries", form)
            assert status == 400 and f'id="e-{field}"' in page, (field, status)
        status, page = await post(client, node, "/portal/inquiries", inquiry_form("wrong"))
        assert status == 403
        assert rows(await get(client, node, "/portal/home"), "inquiry") == []
        # A good one, sent twice with the same form key (a double click): one inquiry.
        form = inquiry_form(csrf)
        for _ in range(2):
            status, _page = await post(client, node, "/portal/inquiries", form)
            assert status == 303
        home = await get(client, node, "/portal/home")
        numbers = rows(home, "inquiry")
        assert len(numbers) == 1 and "受付済" in home and "メール" in home
        inquiry_no = int(numbers[0])
        # Staff endpoints refuse without the token.
        path = f"/api/v1/staff/inquiries/{inquiry_no}/answer"
        status, _ = node.request("POST", path, {"answer": "x"}, token=NO_TOKEN)
        assert status == 401
        status, _ = node.request("GET", "/api/v1/staff/inquiries", token=NO_TOKEN)
        assert status == 401
        status, listed = staff(node, "GET", "/api/v1/staff/inquiries?status=received")
        assert status == 200 and inquiry_no in [i["inquiry_no"] for i in listed["inquiries"]]
        status, refused = staff(node, "POST", path, {"answer": ""})
        assert status == 400, refused
        after = await last_sequence(client, node)
        answer_text = "電子マネーHOMEの「本日のミール残額」でご確認いただけます。"
        status, answered = staff(node, "POST", path, {"answer": answer_text})
        assert status == 200 and answered["inquiries"][0]["status"] == "answered", answered
        mail = await wait_message(client, node, member.mail, after)
        assert answer_text in mail["body"] and str(inquiry_no) in mail["body"]
        status, again = staff(node, "POST", path, {"answer": "二度目"})
        assert status == 409, again
        home = await get(client, node, "/portal/home")
        assert "回答済" in home and answer_text in home
        status, audit = staff(node, "GET", "/api/v1/staff/audit?limit=50")
        assert status == 200, audit
        assert any(e["action"] == "inquiry.answer" for e in audit["entries"]), audit


async def test_inquiries_per_day_are_bounded(node: NodeProcess) -> None:
    async with session() as client:
        _member, csrf = await portal_member(client, node, "inqmax")
        for _ in range(5):
            status, _page = await post(client, node, "/portal/inquiries", inquiry_form(csrf))
            assert status == 303
        status, page = await post(client, node, "/portal/inquiries", inquiry_form(csrf))
        assert status == 429 and "本日のお申し込みの上限" in page
        assert len(rows(await get(client, node, "/portal/home"), "inquiry")) == 5


async def test_document_request_listed_and_marked_sent(node: NodeProcess) -> None:
    async with session() as client:
        _member, csrf = await portal_member(client, node, "doc")
        page = await get(client, node, "/portal/documents/new")
        assert "学生総合共済のご案内" in page and "教科書販売のご案内" in page
        for form in ({"document_id": "no-such-doc"}, {"document_id": ""}):
            status, page = await post(client, node, "/portal/documents", {"csrf": csrf, **form})
            assert status in (400, 404) and 'id="e-document_id"' in page
        assert rows(await get(client, node, "/portal/home"), "document") == []
        form = {"csrf": csrf, "idem": "doc-1", "document_id": "kyosai-guide"}
        for _ in range(2):
            status, _page = await post(client, node, "/portal/documents", form)
            assert status == 303
        form = {"csrf": csrf, "idem": "doc-2", "document_id": "textbook-guide"}
        assert (await post(client, node, "/portal/documents", form))[0] == 303
        home = await get(client, node, "/portal/home")
        numbers = rows(home, "document")
        assert len(numbers) == 2 and "郵送" in home and "https://www.univcoop.or.jp/" in home
        postal, download = int(numbers[1]), int(numbers[0])
        path = f"/api/v1/staff/documents/{postal}/sent"
        assert node.request("POST", path, {}, token=NO_TOKEN)[0] == 401
        assert node.request("GET", "/api/v1/staff/documents", token=NO_TOKEN)[0] == 401
        status, sent = staff(node, "POST", path, {})
        assert status == 200 and sent["documents"][0]["sent_at_s"] > 0, sent
        assert staff(node, "POST", path, {})[0] == 409
        assert staff(node, "POST", f"/api/v1/staff/documents/{download}/sent", {})[0] == 409
        today = datetime.datetime.now(JST).strftime("%Y/%m/%d")
        home = await get(client, node, "/portal/home")
        sent_cell = home.split(f'id="document-{postal}"', 1)[1].split("</tr>", 1)[0]
        assert f'class="sent">{today}<' in sent_cell


def new_event(node: NodeProcess, *, capacity: int, until: datetime.datetime) -> int:
    body = {
        "coop": "demo",
        "title": f"新入生歓迎会 {secrets.token_hex(3)}",
        "date": (until + datetime.timedelta(hours=1)).date().isoformat(),
        "place": "第一食堂2階",
        "capacity": capacity,
        "apply_until": until.isoformat(),
    }
    status, created = staff(node, "POST", "/api/v1/staff/events", body)
    assert status == 201, created
    return int(created["event"]["event_id"])


async def test_event_capacity_deadline_cancel_and_attendance(node: NodeProcess) -> None:
    soon = datetime.datetime.now(JST) + datetime.timedelta(hours=2)
    body = {"coop": "demo", "title": "x", "date": "2026-01-01", "place": "y", "capacity": 1}
    assert (
        node.request(
            "POST",
            "/api/v1/staff/events",
            {**body, "apply_until": soon.isoformat()},
            token=NO_TOKEN,
        )[0]
        == 401
    )
    unknown = {**body, "coop": "nowhere", "apply_until": soon.isoformat()}
    assert staff(node, "POST", "/api/v1/staff/events", unknown)[0] == 400
    naive = {**body, "apply_until": soon.replace(tzinfo=None).isoformat()}
    assert staff(node, "POST", "/api/v1/staff/events", naive)[0] == 400
    past = {**body, "apply_until": "2020-01-01T00:00:00+09:00"}
    assert staff(node, "POST", "/api/v1/staff/events", past)[0] == 400
    assert (
        staff(
            node,
            "POST",
            "/api/v1/staff/events",
            {**body, "capacity": 0, "apply_until": soon.isoformat()},
        )[0]
        == 400
    )
    event_id = new_event(node, capacity=1, until=soon)
    async with session() as first, session() as second:
        member, csrf = await portal_member(first, node, "evt")
        other, other_csrf = await portal_member(second, node, "evt2")
        page = await get(first, node, "/portal/events")
        assert f'id="apply-{event_id}"' in page
        # Without the CSRF token nothing happens.
        status, _ = await post(first, node, f"/portal/events/{event_id}/apply", {"csrf": "x"})
        assert status == 403
        assert rows(await get(first, node, "/portal/home"), "application") == []
        # Two submits at once: one application, one seat.
        form = {"csrf": csrf}
        answers = await asyncio.gather(
            post(first, node, f"/portal/events/{event_id}/apply", form),
            post(first, node, f"/portal/events/{event_id}/apply", form),
        )
        assert [status for status, _ in answers] == [303, 303]
        status, roster = staff(node, "GET", f"/api/v1/staff/events/{event_id}")
        assert (
            status == 200 and roster["event"]["applied"] == 1 and len(roster["applications"]) == 1
        )
        home = await get(first, node, "/portal/home")
        assert rows(home, "application") == [str(event_id)] and "申込済" in home
        # The event is full for the other member.
        status, page = await post(
            second, node, f"/portal/events/{event_id}/apply", {"csrf": other_csrf}
        )
        assert status == 409 and "定員に達した" in page
        # Attendance: staff only, only for an applicant.
        path = f"/api/v1/staff/events/{event_id}/attendance"
        mark = {"member_no": member.member_no, "attendance": "attended"}
        assert node.request("POST", path, mark, token=NO_TOKEN)[0] == 401
        assert staff(node, "POST", path, {**mark, "member_no": other.member_no})[0] == 404
        # Cancel frees the seat; the other member then gets it.
        status, _ = await post(first, node, f"/portal/events/{event_id}/cancel", form)
        assert status == 303
        page = await get(first, node, "/portal/events")
        assert "取消済" in page
        status, _ = await post(
            second, node, f"/portal/events/{event_id}/apply", {"csrf": other_csrf}
        )
        assert status == 303
        assert staff(node, "POST", path, mark)[0] == 409  # the first member cancelled
        status, marked = staff(node, "POST", path, {**mark, "member_no": other.member_no})
        assert status == 200 and marked["applications"][0]["attendance"] == "attended"
        home = await get(second, node, "/portal/home")
        cell = home.split(f'id="application-{event_id}"', 1)[1].split("</tr>", 1)[0]
        assert "参加" in cell and "申込済" in cell


async def test_ic_card_registered_once_and_never_someone_elses(node: NodeProcess) -> None:
    idm = secrets.token_hex(8)
    async with session() as first, session() as second:
        member, csrf = await portal_member(first, node, "card")
        other, other_csrf = await portal_member(second, node, "card2")
        page = await get(first, node, "/portal/ic-card")
        assert 'id="card-none"' in page
        for bad in ("12345", "zz" * 8, idm + "0"):
            status, page = await post(first, node, "/portal/ic-card", {"csrf": csrf, "idm": bad})
            assert status == 400 and 'id="e-idm"' in page
        assert node.request("GET", f"/api/v1/cards/{idm}")[0] == 404
        status, _ = await post(first, node, "/portal/ic-card", {"csrf": "no", "idm": idm})
        assert status == 403
        assert node.request("GET", f"/api/v1/cards/{idm}")[0] == 404
        status, _ = await post(first, node, "/portal/ic-card", {"csrf": csrf, "idm": idm.upper()})
        assert status == 303
        status, card = node.request("GET", f"/api/v1/cards/{idm}")
        assert (
            status == 200 and card["member_no"] == member.member_no and card["status"] == "active"
        )
        page = await get(first, node, "/portal/ic-card")
        assert f"…{idm[-4:]}" in page and 'id="card-active"' in page
        assert f"…{idm[-4:]}" in await get(first, node, "/portal/home")
        # A second card while one is active: refused, sent to the counter.
        status, page = await post(
            first, node, "/portal/ic-card", {"csrf": csrf, "idm": secrets.token_hex(8)}
        )
        assert status == 409 and "窓口" in page
        # The first member's card for another member: refused without naming its holder.
        status, page = await post(second, node, "/portal/ic-card", {"csrf": other_csrf, "idm": idm})
        assert status == 409 and "登録できません" in page
        error = page.split('id="e-idm"', 1)[1].split("</p>", 1)[0]
        assert member.member_no not in page and idm[-4:] not in error and "試験" not in error
        status, card = node.request("GET", f"/api/v1/cards/{idm}")
        assert card["member_no"] == member.member_no
        assert 'id="card-none"' in await get(second, node, "/portal/ic-card")
        status, audit = staff(node, "GET", "/api/v1/staff/audit?limit=100")
        registered = [e for e in audit["entries"] if e["action"] == "card.register"]
        assert any(e["target"] == member.member_no for e in registered)
        assert not any(e["target"] == other.member_no for e in registered)
        assert all(idm not in str(e) for e in audit["entries"])
