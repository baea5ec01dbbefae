"""The counter's API on a real node: each action as a clerk does it, audited under the
clerk, and each action's refusals, which change nothing."""

from __future__ import annotations

import secrets
from typing import Any

import aiohttp
import pytest

from tests.console.counter.conftest import (
    Clerk,
    bind_card,
    enrolled,
    shop_tap,
    sign_in_clerk,
)
from tests.identity.nodeclient import PASSWORD, Member, call, session, set_password
from tests.nodeproc import NodeProcess

pytestmark = pytest.mark.slow

M = "/api/v1/counter/members"


async def as_clerk(
    client: aiohttp.ClientSession,
    node: NodeProcess,
    clerk: Clerk,
    method: str,
    path: str,
    body: Any = None,
) -> tuple[int, Any]:
    return await call(client, node, method, path, body, csrf=clerk.csrf)


async def file_of(
    client: aiohttp.ClientSession, node: NodeProcess, clerk: Clerk, member: Member
) -> dict[str, Any]:
    status, file = await as_clerk(client, node, clerk, "GET", f"{M}/{member.member_no}")
    assert status == 200, file
    return dict(file)


async def audit_of(
    client: aiohttp.ClientSession, node: NodeProcess, member: Member
) -> list[tuple[str, str]]:
    status, audit = await call(client, node, "GET", "/api/v1/staff/audit?limit=100")
    assert status == 200, audit
    return [(e["actor"], e["action"]) for e in audit["entries"] if e["target"] == member.member_no]


async def test_a_clerk_finds_a_member_by_number_kana_mail_and_card(
    counter_node: NodeProcess,
) -> None:
    node = counter_node
    async with session() as client:
        clerk = await sign_in_clerk(client, node)
        member = await enrolled(client, node, "finder")
        idm = await bind_card(client, node, member)
        for by, query in (
            ("member_no", member.member_no),
            ("kana", "しけん"),  # hiragana finds the katakana シケン タロウ
            ("kana", "ｼｹﾝﾀﾛｳ"),  # so does half-width katakana without the space
            ("mail", member.mail.upper()),
            ("card", idm),
        ):
            status, found = await as_clerk(client, node, clerk, "GET", f"{M}?by={by}&q={query}")
            assert status == 200, (by, found)
            numbers = [card["member_no"] for card in found["members"]]
            assert member.member_no in numbers, (by, query, found)
            assert len(numbers) <= 20
        status, found = await as_clerk(client, node, clerk, "GET", f"{M}?by=card&q={'0' * 16}")
        assert status == 200 and found["members"] == []
        for bad in ("by=name&q=x", "by=kana&q=", f"by=kana&q={'ア' * 255}", "by=kana"):
            status, refused = await as_clerk(client, node, clerk, "GET", f"{M}?{bad}")
            assert status == 400 and refused["reason"] == "invalid_input", (bad, refused)
        file = await file_of(client, node, clerk, member)
        assert file["account"]["kana"] == "シケン タロウ"
        assert file["share_capital_yen"] == 20_000  # 10 shares of 2,000 yen
        assert file["wallet"]["balances"]["base"] == 40_000
        assert [card["idm"] for card in file["cards"]] == [idm]
        assert file["overdrafts"] == [] and file["desk"]["inquiries"] == []


async def test_without_a_session_or_its_csrf_token_nothing_is_done(
    counter_node: NodeProcess,
) -> None:
    node = counter_node
    async with session() as client:
        member = await enrolled(client, node, "nocsrf")
        status, _ = await call(client, node, "GET", f"{M}/{member.member_no}")
        assert status == 401
        clerk = await sign_in_clerk(client, node)
        body = {"key": "w-1", "refund_yen": 0}
        status, refused = await call(
            client, node, "POST", f"{M}/{member.member_no}/withdrawal", body
        )
        assert status == 403 and refused["reason"] == "csrf", refused
        file = await file_of(client, node, clerk, member)
        assert file["wallet"]["status"] == "active"


