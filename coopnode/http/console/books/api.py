"""The books' routes: a day's settlement and its closing, its CSV and charts, the
reconciliation of a day, the unused-balance report. Each declares its permission with
`staff_may`; the pages of the console read the same handlers' data (`pages.py`)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

import msgspec
from aiohttp import web

from coopnode.actors.identity.messages import AuditRecord
from coopnode.actors.kernel.clock import system_ms
from coopnode.actors.payments.messages import ChargeRecord, ChargesMoved, GetCharge
from coopnode.actors.wallet.books_client import BooksReader, ClosingRefused, NodeDay
from coopnode.catalogues import JAPANESE, N_, Catalogue, catalogue, languages
from coopnode.domain.books import (
    UnusedBalance,
    day_of_ms,
    day_window_ms,
    latest_reference_date,
    meal_use_yen,
    unused_balance,
)
from coopnode.domain.reconciliation import ChargeSide, DayReconciliation, reconcile
from coopnode.domain.staff import Permission
from coopnode.http.api.konbini import charging_key
from coopnode.http.console.books import charts
from coopnode.http.console.books.csv_files import (
    CsvEncoding,
    encode,
    settlement_rows,
    unused_balance_rows,
)
from coopnode.http.console.journal.routes import seal_closed_day
from coopnode.http.edge import Route, read_query, staff_actor, staff_may
from coopnode.http.errors import ApiError
from coopnode.http.identity_front import ask

books_reader_key = web.AppKey("books_reader", BooksReader)
# Charges a day's reconciliation reads from the payments store: a busy co-op takes a few
# thousand charges on the first day of term; a day past this is refused, not cut short.
RECONCILE_CHARGES_MAX = 50_000
# The longest range of days a chart reads (a term and a half of closed days).
CHART_DAYS_MAX = 200
_DAY_MS = 86_400_000
# The days the books answer for: none before the node existed, and none so far ahead that
# a day's window (and the day after it) leaves what `datetime` can hold.
BOOKS_FIRST_DAY = date(2000, 1, 1)
BOOKS_LAST_DAY = date(2999, 12, 31)

IsoDate = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
Language = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}$")]


class CsvQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    encoding: CsvEncoding = CsvEncoding.UTF8_BOM
    lang: Language = JAPANESE


class ReportQuery(CsvQuery, frozen=True, kw_only=True):
    # The reference date; the latest March 31 or September 30 that is over when empty.
    date: IsoDate | None = None


class RangeQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    first: IsoDate
    last: IsoDate
    lang: Language = JAPANESE


def _day(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ApiError("invalid_input", f"{text!r} is not a date (YYYY-MM-DD)") from None
    if not BOOKS_FIRST_DAY <= day <= BOOKS_LAST_DAY:
        raise ApiError(
            "invalid_input", f"the books hold days from {BOOKS_FIRST_DAY} to {BOOKS_LAST_DAY}"
        )
    return day


def _path_day(request: web.Request) -> date:
    return _day(request.match_info["day"])


def _texts(language: str) -> Catalogue:
    if language not in languages():
        raise ApiError("invalid_input", f"no catalogue for the language {language!r}")
    return catalogue(language)


def reader(request: web.Request) -> BooksReader:
    """The books' reader."""
    return request.app[books_reader_key]


def _json(value: object) -> web.Response:
    return web.Response(body=msgspec.json.encode(value), content_type="application/json")


def _file(body: bytes, content_type: str, filename: str, charset: str = "") -> web.Response:
    response = web.Response(body=body, content_type=content_type, charset=charset or None)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# A day's settlement ------------------------------------------------------------------------


async def settlement(request: web.Request) -> web.Response:
    node_day = await reader(request).day(_path_day(request))
    return _json(node_day)


