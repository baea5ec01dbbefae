"""The console's tills API (issue 13 §3): every till with whether it is connected now,
its last tap and its counts on this front; register a till with a key made here and
downloaded once; retire a till; the offline taps a till forwarded when it came back.

Changes go through the front's `TillHub`, as the staff token's till API does
(`http/tills/api.py`); what is connected, tapped and forwarded is the hub's
(`TillHub.connections`, `tills/activity.py`), read without a call to any actor.
"""

from __future__ import annotations

import msgspec
from aiohttp import web
from nacl.signing import SigningKey

from coopnode.actors.registry.messages import (
    AddTill,
    RegistryChange,
    RegistryOp,
    RetireTill,
    TillRecord,
)
from coopnode.domain.messages import Label
from coopnode.domain.money import Reason, TillKind
from coopnode.domain.staff import Permission
from coopnode.domain.till_frames import TillId
from coopnode.http.console.tills.keys import KeysPendingFull, PendingKeys
from coopnode.http.edge import Body, Route, read_body, staff_may
from coopnode.http.errors import ApiError
from coopnode.http.tills.activity import ForwardedTap
from coopnode.http.tills.channel import till_hub_key
from coopnode.http.tills.hub import RegistryUnavailable, TillHub
from coopnode.reader.till_key import TillKeyFile

pending_keys_key = web.AppKey("pending_till_keys", PendingKeys)


class ConsoleTill(Body, frozen=True):
    till_id: str
    store: str
    kind: TillKind
    retired: bool
    added_at_ms: int
    connected: bool
    # This front's counts since it started (0: no tap seen here).
    taps: int
    last_tap_ms: int
    last_tap_approved: bool
    last_tap_reason: str
    last_tap_amount_yen: int
    forwarded_total: int
    # The key file waits for its one download on this front.
    key_waiting: bool


class ConsoleTillList(Body, frozen=True):
    tills: list[ConsoleTill]
    connected: int


class RegisterTill(Body, frozen=True):
    store: Label
    kind: TillKind


class RegisteredTill(Body, frozen=True):
    till: ConsoleTill
    # POST here, once, for the key file.
    key_path: str


class ForwardedList(Body, frozen=True):
    till_id: str
    forwarded_total: int
    # Newest first; at most `live.forwarded_kept_per_till`.
    forwarded: list[ForwardedTap]


def _view(hub: TillHub, keys: PendingKeys, till: TillRecord) -> ConsoleTill:
    counters = hub.activity.tills.get(till.till_id)
    return ConsoleTill(
        till_id=till.till_id,
        store=till.store,
        kind=till.kind,
        retired=till.retired,
        added_at_ms=till.added_at_ms,
        connected=till.till_id in hub.connections,
        taps=0 if counters is None else counters.taps,
        last_tap_ms=0 if counters is None else counters.last_tap_ms,
        last_tap_approved=False if counters is None else counters.last_approved,
        last_tap_reason="" if counters is None else counters.last_reason,
        last_tap_amount_yen=0 if counters is None else counters.last_amount_yen,
        forwarded_total=0 if counters is None else counters.forwarded_total,
        key_waiting=keys.waiting(till.till_id),
    )


def till_list(app: web.Application) -> ConsoleTillList:
    hub, keys = app[till_hub_key], app[pending_keys_key]
    tills = sorted(hub.tills.values(), key=lambda till: till.till_id)
    views = [_view(hub, keys, till) for till in tills]
    return ConsoleTillList(tills=views, connected=sum(view.connected for view in views))


def _json(value: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=msgspec.json.encode(value), content_type="application/json"
    )


def _till_id(request: web.Request) -> str:
    try:
        return str(msgspec.convert(request.match_info["till_id"], TillId))
    except msgspec.ValidationError:
        raise ApiError("unknown_till", "a till id looks like till-0001") from None


def known_till(request: web.Request) -> TillRecord:
    till = request.app[till_hub_key].tills.get(_till_id(request))
    if till is None:
        raise ApiError("unknown_till", "no such till")
    return till


async def list_tills(request: web.Request) -> web.Response:
    return _json(till_list(request.app))


