"""The books' files: CSV that Excel reads in either encoding, SVG that escapes its texts."""

from __future__ import annotations

from coopnode.catalogues import catalogue
from coopnode.domain.books import DaySums, Figure, Line
from coopnode.http.console.books import charts
from coopnode.http.console.books.csv_files import CsvEncoding, encode, settlement_rows

SUMS = DaySums(
    day="2026-06-01",
    entries=1,
    figures=[
        Figure(store="北食堂", till_id="n-1", line=Line.SALE, purse="meal", source="",
               yen=1_000, entries=1),
    ],
    accounts={"sales:北食堂": 1_000, "purses:meal": -1_000},
    hourly_sales={"北食堂": [0] * 12 + [1_000] + [0] * 11},
    corrections=[],
)  # fmt: skip


def test_utf8_has_a_bom_and_shift_jis_is_cp932_with_crlf() -> None:
    rows = settlement_rows(SUMS, catalogue("ja"))
    utf8 = encode(rows, CsvEncoding.UTF8_BOM)
    assert utf8.startswith(b"\xef\xbb\xbf")
    assert utf8.decode("utf-8-sig").splitlines()[1] == "2026-06-01,北食堂,n-1,sale,meal,,1000,1"
    sjis = encode(rows, CsvEncoding.SHIFT_JIS)
    assert sjis.decode("cp932").startswith("日付,店舗,端末")
    assert b"\r\n" in sjis and "北食堂".encode("cp932") in sjis
    # A character Shift_JIS lacks becomes "?" rather than failing the download.
    assert encode([["🍙"]], CsvEncoding.SHIFT_JIS) == b"?\r\n"


def test_the_charts_escape_their_texts() -> None:
    svg = charts.sales_by_hour('<売上> & "時間"', {"a<b": [1] * 24})
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "&lt;売上&gt; &amp; &quot;時間&quot;" in svg and "a&lt;b" in svg
    assert "<b" not in svg.replace("<svg", "")
    empty = charts.meal_use("ミール", "ミール利用額", [])
    assert empty.startswith("<svg") and "<polyline" in empty
