"""The counter's first page: find a member by number, kana, mail address or card, or lay
the card on the counter's reader (`?reader=desk-1`): the page listens to that reader's
events (`api/counter_taps.py`, with `static/counter-reader.js`) and opens the member's
page when a card is laid, without the clerk typing."""

from __future__ import annotations

import msgspec
from aiohttp import web

from coopnode.domain.counter import COUNTER_RESULTS_MAX, FindBy
from coopnode.http.api.counter import FindQuery, find
from coopnode.http.api.counter_taps import ReaderName
from coopnode.http.console.counter.common import counter_render, refused_text
from coopnode.http.errors import ApiError


def _reader(request: web.Request) -> str:
    raw = request.query.get("reader", "")
    try:
        return str(msgspec.convert(raw, ReaderName)) if raw else ""
    except msgspec.ValidationError:
        return ""


async def find_page(request: web.Request) -> web.Response:
    context: dict[str, object] = {
        "reader": _reader(request),
        "by": request.query.get("by", FindBy.KANA.value),
        "q": request.query.get("q", ""),
        "found": None,
        "more": False,
        "results_max": COUNTER_RESULTS_MAX,
        "error": "",
        "find_by": list(FindBy),
    }
    if "q" not in request.query:
        return counter_render(request, "counter/find.html", context)
    try:
        query = msgspec.convert(
            {"by": request.query.get("by", ""), "q": request.query["q"]}, FindQuery
        )
    except msgspec.ValidationError:
        refusal = ApiError("invalid_input", "the search is not valid")
        context["error"] = refused_text(request, refusal)
        return counter_render(request, "counter/find.html", context, status=400)
    found = await find(request, query.by, query.q)
    context.update(found=found.members, more=found.more)
    return counter_render(request, "counter/find.html", context)