async def test_a_lost_card_is_blocked_and_the_new_one_carries_the_balance(
    counter_node: NodeProcess,
) -> None:
    node = counter_node
    async with session() as client:
        clerk = await sign_in_clerk(client, node)
        member = await enrolled(client, node, "lostcard")
        old = await bind_card(client, node, member)
        await shop_tap(client, node, member, 430)
        new = secrets.token_hex(8)
        path = f"{M}/{member.member_no}/card"
        status, answer = await as_clerk(client, node, clerk, "POST", path, {"new_idm": new})
        assert status == 200, answer
        assert answer["blocked"]["idm"] == old and answer["blocked"]["status"] == "lost"
        assert answer["issued"]["idm"] == new and answer["issued"]["status"] == "active"
        file = await file_of(client, node, clerk, member)
        assert [(c["idm"], c["status"]) for c in file["cards"]] == [(new, "active"), (old, "lost")]
        assert file["wallet"]["balances"]["base"] == 40_000 - 430
        status, deny = await call(client, node, "GET", "/api/v1/deny-list", token=node.token)
        assert old in deny["idms"] and new not in deny["idms"]
        mine = await audit_of(client, node, member)
        actor = f"staff:{clerk.staff_id}"
        assert (actor, "counter.card_lost") in mine and (actor, "counter.card_issued") in mine


async def test_card_refusals_change_nothing(counter_node: NodeProcess) -> None:
    node = counter_node
    async with session() as client:
        clerk = await sign_in_clerk(client, node)
        member = await enrolled(client, node, "cardrefused")
        other = await enrolled(client, node, "cardowner")
        idm = await bind_card(client, node, member)
        taken = await bind_card(client, node, other)
        path = f"{M}/{member.member_no}/card"
        for body, status_wanted, reason in (
            ({"new_idm": taken}, 409, "duplicate"),
            ({"new_idm": "NOT-HEX"}, 400, "invalid_input"),
            ({"new_idm": idm, "extra": 1}, 400, "invalid_input"),
        ):
            status, refused = await as_clerk(client, node, clerk, "POST", path, body)
            assert status == status_wanted and refused["reason"] == reason, (body, refused)
        file = await file_of(client, node, clerk, member)
        assert [(c["idm"], c["status"]) for c in file["cards"]] == [(idm, "active")]
        status, refused = await as_clerk(client, node, clerk, "POST", f"{M}/000000000000/card", {})
        assert status == 404 and refused["reason"] == "unknown_member"


async def test_the_address_changes_only_with_the_members_birth_date(
    counter_node: NodeProcess,
) -> None:
    node = counter_node
    async with session() as client:
        clerk = await sign_in_clerk(client, node)
        member = await enrolled(client, node, "mailchange")
        other = await enrolled(client, node, "mailowner")
        path = f"{M}/{member.member_no}/mail"
        new_mail = f"new-{member.mail}"
        good = {"mail": new_mail, "birth_date": member.birth_date, "identification": "student_card"}
        for body, status_wanted, reason in (
            ({**good, "birth_date": "2001-01-01"}, 404, "no_match"),
            ({**good, "mail": other.mail}, 409, "mail_in_use"),
            ({**good, "mail": "not an address"}, 400, "invalid_mail"),
            ({**good, "identification": "library_card"}, 400, "invalid_input"),
            ({"mail": new_mail, "birth_date": member.birth_date}, 400, "invalid_input"),
        ):
            status, refused = await as_clerk(client, node, clerk, "POST", path, body)
            assert status == status_wanted and refused["reason"] == reason, (body, refused)
        assert (await file_of(client, node, clerk, member))["account"]["mail"] == member.mail
        status, file = await as_clerk(client, node, clerk, "POST", path, good)
        assert status == 200 and file["account"]["mail"] == new_mail, file
        status, audit = await call(client, node, "GET", "/api/v1/staff/audit?limit=100")
        [entry] = [
            e for e in audit["entries"]
            if e["target"] == member.member_no and e["action"] == "counter.change_mail"
        ]  # fmt: skip
        assert entry["actor"] == f"staff:{clerk.staff_id}"
        assert "identification: student_card" in entry["detail"]
        assert "birth date checked" in entry["detail"]


