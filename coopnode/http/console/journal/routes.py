"""The journal's API: seal a finished day in every shard (idempotent: the accountant's
day close calls it, and so may staff), the sealed days, and every shard's full check."""

from __future__ import annotations

from datetime import date

import msgspec
from aiohttp import web

from coopnode.actors.wallet.messages import ChainReport, SealRecord, SealRefused
from coopnode.domain.money import Reason
from coopnode.domain.staff import Permission
from coopnode.http.api.wallet import wallet_client_key
from coopnode.http.edge import Body, Route, staff_may
from coopnode.http.errors import ApiError
from coopnode.logs import get_logger

log = get_logger(__name__)


class SealList(Body, frozen=True):
    seals: list[SealRecord]


class ChainCheck(Body, frozen=True):
    intact: bool
    shards: list[ChainReport]


def _json(value: object) -> web.Response:
    return web.Response(body=msgspec.json.encode(value), content_type="application/json")


async def seal_day(request: web.Request) -> web.Response:
    try:
        day = date.fromisoformat(request.match_info["day"]).isoformat()
    except ValueError:
        raise ApiError(Reason.INVALID_INPUT, "a day is YYYY-MM-DD") from None
    try:
        seals = await request.app[wallet_client_key].seal_day(day)
    except SealRefused as error:
        raise ApiError("seal_refused", str(error)) from None
    return _json(SealList(seals=seals))


async def seal_closed_day(request: web.Request, day: date) -> None:
    """Seal a day the books have just closed (the closing's pages and API call this): a
    seal refused (no journal key) is logged and leaves the closing be; the day can be
    sealed later through the route above."""
    try:
        await request.app[wallet_client_key].seal_day(day.isoformat())
    except SealRefused as error:
        log.warning("a closed day was not sealed", day=day.isoformat(), error=str(error))


async def list_seals(request: web.Request) -> web.Response:
    try:
        seals = await request.app[wallet_client_key].seals()
    except SealRefused as error:
        raise ApiError("seal_refused", str(error)) from None
    seals.sort(key=lambda seal: (seal.day, seal.shard_index))
    return _json(SealList(seals=seals))


async def verify_chain(request: web.Request) -> web.Response:
    try:
        reports = await request.app[wallet_client_key].verify_chain()
    except SealRefused as error:
        raise ApiError("seal_refused", str(error)) from None
    intact = not any(report.problems for report in reports)
    return _json(ChainCheck(intact=intact, shards=reports))


JOURNAL_ROUTES: tuple[Route, ...] = (
    Route(
        method="POST",
        path="/api/v1/console/journal/days/{day}/seal",
        summary="Seal a finished day (JST) in every shard: its chain root signed with the "
        "node's journal key. Sealing again answers the first seals",
        access=staff_may(Permission.BOOKS_CLOSE),
        handler=seal_day,
        response=SealList,
    ),
    Route(
        method="GET",
        path="/api/v1/console/journal/seals",
        summary="Every shard's sealed days",
        access=staff_may(Permission.JOURNAL_VERIFY),
        handler=list_seals,
        response=SealList,
    ),
    Route(
        method="GET",
        path="/api/v1/console/journal/verify",
        summary="Check every shard's whole chain and its seals; where one breaks, its "
        "shard, sequence and day",
        access=staff_may(Permission.JOURNAL_VERIFY),
        handler=verify_chain,
        response=ChainCheck,
    ),
)