async def close_day(request: web.Request) -> web.Response:
    day = _path_day(request)
    actor = staff_actor(request)
    try:
        node_day, closed_now = await reader(request).close(day, actor)
    except ClosingRefused as refused:
        if refused.reason == "day_not_over":
            raise ApiError("day_not_over", f"{day} is not over yet; close it tomorrow") from None
        # Figures that do not explain the journal are a defect: the shard logged them.
        raise ApiError("internal_error", "the day's figures do not add up; see the log") from None
    if closed_now:
        await audit_closing(request, day, actor, node_day)
    # The journal's root of the closed day, signed (issue 13 §7); sealing is idempotent.
    await seal_closed_day(request, day)
    return _json(node_day)


async def audit_closing(request: web.Request, day: date, actor: str, node_day: NodeDay) -> None:
    """The closing in the audit log, under the person (or machine) who closed the day."""
    detail = f"{node_day.sums.entries} entries"
    record = AuditRecord(actor=actor, action="books.close", target=day.isoformat(), detail=detail)
    await ask(request, record)


async def settlement_csv(request: web.Request) -> web.Response:
    day = _path_day(request)
    query = read_query(request, CsvQuery)
    texts = _texts(query.lang)
    node_day = await reader(request).day(day)
    body = encode(settlement_rows(node_day.sums, texts), query.encoding)
    charset = "utf-8" if query.encoding is CsvEncoding.UTF8_BOM else "shift_jis"
    return _file(body, "text/csv", f"settlement-{day.isoformat()}.csv", charset)


async def sales_by_hour_svg(request: web.Request) -> web.Response:
    day = _path_day(request)
    query = read_query(request, CsvQuery)
    texts = _texts(query.lang)
    node_day = await reader(request).day(day)
    title = texts.text(N_("books.chart.sales_by_hour"), day=day.isoformat())
    return web.Response(
        text=charts.sales_by_hour(title, node_day.sums.hourly_sales), content_type="image/svg+xml"
    )


async def meal_use_svg(request: web.Request) -> web.Response:
    query = read_query(request, RangeQuery)
    first, last = _day(query.first), _day(query.last)
    if not first <= last <= first + timedelta(days=CHART_DAYS_MAX):
        raise ApiError("invalid_input", f"a chart covers 1 to {CHART_DAYS_MAX} days")
    texts = _texts(query.lang)
    closed = await reader(request).closings(first, last)
    days = [(day, meal_use_yen(node_day.sums)) for day, node_day in closed.items()]
    title = texts.text(N_("books.chart.meal_use"), first=query.first, last=query.last)
    series = texts.gettext(N_("books.chart.meal_use_series"))
    return web.Response(text=charts.meal_use(title, series, days), content_type="image/svg+xml")


# Reconciliation ----------------------------------------------------------------------------


def _side(record: ChargeRecord) -> ChargeSide:
    return ChargeSide(
        charge_id=record.charge_id,
        method=record.method.value,
        member_no=record.member_no,
        amount_yen=record.amount_yen,
        status=record.status.value,
        updated_at_ms=record.updated_at_ms,
    )


async def reconciliation_of(request: web.Request, day: date) -> DayReconciliation:
    charging = request.app.get(charging_key)
    if charging is None:
        raise ApiError("payments_off", "this node runs without card and konbini payments")
    payments = charging.payments
    start_ms, end_ms = day_window_ms(day)
    # A credit booked the evening before of a charge the payments store moved after
    # midnight is the day before's: read that day's credits too (`reconcile`).
    credits = await reader(request).clearing_credits(start_ms - _DAY_MS, end_ms)
    moved = ChargesMoved(from_ms=start_ms, to_ms=end_ms, limit=RECONCILE_CHARGES_MAX + 1)
    charges = (await payments.call(moved)).charges
    if len(charges) > RECONCILE_CHARGES_MAX:
        raise ApiError("invalid_input", f"more than {RECONCILE_CHARGES_MAX} charges in a day")
    known = {charge.charge_id for charge in charges}
    for credit in credits:
        if credit.charge_id and credit.charge_id not in known and credit.at_ms >= start_ms:
            found = (await payments.call(GetCharge(charge_id=credit.charge_id))).charges
            charges += found
            known.add(credit.charge_id)
    return reconcile(day, credits, [_side(charge) for charge in charges])


