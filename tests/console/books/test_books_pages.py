"""An accountant's walk through the books in Chromium against a real node, in Japanese and
in English: the day's settlement, a day closed, the CSV downloaded, the reconciliation's
made mismatch, and the unused-balance report.

The node's clock is the machine's: today's figures are shown but today cannot be closed;
an earlier day of the walk's own (so that the two languages' walks do not meet) is
closed by the accountant, and the page says by whom.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import Page, expect

from coopnode.actors.kernel.clock import system_ms
from coopnode.domain.books import day_of_ms
from coopnode.domain.staff import Role
from tests.console.conftest import Words, make_staff, sign_in
from tests.nodeproc import NodeProcess


def _book_a_day(node: NodeProcess, store: str, charge_id: str) -> str:
    """A member who pays 1,250 yen at `store` and is credited a card charge nobody
    captured (the reconciliation's mismatch); the member's number."""
    member = f"2026{secrets.randbelow(10**8):08d}"
    body = {
        "key": "enrol",
        "member_no": member,
        "coop": "demo",
        "meal_plan": "meal-1000",
        "deposits": {"meal": 50_000, "base": 20_000},
    }
    status, answer = node.request("POST", "/api/v1/wallets", body)
    assert status == 201, answer
    status, answer = node.request(
        "POST",
        f"/api/v1/wallets/{member}/payments",
        {
            "key": f"{store}-1",
            "amount_yen": 1_250,
            "till_kind": "cafeteria",
            "store": store,
            "till_id": f"{store}-till",
        },
    )
    assert status == 200, answer
    status, answer = node.request(
        "POST",
        f"/api/v1/wallets/{member}/charges",
        {"key": f"charge:{charge_id}", "purse": "base", "amount_yen": 2_000, "source": "card"},
    )
    assert status == 200, answer
    return member


def test_an_accountants_day(
    node: NodeProcess, page: Page, words: Words, lang: str, tmp_path: Path
) -> None:
    store = f"walk-{lang}-{secrets.randbelow(10**6)}"
    charge_id = f"walk{lang}{secrets.randbelow(10**8)}"
    _book_a_day(node, store, charge_id)
    today = day_of_ms(system_ms()).isoformat()
    accountant = make_staff(node, Role.ACCOUNTANT, "acc")
    sign_in(page, accountant, f"/console/books?day={today}")

    # Today's settlement: the walk's sale by purse, open, and not closable yet.
    expect(page.locator("h1")).to_contain_text(words("日計", "Daily settlement"))
    expect(page.locator("#open-note")).to_be_visible()
    expect(page.locator(f"#sales-{store} td")).to_have_text("1,250")
    sale_rows = page.locator("#figures tr", has_text=store)
    expect(sale_rows).to_have_count(2)
    expect(sale_rows.filter(has_text=words("ミール", "Meal"))).to_contain_text("1,000")
    expect(page.locator("#sales-chart")).to_be_visible()
    assert page.locator("#sales-chart").evaluate("image => image.naturalWidth") > 0
    expect(page.locator("#meal-chart")).to_be_visible()
    assert page.locator("#meal-chart").evaluate("image => image.naturalWidth") > 0
    page.click("#close-day")
    expect(page.locator("#books-error")).to_have_text(
        words(
            "この日はまだ終わっていないため締められません。",
            "This day is not over yet, so it cannot be closed.",
        )
    )

    # The CSV as Excel opens it: UTF-8 with a BOM, its header in the page's language.
    with page.expect_download() as downloading:
        page.click("#csv-utf8")
    saved = tmp_path / "settlement.csv"
    downloading.value.save_as(saved)
    body = saved.read_bytes()
    assert body.startswith(b"\xef\xbb\xbf")
    assert body.decode("utf-8-sig").startswith(words("日付,店舗,端末", "Day,Store,Till"))
    assert f"{today},{store},{store}-till,sale,base,,250,1" in body.decode("utf-8-sig")
    with page.expect_download() as downloading:
        page.click("#csv-sjis")
    downloading.value.save_as(saved)
    assert saved.read_bytes().decode("cp932").startswith(words("日付,店舗", "Day,Store"))

    # A day of the walk's own, in the past, closed by the accountant: closed once.
    past = (day_of_ms(system_ms()) - timedelta(days=30 + secrets.randbelow(3000))).isoformat()
    page.fill("#day", past)
    page.click("#day-show")
    expect(page.locator("#settlement-day")).to_have_text(past)
    page.click("#close-day")
    expect(page).to_have_url(re.compile(rf"/console/books\?day={past}$"))
    expect(page.locator("#closed-note")).to_contain_text(f"staff:{accountant.staff_id}")
    expect(page.locator("#close-day")).to_have_count(0)
    # The closing is in the audit log under the accountant's name.
    page.click("#menu-audit")
    closing = page.locator("#audit-table tr", has_text=past).filter(has_text="books.close")
    expect(closing.locator(".actor")).to_have_text(f"staff:{accountant.staff_id}")

    # The reconciliation of today: the card credit nobody captured, with both sides.
    page.click("#menu-books-reconciliation")
    page.fill("#day", today)
    page.click("#day-show")
    mismatch = page.locator(f"#mismatch-{charge_id}")
    expect(mismatch.locator(".problem")).to_have_text(
        words("決済の記録がありません", "No payment behind the credit")
    )
    expect(mismatch).to_contain_text("2,000")

    # The unused-balance report as of today's 24:00, as the API computes it.
    page.click("#menu-books-unused-balance")
    expect(page.locator("h1")).to_have_text(words("未使用残高報告", "Unused balance report"))
    page.fill("#date", today)
    page.click("#date-show")
    status, report = node.request("GET", f"/api/v1/books/unused-balance?date={today}")
    assert status == 200, report
    expect(page.locator("#unused-total td")).to_have_text(f"{report['total_yen']:,}")
    expect(page.locator("#as-of")).to_contain_text(today)
    with page.expect_download() as downloading:
        page.click("#unused-csv")
    downloading.value.save_as(saved)
    rows = saved.read_bytes().decode("utf-8-sig").splitlines()
    assert rows[0] == words("基準日,財布,金額（円）", "Reference date,Purse,Amount (yen)")


def test_a_store_manager_reads_the_day_but_neither_closes_it_nor_sees_the_reports(
    node: NodeProcess, page: Page, words: Words
) -> None:
    manager = make_staff(node, Role.STORE_MANAGER, "mgr")
    yesterday = (day_of_ms(system_ms()) - timedelta(days=1)).isoformat()
    sign_in(page, manager, f"/console/books?day={yesterday}")
    expect(page.locator("h1")).to_contain_text(words("日計", "Daily settlement"))
    expect(page.locator("#csv-utf8")).to_be_visible()
    expect(page.locator("#close-day")).to_have_count(0)
    expect(page.locator("#menu-books")).to_be_visible()
    expect(page.locator("#menu-books-reconciliation")).to_have_count(0)
    expect(page.locator("#menu-books-unused-balance")).to_have_count(0)
    refused = page.goto("/console/books/unused-balance")
    assert refused is not None and refused.status == 403
    expect(page.locator("#unused-total")).to_have_count(0)
