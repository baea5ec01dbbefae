"""The identity service in this process: real LMDB stores, real argon2id, a test clock.

These tests cover what needs the clock (expiry, session timeouts) and the rules' edges;
tests/identity/test_node_flows.py drives the same flows through a real node and its SMTP
server.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from coopnode.actors.identity.messages import (
    CheckSession,
    Enrol,
    Enrolled,
    Enrolment,
    FlowAnswer,
    FlowStep,
    InsuranceItem,
    MailChangeStart,
    PasswordStart,
    Principal,
    Refused,
    SessionIssued,
    SignIn,
    SignOut,
    TotpBegin,
    TotpConfirm,
    TotpEnrolment,
)
from coopnode.actors.notify.messages import MailMessage, SmsMessage
from coopnode.domain import passcodes
from coopnode.domain.identity import FlowKind, SessionKind
from coopnode.domain.messages import Pay
from coopnode.domain.money import TillKind
from coopnode.http.errors import status_of
from tests.identity.harness import Harness

MEMBER = "202612345678"
MAIL = "aoi@student.demo-u.ac.jp"
PHONE = "+819011112222"
PASSWORD = "Kusunoki-2026!"
_CODE = re.compile(r"(?:パスコード|確認コード|認証コード)：([0-9]{6})")


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    built = Harness(tmp_path)
    try:
        yield built
    finally:
        built.close()


def code_in(text: str) -> str:
    found = _CODE.search(text)
    assert found, text
    return found.group(1)


def enrolment(member_no: str = MEMBER, mail: str = MAIL, phone: str = "090-1111-2222") -> Enrolment:
    return Enrolment(
        member_no=member_no,
        name="青井 葵",
        kana="アオイ アオイ",
        birth_date="2007-04-02",
        mail=mail,
        phone=phone,
        coop="demo",
        share_units=10,
        insurance=[InsuranceItem(label="学生総合共済", amount_yen=14_400)],
        emoney_yen=40_000,
        meal_plan="meal-1000",
        meal_yen=96_000,
    )


async def enrol(harness: Harness, **fields: str) -> Enrolled:
    reply = await harness.call(Enrol(actor="test", enrolment=enrolment(**fields)))
    assert isinstance(reply, Enrolled), reply
    return reply


async def set_password(harness: Harness, mail: str = MAIL, password: str = PASSWORD) -> None:
    started = await harness.call(PasswordStart(mail=mail))
    assert isinstance(started, FlowAnswer), started
    code = code_in(harness.last_mail(mail).body)
    step = FlowStep(kind=FlowKind.PASSWORD, step="verify", flow_id=started.flow_id, code=code)
    assert isinstance(await harness.call(step), FlowAnswer)
    done = await harness.call(
        FlowStep(
            kind=FlowKind.PASSWORD,
            step="set",
            flow_id=started.flow_id,
            password=password,
            password_confirm=password,
        )
    )
    assert isinstance(done, FlowAnswer) and done.state == "done", done


async def mypage_session(harness: Harness, old_session_id: str = "") -> SessionIssued:
    flow = await harness.call(SignIn(kind=SessionKind.MYPAGE, identifier=MAIL, password=PASSWORD))
    assert isinstance(flow, FlowAnswer), flow
    sent = await harness.call(
        FlowStep(kind=FlowKind.MYPAGE_LOGIN, step="send_code", flow_id=flow.flow_id)
    )
    assert isinstance(sent, FlowAnswer), sent
    code = code_in(harness.last_mail(MAIL).body)
    issued = await harness.call(
        FlowStep(
            kind=FlowKind.MYPAGE_LOGIN,
            step="verify",
            flow_id=flow.flow_id,
            code=code,
            old_session_id=old_session_id,
        )
    )
    assert isinstance(issued, SessionIssued), issued
    return issued


async def test_enrolment_opens_the_wallet_and_mails_every_item(harness: Harness) -> None:
    enrolled = await enrol(harness)
    assert enrolled.created and enrolled.total_yen == 20_000 + 14_400 + 40_000 + 96_000
    assert enrolled.wallet is not None
    assert enrolled.wallet.balances.base == 40_000 and enrolled.wallet.balances.meal == 96_000
    mail = harness.last_mail(MAIL)
    for text in ("生協加入 10口：20,000円", "学生総合共済：14,400円", "電子マネー：40,000円"):
        assert text in mail.body
    assert "合計：170,400円" in mail.body and MEMBER in mail.body
    # The same enrolment again (a re-run import) changes nothing and mails nobody.
    sent = len(harness.sent)
    again = await enrol(harness)
    assert not again.created and len(harness.sent) == sent
    other = await harness.call(Enrol(actor="test", enrolment=enrolment(mail="x@demo-u.ac.jp")))
    assert isinstance(other, Refused) and status_of(other.reason) == 409


async def test_password_rule_blocklist_and_maximum(harness: Harness) -> None:
    await enrol(harness)
    started = await harness.call(PasswordStart(mail=MAIL))
    assert isinstance(started, FlowAnswer)
    early = FlowStep(
        kind=FlowKind.PASSWORD,
        step="set",
        flow_id=started.flow_id,
        password=PASSWORD,
        password_confirm=PASSWORD,
    )
    refusal = await harness.call(early)
    assert isinstance(refusal, Refused) and refusal.reason == "out_of_order"
    code = code_in(harness.last_mail(MAIL).body)
    await harness.call(
        FlowStep(kind=FlowKind.PASSWORD, step="verify", flow_id=started.flow_id, code=code)
    )
    for weak, reason in (
        ("short1!A", None),
        ("alllowercase1!", "password_needs_upper"),
        ("NoDigitsHere!", "password_needs_digit"),
        ("NoSymbols123", "password_needs_symbol"),
        ("Password1!", "password_common"),
        ("Aoi-Secret-9!", "password_contains_account"),
        ("Aa1!" + "x" * 200, "password_too_long"),
    ):
        step = msgspec.structs.replace(early, password=weak, password_confirm=weak)
        answer = await harness.call(step)
        if reason is None:
            assert isinstance(answer, FlowAnswer)  # 8 characters with all four kinds pass.
            return
        assert isinstance(answer, Refused) and answer.reason == reason, (weak, answer)


async def test_expired_and_reused_codes(harness: Harness) -> None:
    await enrol(harness)
    started = await harness.call(PasswordStart(mail=MAIL))
    assert isinstance(started, FlowAnswer)
    code = code_in(harness.last_mail(MAIL).body)
    harness.clock.advance(601)
    step = FlowStep(kind=FlowKind.PASSWORD, step="verify", flow_id=started.flow_id, code=code)
    expired = await harness.call(step)
    assert isinstance(expired, Refused) and expired.reason == "passcode_expired"
    resent = await harness.call(
        FlowStep(kind=FlowKind.PASSWORD, step="resend", flow_id=started.flow_id)
    )
    assert isinstance(resent, FlowAnswer)
    fresh = code_in(harness.last_mail(MAIL).body)
    assert isinstance(await harness.call(msgspec.structs.replace(step, code=fresh)), FlowAnswer)
    # The flow moved on, and the code is spent either way.
    reused = await harness.call(msgspec.structs.replace(step, code=fresh))
    assert isinstance(reused, Refused) and reused.reason == "out_of_order"
    second = await harness.call(PasswordStart(mail=MAIL))
    assert isinstance(second, Refused) and second.reason == "passcode_cooldown"
    harness.clock.advance(61)
    second = await harness.call(PasswordStart(mail=MAIL))
    assert isinstance(second, FlowAnswer)
    again = FlowStep(kind=FlowKind.PASSWORD, step="verify", flow_id=second.flow_id, code=fresh)
    used = await harness.call(again)
    assert isinstance(used, Refused) and used.reason == "passcode_wrong"


async def test_wrong_codes_lock_the_code_and_resend_cools_down(harness: Harness) -> None:
    await enrol(harness)
    started = await harness.call(PasswordStart(mail=MAIL))
    assert isinstance(started, FlowAnswer)
    right = code_in(harness.last_mail(MAIL).body)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    step = FlowStep(kind=FlowKind.PASSWORD, step="verify", flow_id=started.flow_id, code=wrong)
    left = []
    for _ in range(5):
        answer = await harness.call(step)
        assert isinstance(answer, Refused) and answer.reason == "passcode_wrong"
        left.append(answer.attempts_left)
    assert left == [4, 3, 2, 1, 0]
    locked = await harness.call(msgspec.structs.replace(step, code=right))
    assert isinstance(locked, Refused) and locked.reason == "passcode_locked"
    resend = FlowStep(kind=FlowKind.PASSWORD, step="resend", flow_id=started.flow_id)
    cooling = await harness.call(resend)
    assert isinstance(cooling, Refused) and cooling.reason == "passcode_cooldown"
    assert 0 < cooling.retry_after_s <= 60
    harness.clock.advance(60)
    assert isinstance(await harness.call(resend), FlowAnswer)


async def test_unknown_and_known_addresses_answer_alike(harness: Harness) -> None:
    await enrol(harness)
    await set_password(harness)
    harness.clock.advance(61)
    known = await harness.call(PasswordStart(mail=MAIL))
    unknown = await harness.call(PasswordStart(mail="nobody@demo-u.ac.jp"))
    assert isinstance(known, FlowAnswer) and isinstance(unknown, FlowAnswer)
    assert (known.state, known.resend_after_s) == (unknown.state, unknown.resend_after_s)
    bad = "Wrong-Password-1!"
    wrong = await harness.call(SignIn(kind=SessionKind.PORTAL, identifier=MAIL, password=bad))
    absent = await harness.call(
        SignIn(kind=SessionKind.PORTAL, identifier="nobody@demo-u.ac.jp", password=bad)
    )
    assert wrong == absent and isinstance(wrong, Refused) and status_of(wrong.reason) == 401
    lookups = [
        await harness.call(MailChangeStart(member_no=member_no, birth_date="2000-01-01"))
        for member_no in (MEMBER, "209999999999")
    ]
    assert lookups[0] == lookups[1]


async def test_sign_in_lockout_after_repeated_failures(harness: Harness) -> None:
    await enrol(harness)
    await set_password(harness)
    for identifier in (MAIL, "nobody@demo-u.ac.jp"):
        for _ in range(5):
            await harness.call(
                SignIn(kind=SessionKind.MYPAGE, identifier=identifier, password="Nope-123!")
            )
        locked = await harness.call(
            SignIn(kind=SessionKind.MYPAGE, identifier=identifier, password=PASSWORD)
        )
        assert isinstance(locked, Refused) and locked.reason == "locked", identifier
        assert locked.retry_after_s > 0
    harness.clock.advance(901)
    assert isinstance(
        await harness.call(SignIn(kind=SessionKind.MYPAGE, identifier=MAIL, password=PASSWORD)),
        FlowAnswer,
    )


async def test_session_rotation_idle_and_absolute_timeout(harness: Harness) -> None:
    await enrol(harness)
    await set_password(harness)
    first = await mypage_session(harness)
    harness.clock.advance(61)
    second = await mypage_session(harness, old_session_id=first.session_id)
    assert second.session_id != first.session_id and len(second.session_id) >= 22
    check = CheckSession(kinds=(SessionKind.MYPAGE,), session_id=first.session_id)
    assert isinstance(await harness.call(check), Refused)  # Rotated away at sign-in.
    check = msgspec.structs.replace(check, session_id=second.session_id)
    assert isinstance(await harness.call(check), Principal)
    wrong_csrf = await harness.call(msgspec.structs.replace(check, csrf_token="forged"))
    assert isinstance(wrong_csrf, Refused) and wrong_csrf.reason == "csrf"
    assert isinstance(
        await harness.call(msgspec.structs.replace(check, csrf_token=second.csrf_token)), Principal
    )
    # Idle: a request every 29 minutes keeps it alive up to the absolute limit of 12 hours.
    for _ in range(24):
        harness.clock.advance(29 * 60)
        if harness.clock() - 61 - 1_780_000_000.0 >= 12 * 3600:
            break
        assert isinstance(await harness.call(check), Principal)
    harness.clock.advance(29 * 60)
    ended = await harness.call(check)
    assert isinstance(ended, Refused) and ended.reason in ("session_expired", "unauthorized")
    third = await mypage_session(harness)
    harness.clock.advance(30 * 60 + 1)
    idle = await harness.call(msgspec.structs.replace(check, session_id=third.session_id))
    assert isinstance(idle, Refused) and idle.reason == "session_expired"
    fourth = await mypage_session(harness)
    await harness.call(SignOut(session_id=fourth.session_id))
    signed_out = await harness.call(msgspec.structs.replace(check, session_id=fourth.session_id))
    assert isinstance(signed_out, Refused)


async def test_double_submitted_mypage_login_is_one_login(harness: Harness) -> None:
    await enrol(harness)
    await set_password(harness)
    login = SignIn(kind=SessionKind.MYPAGE, identifier=MAIL, password=PASSWORD)
    first, second = await harness.call(login), await harness.call(login)
    assert isinstance(first, FlowAnswer) and first == second
    send = FlowStep(kind=FlowKind.MYPAGE_LOGIN, step="send_code", flow_id=first.flow_id)
    await harness.call(send)
    mails = len(harness.sent)
    assert isinstance(await harness.call(send), FlowAnswer) and len(harness.sent) == mails
    code = code_in(harness.last_mail(MAIL).body)
    verify = FlowStep(kind=FlowKind.MYPAGE_LOGIN, step="verify", flow_id=first.flow_id, code=code)
    one, two = await harness.call(verify), await harness.call(verify)
    assert isinstance(one, SessionIssued) and one == two


async def test_portal_sign_in_with_sms_and_totp(harness: Harness) -> None:
    await enrol(harness)
    await set_password(harness)
    flow = await harness.call(SignIn(kind=SessionKind.PORTAL, identifier=MAIL, password=PASSWORD))
    assert isinstance(flow, FlowAnswer) and flow.methods == ["sms", "voice"]
    early = FlowStep(
        kind=FlowKind.PORTAL_SIGN_IN, step="verify", flow_id=flow.flow_id, code="123456"
    )
    assert isinstance(await harness.call(early), Refused)
    mismatch = FlowStep(
        kind=FlowKind.PORTAL_SIGN_IN,
        step="send_code",
        flow_id=flow.flow_id,
        method="sms",
        phone="08000000000",
    )
    assert (await harness.call(mismatch)).reason == "phone_mismatch"  # type: ignore[union-attr]
    await harness.call(msgspec.structs.replace(mismatch, phone="090-1111-2222"))
    sms = harness.sent[-1]
    assert isinstance(sms, SmsMessage) and sms.to == PHONE
    session = await harness.call(msgspec.structs.replace(early, code=code_in(sms.body)))
    assert isinstance(session, SessionIssued) and session.kind is SessionKind.PORTAL
    enrolment_ = await harness.call(TotpBegin(member_no=MEMBER))
    assert isinstance(enrolment_, TotpEnrolment) and enrolment_.otpauth_uri.startswith(
        "otpauth://totp/"
    )
    code = passcodes.totp_code(enrolment_.secret, harness.clock())
    assert (
        isinstance(await harness.call(TotpConfirm(member_no=MEMBER, code=code)), type(None))
        is False
    )
    harness.clock.advance(61)
    flow = await harness.call(SignIn(kind=SessionKind.PORTAL, identifier=MAIL, password=PASSWORD))
    assert isinstance(flow, FlowAnswer) and "totp" in flow.methods
    totp = FlowStep(
        kind=FlowKind.PORTAL_SIGN_IN,
        step="verify_totp",
        flow_id=flow.flow_id,
        code=passcodes.totp_code(enrolment_.secret, harness.clock()),
    )
    assert isinstance(await harness.call(totp), SessionIssued)


async def test_mail_change_refused_once_emoney_was_used(harness: Harness) -> None:
    await enrol(harness)
    start = MailChangeStart(member_no=MEMBER, birth_date="2007-04-02")
    found = await harness.call(start)
    assert isinstance(found, FlowAnswer) and found.masked_mail == "a***@student.demo-u.ac.jp"
    pay = Pay(key="p1", member_no=MEMBER, amount_yen=300, till_kind=TillKind.SHOP, store="s1")
    await harness.wallet.submit(pay)
    refused = await harness.call(start)
    assert isinstance(refused, Refused) and refused.reason == "emoney_in_use"


async def test_nothing_secret_in_the_store_files(harness: Harness) -> None:
    await enrol(harness)
    await set_password(harness)
    session = await mypage_session(harness)
    code = code_in(harness.last_mail(MAIL).body)
    data = await asyncio.to_thread(_all_bytes, Path(harness.settings.node.data_dir))
    for secret in (PASSWORD, code, session.session_id, session.csrf_token):
        assert secret.encode() not in data, secret
    assert hashlib.sha256(session.session_id.encode()).digest() in data
    assert isinstance(harness.last_mail(MAIL), MailMessage)


def _all_bytes(directory: Path) -> bytes:
    return b"".join(path.read_bytes() for path in directory.rglob("*") if path.is_file())


async def test_a_login_storm_queues_in_the_bounded_pool(tmp_path: Path) -> None:
    """At most `workers + queue` sign-ins wait for a hasher; the rest are told "busy" at
    once, and nothing else breaks (LMDB reader slots included).
    """
    harness = Harness(tmp_path, password_hash_workers=1, password_queue_max=8)
    try:
        await enrol(harness)
        await set_password(harness)
        login = SignIn(kind=SessionKind.MYPAGE, identifier=MAIL, password=PASSWORD)
        answers = await asyncio.gather(*(harness.call(login) for _ in range(300)))
        busy = [a for a in answers if isinstance(a, Refused)]
        assert all(status_of(a.reason) == 503 and a.reason == "busy" for a in busy)
        assert len(answers) - len(busy) == 9  # One hashing, eight queued.
        assert harness.hasher.waiting == 0
    finally:
        harness.close()