async def register(app: web.Application, store: str, kind: TillKind) -> ConsoleTill:
    """Make a till's key pair, register its public key, hold its key file for one
    download; the API's and the page's registration."""
    hub, keys = app[till_hub_key], app[pending_keys_key]
    try:
        keys.check_room()
    except KeysPendingFull as error:
        raise ApiError(Reason.OVERLOADED, str(error)) from None
    key = SigningKey.generate()
    change = await _change(hub, AddTill(store=store, kind=kind, public_key=bytes(key.verify_key)))
    till = change.tills[-1]
    keys.hold(
        TillKeyFile(
            till_id=till.till_id,
            store=till.store,
            kind=till.kind,
            signing_key_hex=bytes(key).hex(),
        )
    )
    return _view(hub, keys, till)


async def _change(hub: TillHub, op: RegistryOp) -> RegistryChange:
    try:
        change = await hub.apply(op)
    except RegistryUnavailable as error:
        raise ApiError(Reason.UNAVAILABLE, str(error)) from None
    if not change.ok:
        raise ApiError(change.reason or Reason.INVALID_INPUT, change.message)
    return change


def take_key(app: web.Application, till: TillRecord) -> bytes:
    """The till's key file, once: then, or once it expired, `key_gone` (410), and the
    node has no copy left."""
    key_file = app[pending_keys_key].take(till.till_id)
    if key_file is None:
        raise ApiError(
            "key_gone",
            "the till's key was downloaded already, expired, or is held by another front: "
            "retire the till and register a new one",
        )
    return msgspec.json.format(msgspec.json.encode(key_file)) + b"\n"


def key_download(till_id: str, key_file: bytes) -> web.Response:
    return web.Response(
        body=key_file,
        content_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{till_id}.key"',
            "Cache-Control": "no-store",
        },
    )


async def retire(app: web.Application, till: TillRecord) -> ConsoleTill:
    hub, keys = app[till_hub_key], app[pending_keys_key]
    change = await _change(hub, RetireTill(till_id=till.till_id))
    keys.drop(till.till_id)
    return _view(hub, keys, change.tills[-1])


def forwarded_of(app: web.Application, till: TillRecord) -> ForwardedList:
    counters = app[till_hub_key].activity.tills.get(till.till_id)
    return ForwardedList(
        till_id=till.till_id,
        forwarded_total=0 if counters is None else counters.forwarded_total,
        forwarded=[] if counters is None else list(counters.forwarded),
    )


async def register_till(request: web.Request) -> web.Response:
    body = await read_body(request, RegisterTill)
    till = await register(request.app, body.store, body.kind)
    registered = RegisteredTill(till=till, key_path=f"/api/v1/console/tills/{till.till_id}/key")
    return _json(registered, 201)


async def download_key(request: web.Request) -> web.Response:
    till = known_till(request)
    return key_download(till.till_id, take_key(request.app, till))


async def retire_till(request: web.Request) -> web.Response:
    return _json(await retire(request.app, known_till(request)))


async def forwarded(request: web.Request) -> web.Response:
    return _json(forwarded_of(request.app, known_till(request)))


TILLS_CONSOLE_ROUTES: tuple[Route, ...] = (
    Route(
        method="GET",
        path="/api/v1/console/tills",
        summary="Every till: connected now, its last tap and its counts on this front",
        access=staff_may(Permission.TILLS_READ),
        handler=list_tills,
        response=ConsoleTillList,
    ),
    Route(
        method="POST",
        path="/api/v1/console/tills",
        summary="Register a till with a key made on the node, held for one download",
        access=staff_may(Permission.TILLS_MANAGE),
        handler=register_till,
        request=RegisterTill,
        response=RegisteredTill,
        status=201,
    ),
    Route(
        method="POST",
        path="/api/v1/console/tills/{till_id}/key",
        summary="Download a newly registered till's key file, once (410 after)",
        access=staff_may(Permission.TILLS_MANAGE),
        handler=download_key,
        response=TillKeyFile,
    ),
    Route(
        method="POST",
        path="/api/v1/console/tills/{till_id}/retire",
        summary="Retire a till: it is disconnected and can no longer connect",
        access=staff_may(Permission.TILLS_MANAGE),
        handler=retire_till,
        response=ConsoleTill,
    ),
    Route(
        method="GET",
        path="/api/v1/console/tills/{till_id}/forwarded",
        summary="The offline taps a till forwarded when it came back, newest first, and "
        "what the node made of each (accepted, overdraft, declined, try again)",
        access=staff_may(Permission.TILLS_READ),
        handler=forwarded,
        response=ForwardedList,
    ),
)