async def reconciliation(request: web.Request) -> web.Response:
    return _json(await reconciliation_of(request, _path_day(request)))


# The unused-balance report ---------------------------------------------------------------


async def unused_balance_of(request: web.Request, reference: date) -> UnusedBalance:
    _, end_ms = day_window_ms(reference)
    totals, entries = await reader(request).purse_totals(end_ms)
    return unused_balance(reference, end_ms, totals, entries)


def today() -> date:
    """Today where the co-op is."""
    return day_of_ms(system_ms())


def report_date(query: ReportQuery, today: date) -> date:
    return _day(query.date) if query.date else latest_reference_date(today)


async def unused_balance_report(request: web.Request) -> web.Response:
    query = read_query(request, ReportQuery)
    return _json(await unused_balance_of(request, report_date(query, today())))


async def unused_balance_csv(request: web.Request) -> web.Response:
    query = read_query(request, ReportQuery)
    texts = _texts(query.lang)
    report = await unused_balance_of(request, report_date(query, today()))
    body = encode(unused_balance_rows(report, texts), query.encoding)
    charset = "utf-8" if query.encoding is CsvEncoding.UTF8_BOM else "shift_jis"
    return _file(body, "text/csv", f"unused-balance-{report.reference_date}.csv", charset)


BOOKS_ROUTES: tuple[Route, ...] = (
    Route(
        method="GET",
        path="/api/v1/books/days/{day}",
        summary="A day's settlement (日計): as closed, or as the journal has it now",
        access=staff_may(Permission.BOOKS_READ),
        handler=settlement,
        response=NodeDay,
    ),
    Route(
        method="POST",
        path="/api/v1/books/days/{day}/close",
        summary="Close a day (締め) once it is over: its figures never change after (audited)",
        access=staff_may(Permission.BOOKS_CLOSE),
        handler=close_day,
        response=NodeDay,
    ),
    Route(
        method="GET",
        path="/api/v1/books/days/{day}/settlement.csv",
        summary="A day's settlement as CSV for Excel (UTF-8 with BOM, or Shift_JIS)",
        access=staff_may(Permission.BOOKS_READ),
        handler=settlement_csv,
        query_type=CsvQuery,
        content_type="text/csv",
    ),
    Route(
        method="GET",
        path="/api/v1/books/days/{day}/sales-by-hour.svg",
        summary="A day's net sales by hour, a line per store (SVG)",
        access=staff_may(Permission.BOOKS_READ),
        handler=sales_by_hour_svg,
        query_type=CsvQuery,
        content_type="image/svg+xml",
    ),
    Route(
        method="GET",
        path="/api/v1/books/meal-use.svg",
        summary="Meal-plan use day by day over the closed days of a range (SVG)",
        access=staff_may(Permission.BOOKS_READ),
        handler=meal_use_svg,
        query_type=RangeQuery,
        content_type="image/svg+xml",
    ),
    Route(
        method="GET",
        path="/api/v1/books/reconciliation/{day}",
        summary="Card captures and konbini payments against the journal's clearing accounts",
        access=staff_may(Permission.RECONCILE),
        handler=reconciliation,
        response=DayReconciliation,
    ),
    Route(
        method="GET",
        path="/api/v1/books/unused-balance",
        summary="The unused balance of the prepaid purses at 24:00 JST of a reference date",
        access=staff_may(Permission.UNUSED_BALANCE),
        handler=unused_balance_report,
        query_type=ReportQuery,
        response=UnusedBalance,
    ),
    Route(
        method="GET",
        path="/api/v1/books/unused-balance.csv",
        summary="The unused-balance report as CSV for Excel",
        access=staff_may(Permission.UNUSED_BALANCE),
        handler=unused_balance_csv,
        query_type=ReportQuery,
        content_type="text/csv",
    ),
)
