"""The live lunch view's page (issue 13 §7): the figures as rendered when the page is
asked for, then kept up to date by `static/live.js` from the event stream
(`/api/v1/console/live/events`); without JavaScript, a reload shows the latest."""

from __future__ import annotations

import msgspec
from aiohttp import web

from coopnode.catalogues import N_
from coopnode.domain.money import Reason
from coopnode.domain.staff import Permission
from coopnode.http.console.live.board import live_board_key
from coopnode.http.console.pages import render, text
from coopnode.http.console.room import ConsolePart, MenuEntry
from coopnode.http.edge import Route, staff_may

LIVE = "/console/live"
# Why a till's tap was declined, in staff's words; another reason shows as its code.
DECLINE_LABELS: dict[str, str] = {
    Reason.INSUFFICIENT_FUNDS: N_("console.live.reason.insufficient_funds"),
    Reason.CARD_BLOCKED: N_("console.live.reason.card_blocked"),
    Reason.UNKNOWN_CARD: N_("console.live.reason.unknown_card"),
    Reason.SUSPENDED: N_("console.live.reason.suspended"),
    Reason.OVER_LIMIT: N_("console.live.reason.over_limit"),
    Reason.ABOVE_MAXIMUM: N_("console.live.reason.above_maximum"),
    Reason.OVERLOADED: N_("console.live.reason.busy"),
    Reason.UNAVAILABLE: N_("console.live.reason.busy"),
}


async def live_page(request: web.Request) -> web.Response:
    board = request.app[live_board_key]
    # The words the script writes into the page, in the page's language.
    words = {
        "reasons": {reason: text(request, label) for reason, label in DECLINE_LABELS.items()},
        "over_capacity": text(request, N_("console.live.over_capacity")),
        "no_till": text(request, N_("console.live.no_till")),
        "seconds": text(request, N_("console.live.seconds"), seconds="{s}"),
        "none": text(request, N_("console.live.no_declines")),
    }
    context = {
        "figures": board.figures,
        "decline_labels": DECLINE_LABELS,
        "words_json": msgspec.json.encode(words).decode(),
    }
    return render(request, "live/board.html", context, here=LIVE)


PART = ConsolePart(
    name="live",
    routes=(
        Route(method="GET", path=LIVE, handler=live_page,
              access=staff_may(Permission.LIVE_READ),
              summary="The live lunch view: taps per minute, declines, tills, queue wait"),
    ),
    menu=(
        MenuEntry(path=LIVE, label=N_("console.menu.live"), permission=Permission.LIVE_READ),
    ),
)  # fmt: skip
