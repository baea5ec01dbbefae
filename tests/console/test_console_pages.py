"""The console in Chromium against a real node, in Japanese and in English: sign-in with
the authenticator code, the menu each role sees, staff creation and role changes, and a
machine's API token made, used and revoked."""

from __future__ import annotations

import re

from playwright.sync_api import Page, ViewportSize, expect

from coopnode.domain.staff import Role
from coopnode.http.console.audit import AUDIT_PAGE_LINES
from tests.console.conftest import TABLET, Words, accessible, make_staff, sign_in
from tests.nodeproc import NodeProcess

ANY_WALLET = "/api/v1/wallets/202600000001"
COUNTER_PC: ViewportSize = {"width": 1366, "height": 768}


def test_a_staff_member_signs_in_with_the_code_and_out_again(
    node: NodeProcess, page: Page, words: Words
) -> None:
    # More than a page of the audit log (50 entries): a clerk's role changed back and forth.
    clerk = make_staff(node, Role.COUNTER_CLERK, "clk")
    for turn in range(AUDIT_PAGE_LINES + 1):
        role = Role.STORE_MANAGER if turn % 2 == 0 else Role.COUNTER_CLERK
        path = f"/api/v1/staff/accounts/{clerk.staff_id}/role"
        assert node.request("POST", path, {"role": role})[0] == 200
    admin = make_staff(node, Role.ADMINISTRATOR, "adm")
    page.goto("/console/audit")
    # Not signed in: the sign-in page, and back to the page asked for afterwards.
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next=%2Fconsole%2Faudit$"))
    expect(page.locator("h1")).to_have_text(words("スタッフ サインイン", "Staff sign-in"))
    accessible(page)
    page.fill("#staff_id", admin.staff_id)
    page.fill("#password", "Not-The-Password-1!")
    page.click("#sign-in-submit")
    expect(page.locator("#sign-in-error")).to_be_visible()
    page.fill("#password", admin.password)
    page.click("#sign-in-submit")
    expect(page.locator("h1")).to_have_text(words("認証アプリのコード", "Authenticator code"))
    accessible(page)
    page.fill("#code", "000000" if admin.code() != "000000" else "111111")
    page.click("#totp-submit")
    expect(page.locator("#totp-error")).to_be_visible()
    page.fill("#code", admin.code())
    page.click("#totp-submit")
    expect(page).to_have_url(re.compile(r"/console/audit$"))
    expect(page.locator("#signed-in-as")).to_contain_text(words("管理者", "Administrator"))
    accessible(page)
    # The account's creation is in the audit log under the machine token that made it.
    created = page.locator("#audit-table tr", has_text=admin.staff_id)
    expect(created.locator(".actor")).to_have_text("token:harness")
    # Newest first, a page at a time: the next page holds older entries only.
    numbers = [
        int(n) for n in page.locator("#audit-table tbody tr td:first-child").all_inner_texts()
    ]
    assert numbers == sorted(numbers, reverse=True)
    page.click("#audit-older")
    older = page.locator("#audit-table tbody tr td:first-child").all_inner_texts()
    assert older and max(int(n) for n in older) < min(numbers)
    page.click("#audit-newest")
    # The menu holds what an administrator may do; the language switch keeps the page.
    for item in ("#menu-staff", "#menu-tokens", "#menu-audit"):
        expect(page.locator(item)).to_be_visible()
    page.click("#lang-switch")
    expect(page).to_have_url(re.compile(r"/console/audit$"))
    expect(page.locator("h1")).to_have_text(words("Audit log", "操作記録"))
    page.click("#sign-out")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.goto("/console")
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))


def test_a_counter_clerk_sees_only_what_the_role_may_and_is_refused_the_rest(
    node: NodeProcess, page: Page, words: Words
) -> None:
    clerk = make_staff(node, Role.COUNTER_CLERK, "clk")
    sign_in(page, clerk)
    expect(page.locator("#signed-in-as")).to_contain_text(words("窓口", "Counter clerk"))
    for item in ("#menu-staff", "#menu-tokens", "#menu-audit"):
        expect(page.locator(item)).to_have_count(0)
    response = page.goto("/console/staff")
    assert response is not None and response.status == 403
    accessible(page)
    expect(page.locator("#page-error")).to_contain_text(words("スタッフの管理", "Manage staff"))
    # An address that is no page answers in the console's frame, with the way home.
    response = page.goto("/console/no-such-page")
    assert response is not None and response.status == 404
    expect(page.locator("#error-home")).to_have_attribute("href", "/console")


