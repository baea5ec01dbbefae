"""Every member flow end to end on a real node: Ray actors, LMDB, HTTP, and mail through
the node's own SMTP server, read back from its development outbox.

The tests share the suite's node and enrol members of their own, so they touch no demo
member and no other test's member.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coopnode.domain import passcodes
from tests.identity.nodeclient import (
    PASSWORD,
    SEEN_SECRETS,
    Member,
    authorize,
    call,
    code_in,
    enrol,
    last_sequence,
    pkce,
    redeem_code,
    remember,
    session,
    set_password,
    wait_message,
    wallet_session,
)
from tests.nodeproc import REPO, TEST_CONFIG, NodeProcess

pytestmark = pytest.mark.slow


async def test_enrolment_mails_every_item_and_opens_the_wallet(node: NodeProcess) -> None:
    member = Member("enrol")
    async with session() as client:
        after = await last_sequence(client, node)
        status, _ = await call(client, node, "POST", "/api/v1/members", member.enrolment())
        assert status == 401  # The staff token is required.
        enrolled = await enrol(client, node, member)
        assert enrolled["total_yen"] == 20_000 + 14_400 + 40_000 + 96_000
        mail = await wait_message(client, node, member.mail, after)
        assert mail["subject"].startswith("【重要】大学生協ご加入")
        for line in (
            "生協加入 10口：20,000円",
            "学生総合共済：14,400円",
            "電子マネー：40,000円",
            "ミール：96,000円",
            "合計：170,400円",
            member.member_no,
        ):
            assert line in mail["body"]
        status, wallet = await call(
            client, node, "GET", f"/api/v1/wallets/{member.member_no}", token=node.token
        )
        assert status == 200 and wallet["balances"]["base"] == 40_000
        assert wallet["balances"]["meal"] == 96_000
        status, again = await call(
            client, node, "POST", "/api/v1/members", member.enrolment(), token=node.token
        )
        assert status == 200 and again["created"] is False


async def test_password_then_mypage_login_double_submit_is_one_login(node: NodeProcess) -> None:
    member = Member("mypage")
    async with session() as client:
        await enrol(client, node, member)
        await set_password(client, node, member)
        login = {"mail": member.mail, "password": PASSWORD}
        first, second = await asyncio.gather(
            call(client, node, "POST", "/api/v1/mypage/login", login),
            call(client, node, "POST", "/api/v1/mypage/login", login),
        )
        assert first == second and first[0] == 200, (first, second)
        flow = first[1]
        after = await last_sequence(client, node)
        send = {"flow_id": flow["flow_id"]}
        sent = await asyncio.gather(
            *(call(client, node, "POST", "/api/v1/mypage/login/send-code", send) for _ in range(3))
        )
        assert all(status == 200 for status, _ in sent), sent
        mail = await wait_message(client, node, member.mail, after)
        await asyncio.sleep(0.3)
        status, page = await call(
            client, node, "GET", f"/dev/outbox.json?to={member.mail}&after={after}"
        )
        assert len(page["messages"]) == 1  # Three clicks, one code.
        verify = {"flow_id": flow["flow_id"], "code": code_in(mail["body"])}
        one, two = await asyncio.gather(
            call(client, node, "POST", "/api/v1/mypage/login/verify", verify),
            call(client, node, "POST", "/api/v1/mypage/login/verify", verify),
        )
        assert one == two and one[0] == 200, (one, two)
        assert one[1]["kind"] == "mypage" and one[1]["subject"] == member.member_no
        status, me = await call(client, node, "GET", "/api/v1/me")
        assert status == 200 and me["member_no"] == member.member_no and me["password_set"]
        status, _ = await call(client, node, "POST", "/api/v1/sign-out")
        assert status == 200
        status, _ = await call(client, node, "GET", "/api/v1/me")
        assert status == 401


async def test_portal_sign_in_with_sms_voice_and_totp(node: NodeProcess) -> None:
    member = Member("portal")
    async with session() as client:
        await enrol(client, node, member)
        await set_password(client, node, member)
        status, flow = await call(
            client,
            node,
            "POST",
            "/api/v1/portal/sign-in",
            {"mail": member.mail, "password": PASSWORD},
        )
        assert status == 200 and flow["methods"] == ["sms", "voice"], flow
        verify = {"flow_id": flow["flow_id"], "code": "000000"}
        status, early = await call(client, node, "POST", "/api/v1/portal/sign-in/verify", verify)
        assert status == 409 and early["reason"] == "out_of_order"
        after = await last_sequence(client, node)
        send = {
            "flow_id": flow["flow_id"],
            "method": "voice",
            "country_code": "+81",
            "phone": member.phone_national,
        }
        status, sent = await call(client, node, "POST", "/api/v1/portal/sign-in/send-code", send)
        assert status == 200 and sent["state"] == "code_sent", sent
        call_ = await wait_message(client, node, member.phone, after, channel="voice")
        verify["code"] = code_in(call_["body"])
        status, signed_in = await call(
            client, node, "POST", "/api/v1/portal/sign-in/verify", verify
        )
        assert status == 200 and signed_in["kind"] == "portal", signed_in
        csrf = remember(signed_in["csrf_token"])
        status, refused = await call(client, node, "POST", "/api/v1/me/totp")
        assert status == 403 and refused["reason"] == "csrf"
        status, totp = await call(client, node, "POST", "/api/v1/me/totp", csrf=csrf)
        assert status == 200 and totp["otpauth_uri"].startswith("otpauth://totp/")
        assert totp["qr_svg"].startswith("<svg")
        secret = remember(totp["secret"])
        code = passcodes.totp_code(secret, time.time())
        status, done = await call(
            client, node, "POST", "/api/v1/me/totp/confirm", {"code": code}, csrf=csrf
        )
        assert status == 200, done
        await call(client, node, "POST", "/api/v1/sign-out")
        status, flow = await call(
            client,
            node,
            "POST",
            "/api/v1/portal/sign-in",
            {"mail": member.mail, "password": PASSWORD},
        )
        assert status == 200 and "totp" in flow["methods"]
        # The code just used is refused (no replay: `totp_used`, 400, where a mailed code
        # used twice is `passcode_used`, 409); the next step's code is accepted.
        totp_step = {"flow_id": flow["flow_id"], "code": code}
        status, replay = await call(
            client, node, "POST", "/api/v1/portal/sign-in/verify-totp", totp_step
        )
        assert status == 400 and replay["reason"] == "totp_used", replay
        totp_step["code"] = passcodes.totp_code(secret, time.time() + 30)
        status, signed_in = await call(
            client, node, "POST", "/api/v1/portal/sign-in/verify-totp", totp_step
        )
        assert status == 200 and signed_in["kind"] == "portal", signed_in


async def test_portal_sms_code_wrong_tries_lock_the_code(node: NodeProcess) -> None:
    member = Member("smslock")
    async with session() as client:
        await enrol(client, node, member)
        await set_password(client, node, member)
        status, flow = await call(
            client,
            node,
            "POST",
            "/api/v1/portal/sign-in",
            {"mail": member.mail, "password": PASSWORD},
        )
        after = await last_sequence(client, node)
        send = {"flow_id": flow["flow_id"], "method": "sms", "phone": member.phone_national}
        status, _ = await call(client, node, "POST", "/api/v1/portal/sign-in/send-code", send)
        sms = await wait_message(client, node, member.phone, after, channel="sms")
        right = code_in(sms["body"])
        wrong = f"{(int(right) + 7) % 1_000_000:06d}"
        verify = {"flow_id": flow["flow_id"], "code": wrong}
        for left in (4, 3, 2, 1, 0):
            status, refused = await call(
                client, node, "POST", "/api/v1/portal/sign-in/verify", verify
            )
            assert status == 400 and refused["attempts_left"] == left, refused
        verify["code"] = right
        status, locked = await call(client, node, "POST", "/api/v1/portal/sign-in/verify", verify)
        assert status == 429 and locked["reason"] == "passcode_locked"
        send["method"] = "voice"
        status, cooling = await call(client, node, "POST", "/api/v1/portal/sign-in/send-code", send)
        assert status == 429 and cooling["retry_after_s"] > 0, cooling


async def test_mail_change_before_first_use_then_refused_after(node: NodeProcess) -> None:
    member = Member("change")
    new_mail = f"new-{member.mail}"
    async with session() as client:
        await enrol(client, node, member)
        start = {"member_no": member.member_no, "birth_date": "2000-01-01"}
        wrong_birth = await call(client, node, "POST", "/api/v1/flows/mail-change", start)
        unknown = await call(
            client,
            node,
            "POST",
            "/api/v1/flows/mail-change",
            {**start, "member_no": "209999999998"},
        )
        assert wrong_birth == unknown and wrong_birth[0] == 404
        status, flow = await call(
            client,
            node,
            "POST",
            "/api/v1/flows/mail-change",
            {**start, "birth_date": member.birth_date},
        )
        assert status == 200 and flow["masked_mail"].endswith("@student.demo-u.ac.jp"), flow
        assert member.mail not in str(flow)
        flow_id = flow["flow_id"]
        status, early = await call(
            client,
            node,
            "POST",
            "/api/v1/flows/mail-change/verify-new",
            {"flow_id": flow_id, "code": "123456"},
        )
        assert status == 409 and early["reason"] == "out_of_order"
        after = await last_sequence(client, node)
        await call(
            client, node, "POST", "/api/v1/flows/mail-change/send-current", {"flow_id": flow_id}
        )
        current = await wait_message(client, node, member.mail, after)
        assert current["subject"] == "大学生協加入情報（メールアドレス）変更受付"
        status, _ = await call(
            client,
            node,
            "POST",
            "/api/v1/flows/mail-change/verify-current",
            {"flow_id": flow_id, "code": code_in(current["body"])},
        )
        assert status == 200
        after = await last_sequence(client, node)
        status, _ = await call(
            client,
            node,
            "POST",
            "/api/v1/flows/mail-change/new-address",
            {"flow_id": flow_id, "mail": new_mail},
        )
        assert status == 200
        second = await wait_message(client, node, new_mail, after)
        status, done = await call(
            client,
            node,
            "POST",
            "/api/v1/flows/mail-change/verify-new",
            {"flow_id": flow_id, "code": code_in(second["body"])},
        )
        assert status == 200 and done["state"] == "done", done
        # The new address is the sign-in id now: a password can be set through it.
        moved = Member("moved")
        moved.mail = new_mail
        await set_password(client, node, moved)
        pay = {"key": "first-use", "amount_yen": 300, "till_kind": "shop", "store": "s1"}
        status, _ = await call(
            client,
            node,
            "POST",
            f"/api/v1/wallets/{member.member_no}/payments",
            pay,
            token=node.token,
        )
        assert status == 200
        status, refused = await call(
            client,
            node,
            "POST",
            "/api/v1/flows/mail-change",
            {**start, "birth_date": member.birth_date},
        )
        assert status == 409 and refused["reason"] == "emoney_in_use"


async def test_wallet_registration_oauth_pkce_and_scopes(node: NodeProcess) -> None:
    member = Member("wallet")
    async with session() as client:
        await enrol(client, node, member)
        status, _ = await call(client, node, "GET", "/oauth/authorize?response_type=code")
        assert status == 401  # Not signed in to the wallet.
        signed_in = await wallet_session(client, node, member)
        assert signed_in["kind"] == "wallet" and signed_in["registered_now"] is True
        csrf = signed_in["csrf_token"]
        code, verifier = await authorize(client, node, csrf, "wallet:read")
        status, refused = await redeem_code(client, node, code, pkce()[0])
        assert status == 400 and refused["error"] == "invalid_grant", refused
        code, verifier = await authorize(client, node, csrf, "wallet:read")
        status, read_token = await redeem_code(client, node, code, verifier)
        assert status == 200 and read_token["scope"] == "wallet:read", read_token
        status, reused = await redeem_code(client, node, code, verifier)
        assert status == 400 and reused["error"] == "invalid_grant"
        revoked = {"Authorization": f"Bearer {read_token['access_token']}"}
        async with client.get(node.url + "/api/v1/member/wallet", headers=revoked) as response:
            assert response.status == 401  # A code presented twice revokes its token.
        code, verifier = await authorize(client, node, csrf, "wallet:read")
        status, read_token = await redeem_code(client, node, code, verifier)
        assert status == 200 and read_token["scope"] == "wallet:read", read_token
        read = {"Authorization": f"Bearer {read_token['access_token']}"}
        async with client.get(node.url + "/api/v1/member/wallet", headers=read) as response:
            assert response.status == 200
            assert (await response.json())["balances"]["base"] == 40_000
        async with client.get(node.url + "/api/v1/member/wallet/history", headers=read) as response:
            assert response.status == 200 and (await response.json())["lines"]
        move = {"key": "m1", "from_purse": "base", "to_purse": "cafeteria", "amount_yen": 1000}
        async with client.post(
            node.url + "/api/v1/member/wallet/moves", json=move, headers=read
        ) as r:
            assert r.status == 403 and (await r.json())["reason"] == "insufficient_scope"
        code, verifier = await authorize(client, node, csrf, "wallet:read wallet:pay")
        status, pay_token = await redeem_code(client, node, code, verifier)
        assert status == 200 and pay_token["scope"] == "wallet:read wallet:pay"
        pay = {"Authorization": f"Bearer {pay_token['access_token']}"}
        async with client.post(
            node.url + "/api/v1/member/wallet/moves", json=move, headers=pay
        ) as r:
            assert r.status == 200 and (await r.json())["balances"]["cafeteria"] == 1000
        status, grants = await call(client, node, "GET", "/api/v1/wallet-auth/grants")
        assert status == 200 and len(grants["grants"]) == 3
        # The grant whose code was presented twice is listed, revoked.
        assert sorted(g["active"] for g in grants["grants"]) == [False, True, True]
        grant_id = next(g["grant_id"] for g in grants["grants"] if "wallet:pay" in g["scope"])
        status, _ = await call(
            client,
            node,
            "POST",
            "/api/v1/wallet-auth/grants/revoke",
            {"grant_id": grant_id},
            csrf=csrf,
        )
        assert status == 200
        async with client.get(node.url + "/api/v1/member/wallet", headers=pay) as response:
            assert response.status == 401  # Revoked by the member.
        async with client.post(
            node.url + "/oauth/revoke",
            data={"token": read_token["access_token"], "client_id": "mypage"},
        ) as response:
            assert response.status == 200
        async with client.get(node.url + "/api/v1/member/wallet", headers=read) as response:
            assert response.status == 401


async def test_staff_sign_in_resume_change_mail_and_audit(node: NodeProcess) -> None:
    member = Member("staffed")
    staff_id = f"clerk{secrets.randbelow(10**6)}"
    staff_password = remember("Counter-Clerk-2026!")
    async with session() as client:
        await enrol(client, node, member)
        status, created = await call(
            client,
            node,
            "POST",
            "/api/v1/staff/accounts",
            {"staff_id": staff_id, "name": "窓口 一郎", "password": staff_password},
            token=node.token,
        )
        assert status == 201 and created["qr_svg"].startswith("<svg"), created
        secret = remember(created["secret"])
        status, flow = await call(
            client,
            node,
            "POST",
            "/api/v1/staff/sign-in",
            {"staff_id": staff_id, "password": staff_password},
        )
        assert status == 200 and flow["methods"] == ["totp"], flow
        verify = {"flow_id": flow["flow_id"], "code": passcodes.totp_code(secret, time.time())}
        status, signed_in = await call(client, node, "POST", "/api/v1/staff/sign-in/verify", verify)
        assert status == 200 and signed_in["kind"] == "staff", signed_in
        csrf = remember(signed_in["csrf_token"])
        status, _ = await call(
            client, node, "POST", f"/api/v1/wallets/{member.member_no}/suspend", token=node.token
        )
        assert status == 200
        path = f"/api/v1/staff/members/{member.member_no}"
        status, _ = await call(client, node, "POST", f"{path}/resume")
        assert status == 403
        status, _ = await call(client, node, "POST", f"{path}/resume", csrf=csrf)
        assert status == 200
        status, wallet = await call(
            client, node, "GET", f"/api/v1/wallets/{member.member_no}", token=node.token
        )
        assert wallet["status"] == "active"
        status, _ = await call(
            client, node, "POST", f"{path}/mail", {"mail": f"counter-{member.mail}"}, csrf=csrf
        )
        assert status == 200
        # A counter clerk's role does not grant the audit log: 403, saying what it lacks.
        status, refused = await call(client, node, "GET", "/api/v1/staff/audit?limit=50")
        assert status == 403 and refused["reason"] == "forbidden", refused
        assert "audit.read" in refused["message"]
        status, audit = await call(
            client, node, "GET", "/api/v1/staff/audit?limit=50", token=node.token
        )
        assert status == 200, audit
        mine = [
            (e["actor"], e["action"])
            for e in audit["entries"]
            if e["target"] in (member.member_no, staff_id)
        ]
        assert (f"staff:{staff_id}", "member.change_mail") in mine
        assert (f"staff:{staff_id}", "member.resume") in mine
        # The machine token that enrolled the member and created the staff is named.
        assert ("token:harness", "member.enrol") in mine
        assert ("token:harness", "staff.create") in mine


async def test_unknown_and_known_members_answer_alike_in_similar_time(node: NodeProcess) -> None:
    member = Member("timing")
    async with session() as client:
        await enrol(client, node, member)
        await set_password(client, node, member)
        known = {"mail": member.mail, "password": "Not-The-One-1!"}
        unknown = {"mail": f"ghost-{member.mail}", "password": "Not-The-One-1!"}
        timings: dict[str, list[float]] = {"known": [], "unknown": []}
        answers = {}
        for _ in range(4):  # Below the lock-out.
            for name, body in (("known", known), ("unknown", unknown)):
                started = time.perf_counter()
                answers[name] = await call(client, node, "POST", "/api/v1/mypage/login", body)
                timings[name].append(time.perf_counter() - started)
        assert answers["known"] == answers["unknown"] and answers["known"][0] == 401
        ratio = statistics.median(timings["unknown"]) / statistics.median(timings["known"])
        assert 0.33 < ratio < 3.0, timings
        starts = [
            await call(client, node, "POST", "/api/v1/flows/password", {"mail": mail})
            for mail in (f"ghost2-{member.mail}", member.mail)
        ]
        # The known member is in its cool-down from set_password, the unknown address is
        # not; strip that and the flow ids, and the answers must be the same shape.
        assert {k for k in starts[0][1]} >= {"flow_id", "state", "resend_after_s"}
        status, locked = 0, {"reason": ""}
        for _ in range(2):
            status, locked = await call(client, node, "POST", "/api/v1/mypage/login", unknown)
        assert status == 429 and locked["reason"] == "locked"


def test_csv_import_for_the_start_of_term(node: NodeProcess, tmp_path: Path) -> None:
    members = [Member("csv"), Member("csv")]
    lines = [
        "member_no,name,kana,birth_date,mail,phone,coop,share_units,insurance,emoney_yen,meal_plan,meal_yen"
    ]
    lines += [
        f"{m.member_no},新入 生,シンニュウ セイ,2007-01-02,{m.mail},{m.phone_national},demo,10,"
        f"学生総合共済:14400;学生生活110番:9450,40000,meal-1000,96000"
        for m in members
    ]
    lines.append("209999999997,誤り,ゴ,2007-13-45,bad,1,demo,10,,0,none,0")
    csv_file = tmp_path / "members.csv"
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    token_file = node.machine_token_file
    command = [
        sys.executable,
        "-m",
        "coopnode.node.cli",
        "--config",
        str(TEST_CONFIG),
        "admin",
        "import-members",
        str(csv_file),
        "--node",
        node.url,
        "--token-file",
        str(token_file),
    ]
    env = {**os.environ, "COOPNODE_LOG__FORMAT": "json"}
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 1, first.stdout + first.stderr  # The bad row.
    assert first.stdout.count("mail sent") == 2 and "2 of 3 rows done" in first.stdout
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=120)
    assert again.stdout.count("already enrolled") == 2, again.stdout
    status, page = node.request("GET", f"/dev/outbox.json?to={members[0].mail}")
    assert status == 200 and len(page["messages"]) == 1, page
    body = page["messages"][0]["body"]
    assert "学生生活110番：9,450円" in body and "合計：179,850円" in body


def test_no_secret_in_the_data_directory_or_the_logs(node: NodeProcess) -> None:
    """Passwords, codes, session ids, CSRF and OAuth tokens and TOTP secrets seen by the
    tests above appear nowhere under the node's data directory: LMDB files, Ray's session
    logs, the node's log.
    """
    assert len(SEEN_SECRETS) > 20, SEEN_SECRETS
    long_secrets = [secret.encode() for secret in SEEN_SECRETS if len(secret) > 6]
    # A six-digit code could match a run of digits by chance (a port, a microsecond), so
    # it counts only where it stands alone: not inside a longer word or number.
    codes = re.compile(
        rb"(?<![0-9A-Za-z.])("
        + b"|".join(secret.encode() for secret in SEEN_SECRETS if len(secret) == 6)
        + rb")(?![0-9A-Za-z])"
    )
    found: dict[str, str] = {}
    for path in node.data_dir.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue  # Sockets and files that vanished meanwhile.
        for secret in long_secrets:
            if secret in data:
                found[secret.decode()] = str(path)
        for match in codes.finditer(data):
            found[match.group(1).decode()] = str(path)
    assert not found, found
