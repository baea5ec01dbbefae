"""The portal's home (FLOWS §3 step 5): profile, inquiries, document requests and event
applications (`portal_desk`), the cafeteria usage history as a month calendar, the
purchase history and the student-ID IC card.

The history comes from the member's wallet journal for the month (the wallet's own
month filter, in the co-op's time zone). A payment counts as a cafeteria visit when it
spent the meal plan or cafeteria money, or was made at a store whose id names the
cafeteria; every other payment is a purchase.
"""

from __future__ import annotations

import calendar
import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from coopnode.actors.identity.messages import GetProfile, Profile
from coopnode.catalogues import N_
from coopnode.domain.identity import SessionKind
from coopnode.domain.messages import GetHistory, HistoryLine, HistoryPage
from coopnode.http.api.wallet import wallet_client_key
from coopnode.http.identity_front import ask
from coopnode.http.portal.core import PageError, page, portal_settings_key, render, signed_in
from coopnode.http.portal.desk import active_card, desk_context, desk_of

_PAYMENT_KINDS = frozenset({"pay", "offline_pay"})
_HISTORY_BATCH = 100


def is_cafeteria(line: HistoryLine) -> bool:
    return line.changes.meal < 0 or line.changes.cafeteria < 0 or "cafeteria" in line.store


def month_of(query: str, now: datetime.date) -> tuple[int, int]:
    try:
        year, month = (int(part) for part in query.split("-"))
        datetime.date(year, month, 1)
    except (ValueError, OverflowError):  # A year past 9999 overflows before it is refused.
        return now.year, now.month
    return year, month


async def month_payments(request: web.Request, member_no: str, month: str) -> list[HistoryLine]:
    """The member's payments of one month, oldest first, read page by page (bounded)."""
    wallet = request.app[wallet_client_key]
    limit = request.app[portal_settings_key].month_history_lines_max
    lines: list[HistoryLine] = []
    before = 0
    while len(lines) < limit:
        result = await wallet.submit(
            GetHistory(member_no=member_no, before_seq=before, month=month, limit=_HISTORY_BATCH)
        )
        if not isinstance(result, HistoryPage):
            raise PageError(503, N_("error.unavailable"))
        lines.extend(line for line in result.lines if line.kind in _PAYMENT_KINDS)
        if not result.next_before_seq:
            break
        before = result.next_before_seq
    return sorted(lines[:limit], key=lambda line: line.seq)


def calendar_weeks(
    year: int, month: int, visits: dict[int, int]
) -> list[list[tuple[int, int] | None]]:
    """Weeks starting on Sunday; each day is (day, yen spent in the cafeteria) or None."""
    weeks = calendar.Calendar(firstweekday=6).monthdayscalendar(year, month)
    return [[(day, visits.get(day, 0)) if day else None for day in week] for week in weeks]


def history_context(lines: list[HistoryLine], year: int, month: int, zone: str) -> dict[str, Any]:
    tz = ZoneInfo(zone)
    visits: dict[int, int] = {}
    purchases = []
    count = 0
    for line in lines:
        moment = datetime.datetime.fromtimestamp(line.at_ms / 1000, tz)
        if is_cafeteria(line):
            visits[moment.day] = visits.get(moment.day, 0) + line.amount_yen
            count += 1
        else:
            purchases.append((moment.strftime("%m/%d %H:%M"), line.store, line.amount_yen))
    previous = (year - 1, 12) if month == 1 else (year, month - 1)
    following = (year + 1, 1) if month == 12 else (year, month + 1)
    return {
        "year": year,
        "month": month,
        "weeks": calendar_weeks(year, month, visits),
        "cafeteria_count": count,
        "cafeteria_total": sum(visits.values()),
        "purchases": purchases,
        "previous": f"{previous[0]:04d}-{previous[1]:02d}",
        "following": f"{following[0]:04d}-{following[1]:02d}",
    }


async def member_history(
    request: web.Request, member_no: str, coop_zone: str = "Asia/Tokyo"
) -> dict[str, Any]:
    today = datetime.datetime.now(ZoneInfo(coop_zone)).date()
    year, month = month_of(request.query.get("month", ""), today)
    lines = await month_payments(request, member_no, f"{year:04d}-{month:02d}")
    return history_context(lines, year, month, coop_zone)


@page
async def portal_home(request: web.Request) -> web.Response:
    who = await signed_in(request, (SessionKind.PORTAL,))
    profile = await ask(request, GetProfile(member_no=who.subject))
    if not isinstance(profile, Profile):
        raise TypeError("the profile answered with something else")
    done = {"inquiry": N_("desk.inquiry_done"), "document": N_("desk.document_done")}.get(
        request.query.get("done", ""), ""
    )
    context = {
        "profile": profile,
        "done": done,
        "card": active_card(request, who.subject),
        **desk_context(request, await desk_of(request, who.subject)),
        **await member_history(request, who.subject),
    }
    return render(request, "member/portal_home.html", context, session=SessionKind.PORTAL)


def home_routes() -> list[web.RouteDef]:
    return [web.get("/portal/home", portal_home)]