async def test_refunds_and_settling_within_the_rules(counter_node: NodeProcess) -> None:
    node = counter_node
    async with session() as client:
        clerk = await sign_in_clerk(client, node)
        member = await enrolled(client, node, "refunds")
        tap = await shop_tap(client, node, member, 1_000)
        path = f"{M}/{member.member_no}/payments/{tap['key']}"
        for suffix, body, status_wanted, reason in (
            ("refund", {"key": "r-1", "amount_yen": 1_001}, 422, "refund_exceeds_payment"),
            ("refund", {"key": "r-1", "amount_yen": 0}, 400, "invalid_input"),
            ("refund", {"key": "bad key!", "amount_yen": 100}, 400, "invalid_input"),
            ("settle", {"key": "s-1"}, 409, "nothing_owed"),
        ):
            status, refused = await as_clerk(client, node, clerk, "POST", f"{path}/{suffix}", body)
            assert status == status_wanted and refused["reason"] == reason, (suffix, body, refused)
        unknown = f"{M}/{member.member_no}/payments/till-test:none/refund"
        status, refused = await as_clerk(
            client, node, clerk, "POST", unknown, {"key": "r-2", "amount_yen": 1}
        )
        assert status == 404 and refused["reason"] == "unknown_payment"
        assert (await file_of(client, node, clerk, member))["wallet"]["balances"]["base"] == 39_000
        body = {"key": "r-3", "amount_yen": 400}
        for _ in range(2):  # a double submit books once
            status, booked = await as_clerk(client, node, clerk, "POST", f"{path}/refund", body)
            assert status == 200 and booked["kind"] == "refund", booked
        assert (await file_of(client, node, clerk, member))["wallet"]["balances"]["base"] == 39_400
        assert (f"staff:{clerk.staff_id}", "counter.refund") in await audit_of(client, node, member)


async def test_resume_at_the_counter(counter_node: NodeProcess) -> None:
    node = counter_node
    async with session() as client:
        clerk = await sign_in_clerk(client, node)
        member = await enrolled(client, node, "resume")
        idm = await bind_card(client, node, member)
        wallet = f"/api/v1/wallets/{member.member_no}"
        status, _ = await call(client, node, "POST", f"{wallet}/suspend", token=node.token)
        assert status == 200
        status, deny = await call(client, node, "GET", "/api/v1/deny-list", token=node.token)
        assert idm in deny["idms"]
        status, file = await as_clerk(client, node, clerk, "POST", f"{M}/{member.member_no}/resume")
        assert status == 200 and file["wallet"]["status"] == "active", file
        status, deny = await call(client, node, "GET", "/api/v1/deny-list", token=node.token)
        assert idm not in deny["idms"]
        assert (f"staff:{clerk.staff_id}", "member.resume") in await audit_of(client, node, member)