def test_an_administrator_creates_staff_changes_a_role_and_disables_an_account(
    node: NodeProcess, page: Page, words: Words
) -> None:
    admin = make_staff(node, Role.ADMINISTRATOR, "adm")
    sign_in(page, admin)
    # On the tablet the menu sits above the page, nothing wider than the screen; on the
    # counter PC it stands at the left of the page.
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    menu, main = page.locator("#menu").bounding_box(), page.locator("main").bounding_box()
    assert menu is not None and main is not None and menu["y"] < main["y"]
    page.set_viewport_size(COUNTER_PC)
    menu, main = page.locator("#menu").bounding_box(), page.locator("main").bounding_box()
    assert menu is not None and main is not None and menu["x"] + menu["width"] <= main["x"]
    page.set_viewport_size(TABLET)
    page.click("#menu-staff")
    expect(page.locator("#staff-table")).to_be_visible()
    accessible(page)
    new_id = f"mgr{admin.staff_id[3:]}"
    page.fill("#new-staff-id", new_id)
    page.fill("#new-name", "店長 花子")
    page.select_option("#new-role", "store_manager")
    page.fill("#new-password", "Store-Manager-2026!")
    page.click("#staff-create")
    expect(page.locator("#staff-created")).to_contain_text(new_id)
    expect(page.locator("#staff-created")).to_contain_text(words("店長", "Store manager"))
    expect(page.locator("#totp-qr svg")).to_be_visible()
    expect(page.locator("#totp-secret")).not_to_be_empty()
    accessible(page)
    page.click("#back-to-staff")
    row = page.locator(f"#staff-{new_id}")
    expect(row.locator(".role")).to_have_text(words("店長", "Store manager"))
    page.select_option(f"#role-{new_id}", "accountant")
    page.click(f"#role-save-{new_id}")
    expect(row.locator(".role")).to_have_text(words("経理", "Accountant"))
    page.click(f"#disable-{new_id}")
    expect(row.locator(".status")).to_have_text(words("無効", "Disabled"))
    # Each change is in the audit log under the administrator who made it.
    status, audit = node.request("GET", "/api/v1/staff/audit?limit=100")
    assert status == 200, audit
    mine = {(e["actor"], e["action"]) for e in audit["entries"] if e["target"] == new_id}
    who = f"staff:{admin.staff_id}"
    assert mine == {(who, "staff.create"), (who, "staff.role"), (who, "staff.disable")}
    # A disabled account signs in no more: as a wrong password would.
    status, _ = node.request(
        "POST",
        "/api/v1/staff/sign-in",
        {"staff_id": new_id, "password": "Store-Manager-2026!"},
        token="",
    )
    assert status == 401


def test_an_administrator_makes_a_scoped_token_that_works_until_revoked(
    node: NodeProcess, page: Page, words: Words, lang: str
) -> None:
    admin = make_staff(node, Role.ADMINISTRATOR, "adm")
    sign_in(page, admin)
    page.click("#menu-tokens")
    expect(page.locator("#tokens-table")).to_be_visible()
    accessible(page)
    name = f"pos-{lang}-{admin.staff_id[3:]}"
    page.fill("#token-name", name)
    page.click("#token-create")
    expect(page.locator("#scopes-error")).to_be_visible()  # No scope chosen.
    page.check("#scope-members\\.read")
    page.click("#token-create")
    token = page.locator("#new-token").inner_text().strip()
    assert token.startswith("cn_")
    accessible(page)
    expect(page.locator(".notice")).to_contain_text(words("今だけ", "only now"))
    # The token reads a wallet (members.read); it may not suspend one (members.change).
    status, _ = node.request("GET", ANY_WALLET, token=token)
    assert status in (200, 404)
    status, refused = node.request("POST", f"{ANY_WALLET}/suspend", token=token)
    assert (status, refused["reason"]) == (403, "forbidden"), refused
    assert "members.change" in refused["message"]
    page.click("#back-to-tokens")
    row = page.locator(f"#token-{name}")
    expect(row).to_contain_text(words("組合員の照会", "Look up members"))
    page.click(f"#revoke-{name}")
    expect(row.locator(".status")).to_contain_text(words("失効", "Revoked"))
    status, refused = node.request("GET", ANY_WALLET, token=token)
    assert (status, refused["reason"]) == (401, "unauthorized"), refused
    status, audit = node.request("GET", "/api/v1/staff/audit?limit=100")
    mine = {(e["actor"], e["action"]) for e in audit["entries"] if e["target"] == f"token:{name}"}
    who = f"staff:{admin.staff_id}"
    assert mine == {(who, "token.create"), (who, "token.revoke")}
