"""The tills page (issue 13 §3), for store managers and the counter.

    /console/tills                 every till: connected now, its last tap, its taps and
                                   forwarded offline taps on this front; a form for a new
                                   till and a retire button (TILLS_MANAGE)
    /console/tills/{id}            one till and the offline queue it forwarded
    /console/tills/{id}/key        the new till's key file, downloaded once (POST)

The API's functions (`routes.py`) do the work; the pages render what they answer.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from coopnode.catalogues import N_
from coopnode.domain.messages import Label
from coopnode.domain.money import TillKind
from coopnode.domain.staff import Permission
from coopnode.http.console.live.pages import DECLINE_LABELS
from coopnode.http.console.pages import FORM, error_page, permissions_of, render, see_other, text
from coopnode.http.console.room import ConsolePart, MenuEntry
from coopnode.http.console.tills.routes import (
    forwarded_of,
    key_download,
    known_till,
    register,
    retire,
    take_key,
    till_list,
)
from coopnode.http.edge import Route, staff_may
from coopnode.http.errors import ApiError

TILLS = "/console/tills"
# What the tills' labels say, by kind and by forwarded outcome (message ids).
KIND_LABELS: dict[TillKind, str] = {
    TillKind.CAFETERIA: N_("console.tills.kind.cafeteria"),
    TillKind.SHOP: N_("console.tills.kind.shop"),
    TillKind.BOOKSTORE: N_("console.tills.kind.bookstore"),
}
OUTCOME_LABELS: dict[str, str] = {
    "accepted": N_("console.tills.outcome.accepted"),
    "overdraft": N_("console.tills.outcome.overdraft"),
    "declined": N_("console.tills.outcome.declined"),
    "try_again": N_("console.tills.outcome.try_again"),
}


def _context(request: web.Request) -> dict[str, object]:
    return {
        "kind_labels": KIND_LABELS,
        "outcome_labels": OUTCOME_LABELS,
        "can_manage": Permission.TILLS_MANAGE in permissions_of(request),
        "decline_labels": DECLINE_LABELS,
    }


async def tills_page(
    request: web.Request, *, errors: dict[str, str] | None = None, status: int = 200
) -> web.Response:
    listed = till_list(request.app)
    context = {
        **_context(request),
        "tills": listed.tills,
        "connected": listed.connected,
        "kinds": list(TillKind),
        "errors": errors or {},
        "form": {key: value for key, value in request.get(FORM, {}).items() if key != "csrf"},
    }
    return render(request, "tills/list.html", context, status=status, here=TILLS)


async def tills_register(request: web.Request) -> web.Response:
    form = request[FORM]
    try:
        store = msgspec.convert(form.get("store", "").strip(), Label)
        kind = TillKind(form.get("kind", ""))
    except (msgspec.ValidationError, ValueError):
        error = text(request, N_("console.tills.invalid"))
        return await tills_page(request, errors={"till": error}, status=400)
    try:
        till = await register(request.app, store, kind)
    except ApiError as refusal:
        error = text(request, N_("console.tills.not_registered"), reason=refusal.reason)
        return await tills_page(request, errors={"till": error}, status=refusal.status)
    context = {**_context(request), "till": till}
    return render(request, "tills/registered.html", context, here=TILLS)


async def tills_key(request: web.Request) -> web.Response:
    till = known_till(request)
    try:
        key_file = take_key(request.app, till)
    except ApiError:
        return error_page(request, text(request, N_("console.tills.key_gone")), 410)
    return key_download(till.till_id, key_file)


async def tills_retire(request: web.Request) -> web.Response:
    await retire(request.app, known_till(request))
    return see_other(TILLS)


async def till_page(request: web.Request) -> web.Response:
    till = known_till(request)
    listed = {view.till_id: view for view in till_list(request.app).tills}
    context = {
        **_context(request),
        "till": listed[till.till_id],
        "queue": forwarded_of(request.app, till),
    }
    return render(request, "tills/till.html", context)


PART = ConsolePart(
    name="tills",
    routes=(
        Route(method="GET", path=TILLS, handler=tills_page,
              access=staff_may(Permission.TILLS_READ),
              summary="Every till: connected now, its last tap; register and retire"),
        Route(method="POST", path=TILLS, handler=tills_register,
              access=staff_may(Permission.TILLS_MANAGE),
              summary="Register a till; its key is shown for one download"),
        Route(method="GET", path=TILLS + "/{till_id}", handler=till_page,
              access=staff_may(Permission.TILLS_READ),
              summary="One till and the offline taps it forwarded"),
        Route(method="POST", path=TILLS + "/{till_id}/key", handler=tills_key,
              access=staff_may(Permission.TILLS_MANAGE),
              summary="The new till's key file, once"),
        Route(method="POST", path=TILLS + "/{till_id}/retire", handler=tills_retire,
              access=staff_may(Permission.TILLS_MANAGE),
              summary="Retire a till"),
    ),
    menu=(
        MenuEntry(path=TILLS, label=N_("console.menu.tills"), permission=Permission.TILLS_READ),
    ),
)  # fmt: skip