async def test_withdrawal_pays_back_under_the_rule_closes_the_wallet_and_keeps_the_books(
    counter_node: NodeProcess,
) -> None:
    node = counter_node
    async with session() as client:
        clerk = await sign_in_clerk(client, node)
        member = await enrolled(client, node, "withdraw")
        await set_password(client, node, member)
        idm = await bind_card(client, node, member)
        await shop_tap(client, node, member, 1_000)  # earns 10 points, forfeited
        path = f"{M}/{member.member_no}/withdrawal"
        status, shown = await as_clerk(client, node, clerk, "GET", path)
        assert status == 200, shown
        plan = shown["plan"]
        left, days = plan["term_days_left"], plan["term_days"]
        assert plan["refunded"]["meal"] == 96_000 * left // days  # pro rata of the term
        assert plan["refunded"]["base"] == 39_000 and plan["forfeited"]["points"] == 10
        assert plan["share_capital_yen"] == 20_000
        assert plan["refund_yen"] == plan["refunded"]["meal"] + 39_000 + 20_000
        for body, status_wanted, reason in (
            ({"key": "w-1", "refund_yen": plan["refund_yen"] + 1}, 409, "withdrawal_changed"),
            ({"key": "w-1", "refund_yen": -1}, 400, "invalid_input"),
            ({"refund_yen": plan["refund_yen"]}, 400, "invalid_input"),
        ):
            status, refused = await as_clerk(client, node, clerk, "POST", path, body)
            assert status == status_wanted and refused["reason"] == reason, (body, refused)
        assert (await file_of(client, node, clerk, member))["wallet"]["status"] == "active"
        sign_in = {"mail": member.mail, "password": PASSWORD}
        status, flow = await call(client, node, "POST", "/api/v1/portal/sign-in", sign_in)
        assert status == 200, flow  # a member signs in until they withdraw
        body = {"key": "w-2", "refund_yen": plan["refund_yen"]}
        status, booked = await as_clerk(client, node, clerk, "POST", path, body)
        assert status == 200 and booked["kind"] == "withdraw", booked
        status, again = await as_clerk(client, node, clerk, "POST", path, body)
        assert status == 200 and again == booked  # the same key answers the first result
        file = await file_of(client, node, clerk, member)
        assert file["wallet"]["status"] == "closed"
        assert sum(file["wallet"]["balances"].values()) == 0
        assert file["account"]["withdrawn_at_s"] > 0
        status, deny = await call(client, node, "GET", "/api/v1/deny-list", token=node.token)
        assert idm in deny["idms"]
        tap = {"key": "after", "amount_yen": 100, "till_kind": "shop", "store": "shop-main"}
        payments = f"/api/v1/wallets/{member.member_no}/payments"
        status, refused = await call(client, node, "POST", payments, tap, token=node.token)
        assert status == 403 and refused["reason"] == "account_closed", refused
        status, audit = await call(client, node, "GET", "/api/v1/audit", token=node.token)
        assert status == 200 and audit["balanced"], audit
        assert (f"staff:{clerk.staff_id}", "counter.withdraw") in await audit_of(
            client, node, member
        )
        # A member who withdrew signs in no more: the answer of an unknown address.
        status, refused = await call(client, node, "POST", "/api/v1/portal/sign-in", sign_in)
        assert status == 401 and refused["reason"] == "invalid_credentials", refused


async def test_a_counter_charge_is_handed_back_in_cash_within_the_rules(
    counter_node: NodeProcess,
) -> None:
    node = counter_node
    async with session() as client:
        clerk = await sign_in_clerk(client, node)
        member = await enrolled(client, node, "chargeback")
        charges = f"/api/v1/wallets/{member.member_no}/charges"
        for key, source in (("cash-1", "counter"), ("card-1", "card")):
            charge = {"key": key, "purse": "base", "amount_yen": 5_000, "source": source}
            status, booked = await call(client, node, "POST", charges, charge, token=node.token)
            assert status == 200, booked
        path = f"{M}/{member.member_no}/charges"
        for charge_key, body, status_wanted, reason in (
            ("cash-1", {"key": "cr-1", "amount_yen": 5_001}, 422, "refund_exceeds_payment"),
            ("card-1", {"key": "cr-2", "amount_yen": 1_000}, 422, "purse_not_allowed"),
            ("none-1", {"key": "cr-3", "amount_yen": 1_000}, 404, "unknown_payment"),
            ("cash-1", {"key": "cr-4"}, 400, "invalid_input"),
        ):
            status, refused = await as_clerk(
                client, node, clerk, "POST", f"{path}/{charge_key}/refund", body
            )
            assert status == status_wanted and refused["reason"] == reason, (charge_key, refused)
        assert (await file_of(client, node, clerk, member))["wallet"]["balances"]["base"] == 50_000
        body = {"key": "cr-5", "amount_yen": 5_000}
        status, booked = await as_clerk(client, node, clerk, "POST", f"{path}/cash-1/refund", body)
        assert status == 200 and booked["kind"] == "refund_charge", booked
        assert (await file_of(client, node, clerk, member))["wallet"]["balances"]["base"] == 45_000
        mine = await audit_of(client, node, member)
        assert (f"staff:{clerk.staff_id}", "counter.refund_charge") in mine
        status, audit = await call(client, node, "GET", "/api/v1/audit", token=node.token)
        assert status == 200 and audit["balanced"], audit
