"""The staff API for cards, tills, the deny list and offline sales: one route table, every
route of it for the staff token.

Every change goes through the front's `TillHub`, which makes it durable in the registry
actor, then updates the front's copy and pushes the deny list to the connected tills,
so a card reported lost here is refused at every connected till within a second.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from coopnode.actors.registry.messages import (
    AddTill,
    BindCard,
    CardRecord,
    RefusedOfflineTap,
    RegistryChange,
    RegistryOp,
    Reissue,
    ReportLost,
    RetireTill,
    TillRecord,
)
from coopnode.domain.messages import Declined, GetWallet, Label, MemberNo, OverdraftRecord
from coopnode.domain.money import Reason, TillKind
from coopnode.domain.staff import Permission
from coopnode.domain.till_frames import Idm, TillId
from coopnode.http.api.wallet import wallet_client_key
from coopnode.http.edge import AUDIT_TARGET, Body, Route, member_no_of, read_body, staff_may
from coopnode.http.errors import ApiError
from coopnode.http.tills.channel import till_hub_key
from coopnode.http.tills.hub import RegistryUnavailable

PublicKeyHex = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
# Staff read overdrafts a page at a time; a shard never sends more than this many.
OVERDRAFTS_PER_SHARD_MAX = 1_000
# Refused offline taps listed at once: a screenful for staff, one registry read; a till
# at a time (`till_id`) lists the rest.
OFFLINE_REFUSALS_LISTED_MAX = 1_000


class BindCardRequest(Body, frozen=True):
    idm: Idm
    member_no: MemberNo


class ReissueRequest(Body, frozen=True):
    new_idm: Idm


class AddTillRequest(Body, frozen=True):
    store: Label
    kind: TillKind
    # The till's Ed25519 public key; its private key never leaves the till.
    public_key_hex: PublicKeyHex


class TillView(Body, frozen=True):
    till_id: str
    store: str
    kind: TillKind
    public_key_hex: str
    retired: bool
    added_at_ms: int


class TillList(Body, frozen=True):
    tills: list[TillView]


class DenyListView(Body, frozen=True):
    version: int
    idms: list[str]


class OverdraftList(Body, frozen=True):
    overdrafts: list[OverdraftRecord]
    total_yen: int


class OfflineRefusalsQuery(Body, frozen=True):
    till_id: TillId | None = None


class OfflineRefusalList(Body, frozen=True):
    refusals: list[RefusedOfflineTap]
    total_yen: int
    # More are kept than were listed (at most `OFFLINE_REFUSALS_LISTED_MAX` are).
    more: bool


def _json(value: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=msgspec.json.encode(value), content_type="application/json"
    )


def _till_view(till: TillRecord) -> TillView:
    return TillView(
        till_id=till.till_id,
        store=till.store,
        kind=till.kind,
        public_key_hex=till.public_key.hex(),
        retired=till.retired,
        added_at_ms=till.added_at_ms,
    )


async def _change(request: web.Request, op: RegistryOp) -> RegistryChange:
    try:
        change = await request.app[till_hub_key].apply(op)
    except RegistryUnavailable as error:
        raise ApiError(Reason.UNAVAILABLE, str(error)) from None
    if not change.ok:
        reason = change.reason or Reason.INVALID_INPUT
        raise ApiError(reason, change.message)
    return change


def _idm_of(request: web.Request) -> str:
    try:
        return str(msgspec.convert(request.match_info["idm"], Idm))
    except msgspec.ValidationError:
        raise ApiError(Reason.INVALID_INPUT, "an IDm is 16 lowercase hex digits") from None


async def _require_wallet(request: web.Request, member_no: str) -> None:
    result = await request.app[wallet_client_key].submit(GetWallet(member_no=member_no))
    if isinstance(result, Declined):
        raise ApiError(result.reason, result.message)


async def bind_card(request: web.Request) -> web.Response:
    body = await read_body(request, BindCardRequest)
    await _require_wallet(request, body.member_no)
    change = await _change(request, BindCard(idm=body.idm, member_no=body.member_no))
    request[AUDIT_TARGET] = body.member_no
    return _json(change.cards[-1], 201)


async def get_card(request: web.Request) -> web.Response:
    card = request.app[till_hub_key].cards.get(_idm_of(request))
    if card is None:
        raise ApiError(Reason.UNKNOWN_CARD, "no such card")
    return _json(card)


async def report_lost(request: web.Request) -> web.Response:
    change = await _change(request, ReportLost(idm=_idm_of(request)))
    return _json(change.cards[-1])


async def reissue_card(request: web.Request) -> web.Response:
    body = await read_body(request, ReissueRequest)
    member_no = member_no_of(request)
    await _require_wallet(request, member_no)
    change = await _change(request, Reissue(member_no=member_no, new_idm=body.new_idm))
    return _json(change.cards[-1], 201)


async def add_till(request: web.Request) -> web.Response:
    body = await read_body(request, AddTillRequest)
    op = AddTill(store=body.store, kind=body.kind, public_key=bytes.fromhex(body.public_key_hex))
    change = await _change(request, op)
    request[AUDIT_TARGET] = change.tills[-1].till_id
    return _json(_till_view(change.tills[-1]), 201)


async def list_tills(request: web.Request) -> web.Response:
    tills = sorted(request.app[till_hub_key].tills.values(), key=lambda till: till.till_id)
    return _json(TillList(tills=[_till_view(till) for till in tills]))


async def retire_till(request: web.Request) -> web.Response:
    try:
        till_id = str(msgspec.convert(request.match_info["till_id"], TillId))
    except msgspec.ValidationError:
        raise ApiError(Reason.INVALID_INPUT, "a till id looks like till-0001") from None
    change = await _change(request, RetireTill(till_id=till_id))
    return _json(_till_view(change.tills[-1]))


async def deny_list(request: web.Request) -> web.Response:
    hub = request.app[till_hub_key]
    return _json(DenyListView(version=hub.version, idms=sorted(hub.deny)))


async def overdrafts(request: web.Request) -> web.Response:
    records = await request.app[wallet_client_key].overdrafts(OVERDRAFTS_PER_SHARD_MAX)
    records.sort(key=lambda record: (record.member_no, record.tapped_at_ms))
    total = sum(record.overdraft_yen for record in records)
    return _json(OverdraftList(overdrafts=records, total_yen=total))


async def offline_refusals(request: web.Request) -> web.Response:
    try:
        query = msgspec.convert(dict(request.query), OfflineRefusalsQuery)
    except msgspec.ValidationError as error:
        raise ApiError(Reason.INVALID_INPUT, f"invalid query: {error}") from None
    limit = OFFLINE_REFUSALS_LISTED_MAX
    try:
        found = await request.app[till_hub_key].refused_taps(query.till_id or "", limit + 1)
    except RegistryUnavailable as error:
        raise ApiError(Reason.UNAVAILABLE, str(error)) from None
    listed = found[:limit]
    total = sum(refused.amount_yen for refused in listed)
    return _json(OfflineRefusalList(refusals=listed, total_yen=total, more=len(found) > limit))


TILL_ROUTES: tuple[Route, ...] = (
    Route(
        method="POST",
        path="/api/v1/cards",
        summary="Bind a FeliCa card (IDm) to a member who has no active card",
        access=staff_may(Permission.MEMBERS_CHANGE),
        audit="card.bind",
        handler=bind_card,
        request=BindCardRequest,
        response=CardRecord,
        status=201,
    ),
    Route(
        method="GET",
        path="/api/v1/cards/{idm}",
        summary="A card: its member and status",
        access=staff_may(Permission.MEMBERS_READ),
        handler=get_card,
        response=CardRecord,
    ),
    Route(
        method="POST",
        path="/api/v1/cards/{idm}/lost",
        summary="Report a card lost: it is refused at every till at once",
        access=staff_may(Permission.MEMBERS_CHANGE),
        audit="card.lost",
        handler=report_lost,
        response=CardRecord,
    ),
    Route(
        method="POST",
        path="/api/v1/wallets/{member_no}/card",
        summary="Reissue: bind a new card to the member; the old one stays blocked",
        access=staff_may(Permission.MEMBERS_CHANGE),
        audit="card.reissue",
        handler=reissue_card,
        request=ReissueRequest,
        response=CardRecord,
        status=201,
    ),
    Route(
        method="POST",
        path="/api/v1/tills",
        summary="Register a till with its Ed25519 public key",
        access=staff_may(Permission.TILLS_MANAGE),
        audit="till.register",
        handler=add_till,
        request=AddTillRequest,
        response=TillView,
        status=201,
    ),
    Route(
        method="GET",
        path="/api/v1/tills",
        summary="Every till, retired ones included",
        access=staff_may(Permission.TILLS_READ),
        handler=list_tills,
        response=TillList,
    ),
    Route(
        method="POST",
        path="/api/v1/tills/{till_id}/retire",
        summary="Retire a till: it is disconnected and can no longer connect",
        access=staff_may(Permission.TILLS_MANAGE),
        audit="till.retire",
        handler=retire_till,
        response=TillView,
    ),
    Route(
        method="GET",
        path="/api/v1/deny-list",
        summary="The deny list pushed to tills: blocked cards and suspended members' cards",
        access=staff_may(Permission.TILLS_READ),
        handler=deny_list,
        response=DenyListView,
    ),
    Route(
        method="GET",
        path="/api/v1/overdrafts",
        summary="Offline taps the balance did not cover: what members owe, to recover",
        access=staff_may(Permission.MEMBERS_READ),
        handler=overdrafts,
        response=OverdraftList,
    ),
    Route(
        method="GET",
        path="/api/v1/offline-refusals",
        summary=(
            "Sales tills approved offline that the node refused when they were forwarded "
            "(nothing was booked): for staff to settle by hand"
        ),
        access=staff_may(Permission.TILLS_READ),
        handler=offline_refusals,
        response=OfflineRefusalList,
        query=(("till_id", "string"),),
    ),
)
