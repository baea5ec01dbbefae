"""The books' pages in the console's frame: the day's settlement with its closing, the
reconciliation of a day, and the printable unused-balance report. They read what the
API's routes read (`api.py`) and link to its CSV and SVG, which a staff session may fetch
as the page's own (the same permission)."""

from __future__ import annotations

from datetime import date, timedelta

from aiohttp import web

from coopnode.actors.wallet.books_client import BooksReader, ClosingRefused
from coopnode.catalogues import N_
from coopnode.catalogues.labels import PURSE_LABELS
from coopnode.domain.books import Line, meal_use_yen
from coopnode.domain.money import Purse
from coopnode.domain.staff import Permission
from coopnode.http.console.books.api import (
    BOOKS_FIRST_DAY,
    BOOKS_LAST_DAY,
    ReportQuery,
    audit_closing,
    reader,
    reconciliation_of,
    report_date,
    today,
    unused_balance_of,
)
from coopnode.http.console.books.labels import (
    LINE_LABELS,
    METHOD_LABELS,
    PROBLEM_LABELS,
    SOURCE_LABELS,
)
from coopnode.http.console.journal.routes import seal_closed_day
from coopnode.http.console.pages import permissions_of, render, see_other, text
from coopnode.http.console.room import ConsolePart, MenuEntry
from coopnode.http.edge import Route, staff_actor, staff_may
from coopnode.http.errors import ApiError, PageError

SETTLEMENT = "/console/books"
RECONCILIATION = "/console/books/reconciliation"
UNUSED_BALANCE = "/console/books/unused-balance"
# The meal-plan chart beside a day covers the days up to it, a term's worth (a semester is
# about four months).
TERM_DAYS = 120
_LABELS = {
    "line_labels": LINE_LABELS,
    "source_labels": SOURCE_LABELS,
    "problem_labels": PROBLEM_LABELS,
    "method_labels": METHOD_LABELS,
    "purse_labels": {purse.value: label for purse, label in PURSE_LABELS.items()},
}


def _reader(request: web.Request) -> BooksReader:
    return reader(request)


def _asked_day(request: web.Request, default: date) -> date:
    """The day of `?day=`, or `default`; a day the books do not hold is a 400 page."""
    asked = request.query.get("day", "") or request.match_info.get("day", "")
    if not asked:
        return default
    try:
        day = date.fromisoformat(asked)
    except ValueError:
        raise PageError(400, N_("books.error.day")) from None
    if not BOOKS_FIRST_DAY <= day <= BOOKS_LAST_DAY:
        raise PageError(400, N_("books.error.day"))
    return day


async def settlement_page(request: web.Request, error: str = "") -> web.Response:
    day = _asked_day(request, today() - timedelta(days=1))
    node_day = await _reader(request).day(day)
    sums = node_day.sums
    sales = {store: sum(hours) for store, hours in sums.hourly_sales.items()}
    context = {
        "day": day.isoformat(),
        "term_first": max(BOOKS_FIRST_DAY, day - timedelta(days=TERM_DAYS - 1)).isoformat(),
        "node_day": node_day,
        "sums": sums,
        "sales_by_store": sales,
        "meal_use_yen": meal_use_yen(sums),
        "points_issued_yen": sum(f.yen for f in sums.figures if f.line is Line.POINTS_ISSUED),
        "points_used_yen": sum(
            f.yen for f in sums.figures if f.line is Line.SALE and f.purse == Purse.POINTS.value
        ),
        "may_close": Permission.BOOKS_CLOSE in permissions_of(request),
        "error": error,
        **_LABELS,
    }
    return render(request, "books/settlement.html", context, status=400 if error else 200)


async def close_page(request: web.Request) -> web.Response:
    day = _asked_day(request, today())
    actor = staff_actor(request)
    try:
        node_day, closed_now = await _reader(request).close(day, actor)
    except ClosingRefused as refused:
        if refused.reason == "day_not_over":
            message = N_("books.error.day_not_over")
        else:
            message = N_("books.error.close_failed")
        return await settlement_page(request, error=text(request, message))
    if closed_now:
        await audit_closing(request, day, actor, node_day)
    # The journal's root of the closed day, signed (issue 13 §7); sealing is idempotent.
    await seal_closed_day(request, day)
    return see_other(f"{SETTLEMENT}?day={day.isoformat()}")


async def reconciliation_page(request: web.Request) -> web.Response:
    day = _asked_day(request, today() - timedelta(days=1))
    _reader(request)
    try:
        result = await reconciliation_of(request, day)
    except ApiError as refused:
        if refused.reason == "payments_off":
            raise PageError(409, N_("books.error.payments_off")) from None
        raise
    context = {"day": day.isoformat(), "result": result, **_LABELS}
    return render(request, "books/reconciliation.html", context)


async def unused_balance_page(request: web.Request) -> web.Response:
    asked = request.query.get("date", "")
    _reader(request)
    try:
        reference = report_date(ReportQuery(date=asked or None), today())
    except ApiError:
        raise PageError(400, N_("books.error.day")) from None
    report = await unused_balance_of(request, reference)
    context = {"report": report, **_LABELS}
    return render(request, "books/unused_balance.html", context)


PART = ConsolePart(
    name="books",
    routes=(
        Route(method="GET", path=SETTLEMENT, handler=settlement_page,
              access=staff_may(Permission.BOOKS_READ),
              summary="The day's settlement (日計), its closing and its CSV"),
        Route(method="POST", path=SETTLEMENT + "/days/{day}/close", handler=close_page,
              access=staff_may(Permission.BOOKS_CLOSE),
              summary="Close a day (締め)"),
        Route(method="GET", path=RECONCILIATION, handler=reconciliation_page,
              access=staff_may(Permission.RECONCILE),
              summary="Card and konbini payments against the journal, day by day"),
        Route(method="GET", path=UNUSED_BALANCE, handler=unused_balance_page,
              access=staff_may(Permission.UNUSED_BALANCE),
              summary="The unused-balance report (未使用残高), printable"),
    ),
    menu=(
        MenuEntry(path=SETTLEMENT, label=N_("books.menu.settlement"),
                  permission=Permission.BOOKS_READ),
        MenuEntry(path=RECONCILIATION, label=N_("books.menu.reconciliation"),
                  permission=Permission.RECONCILE),
        MenuEntry(path=UNUSED_BALANCE, label=N_("books.menu.unused_balance"),
                  permission=Permission.UNUSED_BALANCE),
    ),
)  # fmt: skip
