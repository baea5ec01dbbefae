"""The books as CSV files that Excel opens as they are.

Excel reads a CSV without a byte-order mark in the system's code page, which on a
Japanese Windows is Shift_JIS (cp932): UTF-8 without a BOM shows 店舗 as mojibake. So a
file is UTF-8 with a BOM by default, and cp932 on request (`encoding=shift_jis`) for
older Excel and for accounting software that takes nothing else. Lines end in CRLF
(RFC 4180). The header row is the catalogue's, in the language asked for; the values are
codes and integers of yen, never formatted numbers, so that a spreadsheet adds them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from enum import StrEnum

from coopnode.catalogues import N_, Catalogue
from coopnode.domain.books import DaySums, UnusedBalance


class CsvEncoding(StrEnum):
    UTF8_BOM = "utf-8"
    SHIFT_JIS = "shift_jis"


def encode(rows: Iterable[Sequence[object]], encoding: CsvEncoding) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerows(rows)
    if encoding is CsvEncoding.SHIFT_JIS:
        # cp932 is Windows' Shift_JIS; a character outside it (none of the node's own
        # texts, perhaps a store's name) becomes "?" rather than failing the download.
        return text.getvalue().encode("cp932", errors="replace")
    return text.getvalue().encode("utf-8-sig")


SETTLEMENT_HEADER = (
    N_("books.csv.day"),
    N_("books.csv.store"),
    N_("books.csv.till"),
    N_("books.csv.line"),
    N_("books.csv.purse"),
    N_("books.csv.source"),
    N_("books.csv.yen"),
    N_("books.csv.entries"),
)


def settlement_rows(sums: DaySums, texts: Catalogue) -> list[list[object]]:
    rows: list[list[object]] = [[texts.gettext(message_id) for message_id in SETTLEMENT_HEADER]]
    for figure in sums.figures:
        rows.append(
            [
                sums.day,
                figure.store,
                figure.till_id,
                figure.line.value,
                figure.purse,
                figure.source,
                figure.yen,
                figure.entries,
            ]
        )
    return rows


UNUSED_HEADER = (
    N_("books.csv.reference_date"),
    N_("books.csv.purse"),
    N_("books.csv.yen"),
)


def unused_balance_rows(report: UnusedBalance, texts: Catalogue) -> list[list[object]]:
    rows: list[list[object]] = [[texts.gettext(message_id) for message_id in UNUSED_HEADER]]
    for purse, yen in report.purses_yen.items():
        rows.append([report.reference_date, purse, yen])
    rows.append([report.reference_date, texts.gettext(N_("books.csv.total")), report.total_yen])
    rows.append(
        [
            report.reference_date,
            texts.gettext(N_("books.csv.deposit_required")),
            report.deposit_required_yen,
        ]
    )
    return rows
