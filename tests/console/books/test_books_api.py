"""The books' routes on a real node: Ray shards, the payments actor, HTTP.

The node's clock is the machine's, so today cannot be closed (it is not over) and a day
two days back, with nothing booked, can; the figures of a day with entries are closed in
`test_day_closing.py` with a clock the test moves.
"""

from __future__ import annotations

import csv
import io
import urllib.request
from datetime import date, timedelta

import pytest

from coopnode.actors.kernel.clock import system_ms
from coopnode.domain.books import day_of_ms
from tests.nodeproc import NodeProcess

pytestmark = pytest.mark.slow

MEMBER = "202613000001"


def raw_get(node: NodeProcess, path: str) -> tuple[int, str, bytes]:
    request = urllib.request.Request(node.url + path)
    request.add_header("Authorization", f"Bearer {node.token}")
    with urllib.request.urlopen(request, timeout=60, context=node.ssl_context) as answer:
        return answer.status, answer.headers.get("Content-Type", ""), answer.read()


@pytest.fixture(scope="module")
def booked(node: NodeProcess) -> NodeProcess:
    body = {
        "key": "enrol",
        "member_no": MEMBER,
        "coop": "demo",
        "meal_plan": "meal-1000",
        "deposits": {"meal": 50_000, "base": 20_000},
    }
    status, answer = node.request("POST", "/api/v1/wallets", body)
    assert status == 201, answer
    status, answer = node.request(
        "POST",
        f"/api/v1/wallets/{MEMBER}/payments",
        {
            "key": "books-tap-1",
            "amount_yen": 1_250,
            "till_kind": "cafeteria",
            "store": "books-cafe",
            "till_id": "bc-1",
        },
    )
    assert status == 200, answer
    # A card credit no acquirer captured: the reconciliation's made mismatch.
    status, answer = node.request(
        "POST",
        f"/api/v1/wallets/{MEMBER}/charges",
        {"key": "charge:made-mismatch", "purse": "base", "amount_yen": 3_000, "source": "card"},
    )
    assert status == 200, answer
    return node


def today() -> date:
    return day_of_ms(system_ms())


def test_today_settles_but_does_not_close(booked: NodeProcess) -> None:
    day = today().isoformat()
    status, settled = booked.request("GET", f"/api/v1/books/days/{day}")
    assert status == 200, settled
    assert settled["closed"] is False
    mine = [f for f in settled["sums"]["figures"] if f["store"] == "books-cafe"]
    assert {(f["line"], f["purse"], f["yen"]) for f in mine} == {
        ("sale", "meal", 1_000),
        ("sale", "base", 250),
    }
    assert settled["sums"]["accounts"]["sales:books-cafe"] == 1_250
    status, refused = booked.request("POST", f"/api/v1/books/days/{day}/close")
    assert status == 409 and refused["reason"] == "day_not_over", refused


def test_a_past_day_closes_once(booked: NodeProcess) -> None:
    # Two days back: yesterday cannot be closed in the first minutes after midnight JST
    # (the books wait out a clock's step back), and the test must not depend on the hour.
    day = (today() - timedelta(days=2)).isoformat()
    status, closed = booked.request("POST", f"/api/v1/books/days/{day}/close")
    assert status == 200, closed
    # Whoever the node's client is (the staff token, or a machine's API token): named.
    assert closed["closed"] is True and closed["closed_by"]
    status, again = booked.request("POST", f"/api/v1/books/days/{day}/close")
    assert status == 200 and again["closed_at_ms"] == closed["closed_at_ms"]
    status, read = booked.request("GET", f"/api/v1/books/days/{day}")
    assert status == 200 and read == closed


def test_the_csv_opens_in_excel_in_either_encoding(booked: NodeProcess) -> None:
    day = today().isoformat()
    status, kind, body = raw_get(booked, f"/api/v1/books/days/{day}/settlement.csv")
    assert status == 200 and kind == "text/csv; charset=utf-8"
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:3] == ["日付", "店舗", "端末"]
    assert [day, "books-cafe", "bc-1", "sale", "base", "", "250", "1"] in rows
    status, kind, sjis = raw_get(
        booked, f"/api/v1/books/days/{day}/settlement.csv?encoding=shift_jis&lang=en"
    )
    assert status == 200 and kind == "text/csv; charset=shift_jis"
    assert not sjis.startswith(b"\xef\xbb\xbf")
    assert sjis.decode("cp932").startswith("Day,Store,")
    status, _, japanese = raw_get(
        booked, f"/api/v1/books/days/{day}/settlement.csv?encoding=shift_jis"
    )
    assert japanese.decode("cp932").startswith("日付,店舗")
    status, kind, svg = raw_get(booked, f"/api/v1/books/days/{day}/sales-by-hour.svg")
    assert status == 200 and kind.startswith("image/svg+xml") and svg.startswith(b"<svg")
    assert b"books-cafe" in svg


def test_the_unused_balance_of_today_is_what_members_hold(booked: NodeProcess) -> None:
    status, report = booked.request("GET", f"/api/v1/books/unused-balance?date={today()}")
    assert status == 200, report
    status, audit = booked.request("GET", "/api/v1/audit")
    held = sum(shard["members_total_yen"] for shard in audit["shards"])
    assert report["total_yen"] + report["points_yen"] == held
    status, _, body = raw_get(booked, f"/api/v1/books/unused-balance.csv?date={today()}")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == ["基準日", "財布", "金額（円）"]
    assert rows[-2] == [today().isoformat(), "未使用残高合計", str(report["total_yen"])]
    status, default = booked.request("GET", "/api/v1/books/unused-balance")
    assert status == 200 and default["reference_date"][5:] in ("03-31", "09-30")


def test_a_card_credit_nobody_captured_is_a_mismatch(booked: NodeProcess) -> None:
    status, result = booked.request("GET", f"/api/v1/books/reconciliation/{today()}")
    assert status == 200, result
    [made] = [m for m in result["mismatches"] if m["charge_id"] == "made-mismatch"]
    assert made["problem"] == "no_payment"
    assert (made["journal_yen"], made["payments_yen"], made["payments_status"]) == (3_000, 0, "")


def test_the_meal_chart_reads_the_closed_days(booked: NodeProcess) -> None:
    first = (today() - timedelta(days=7)).isoformat()
    status, kind, svg = raw_get(
        booked, f"/api/v1/books/meal-use.svg?first={first}&last={today()}&lang=en"
    )
    assert status == 200 and kind.startswith("image/svg+xml") and svg.startswith(b"<svg")
    assert b"Meal-plan use" in svg
    status, refused = booked.request(
        "GET", "/api/v1/books/meal-use.svg?first=2026-01-01&last=2025-01-01"
    )
    assert status == 400 and refused["reason"] == "invalid_input"
