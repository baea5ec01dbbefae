"""A card laid on the counter's reader, shown on the clerk's page without typing.

The counter's reader agent (`coopnode counter-reader`, the tills' nfcpy reader code)
posts each tap to its front:

    POST /api/v1/counter/readers/{reader}/taps     {"idm": "0123456789abcdef"}

The front looks the card up in its copy of the registry and tells every page listening to
that reader, over server-sent events:

    GET  /api/v1/counter/readers/{reader}/events   text/event-stream; each tap is
         event: card
         data: {"reader": "desk-1", "idm_last4": "cdef", "member_no": "…", "status": "active"}

Why server-sent events: the page only listens (one direction), the browser's EventSource
reconnects by itself, and it is plain HTTP through the same edge, session and access as
every route (a WebSocket would need its own). Nothing is stored: a tap nobody is
listening to is gone, and the clerk lays the card again. A page and its reader must be
served by the same front (on a cluster of fronts, point both at one).

Bounds: a reader has at most `LISTENERS_PER_READER_MAX` pages listening, each with at
most `EVENTS_QUEUED_MAX` taps not yet sent (the oldest is dropped: a clerk wants the
latest card); a stream ends after `STREAM_MAX_S` (EventSource comes back at once) and
sends a comment every `KEEPALIVE_S` so proxies keep it open.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import msgspec
from aiohttp import web

from coopnode.actors.registry.messages import CardStatus
from coopnode.domain.money import Reason
from coopnode.domain.staff import Permission
from coopnode.domain.till_frames import Idm
from coopnode.http.edge import Body, Route, read_body, staff_may
from coopnode.http.errors import ApiError
from coopnode.http.identity_front import json_response
from coopnode.http.tills.channel import till_hub_key

# Pages listening to one reader: the counter's PC and a tablet or two beside it.
LISTENERS_PER_READER_MAX = 16
# Readers the front keeps listeners for: a co-op's counters, with room to spare.
READERS_MAX = 256
# Taps queued for a page that has not read them yet: the clerk wants the latest card.
EVENTS_QUEUED_MAX = 8
# A stream's longest life; the browser's EventSource reconnects at once.
STREAM_MAX_S = 3_600.0
# A comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_S = 15.0

ReaderName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]


class TapBody(Body, frozen=True):
    idm: Idm


class TapEvent(Body, frozen=True):
    """What a page learns of a tap: the card's member when the registry knows it."""

    reader: str
    idm_last4: str
    member_no: str
    # The card's status, or "unknown" for a card no member holds.
    status: str


class TapDelivered(Body, frozen=True):
    event: TapEvent
    listeners: int


class CounterTaps:
    """Who listens to which reader, and the taps waiting for each listener."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[_Listener]] = {}

    def publish(self, event: TapEvent) -> int:
        """Queue the tap for every page listening to its reader; how many there are."""
        listeners = self._listeners.get(event.reader, [])
        for listener in listeners:
            listener.put(event)
        return len(listeners)

    @contextlib.contextmanager
    def listen(self, reader: str) -> Iterator[_Listener]:
        listeners = self._listeners.get(reader)
        if listeners is None:
            if len(self._listeners) >= READERS_MAX:
                raise ApiError(Reason.OVERLOADED, "too many counter readers are listened to")
            listeners = self._listeners[reader] = []
        if len(listeners) >= LISTENERS_PER_READER_MAX:
            raise ApiError(Reason.OVERLOADED, "too many pages listen to this reader")
        listener = _Listener()
        listeners.append(listener)
        try:
            yield listener
        finally:
            listeners.remove(listener)
            if not listeners:
                del self._listeners[reader]


class _Listener:
    def __init__(self) -> None:
        self._events: collections.deque[TapEvent] = collections.deque(maxlen=EVENTS_QUEUED_MAX)
        self._ready = asyncio.Event()

    def put(self, event: TapEvent) -> None:
        self._events.append(event)
        self._ready.set()

    async def next(self, wait_s: float) -> TapEvent | None:
        """The next tap, or None when none came within `wait_s` (time for a keep-alive)."""
        if not self._events:
            self._ready.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._ready.wait()
        return self._events.popleft() if self._events else None


counter_taps_key = web.AppKey("counter_taps", CounterTaps)


def _reader_of(request: web.Request) -> str:
    try:
        return str(msgspec.convert(request.match_info["reader"], ReaderName))
    except msgspec.ValidationError:
        raise ApiError(Reason.INVALID_INPUT, "a reader's name is 1-32 of a-z, 0-9 and -") from None


def tap_event(app: web.Application, reader: str, idm: str) -> TapEvent:
    card = app[till_hub_key].cards.get(idm)
    return TapEvent(
        reader=reader,
        idm_last4=idm[-4:],
        member_no="" if card is None else card.member_no,
        status="unknown" if card is None else CardStatus(card.status).value,
    )


async def post_tap(request: web.Request) -> web.Response:
    reader = _reader_of(request)
    body = await read_body(request, TapBody)
    event = tap_event(request.app, reader, body.idm)
    listeners = request.app[counter_taps_key].publish(event)
    return json_response(TapDelivered(event=event, listeners=listeners))


async def _events(listener: _Listener, stream_s: float) -> AsyncIterator[bytes]:
    """The stream's lines: each tap as an event, a comment when idle; ends at `stream_s`."""
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + stream_s
    while (left := ends_at - loop.time()) > 0:
        event = await listener.next(min(KEEPALIVE_S, left))
        if event is None:
            yield b": keep-alive\n\n"
        else:
            yield b"event: card\ndata: " + msgspec.json.encode(event) + b"\n\n"


async def stream_events(request: web.Request) -> web.StreamResponse:
    """The reader's events. A client that does not ask for an event stream (`Accept:
    text/event-stream`, as EventSource does) gets the first line and the stream's end at
    once: it is bounded by the request timeout like any request, and must not hang."""
    reader = _reader_of(request)
    streaming = request.headers.get("Accept", "") == "text/event-stream"
    with request.app[counter_taps_key].listen(reader) as listener:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        # The first line tells the page (and a test) that it is listening now.
        await response.write(b": listening\n\n")
        async for chunk in _events(listener, STREAM_MAX_S if streaming else 0.0):
            await response.write(chunk)
    return response


_R = "/api/v1/counter/readers/{reader}"

COUNTER_TAP_ROUTES: tuple[Route, ...] = (
    Route(
        method="POST",
        path=f"{_R}/taps",
        summary="A card laid on a counter's reader: pages listening to it are told its member",
        access=staff_may(Permission.MEMBERS_READ),
        handler=post_tap,
        request=TapBody,
        response=TapDelivered,
    ),
    Route(
        method="GET",
        path=f"{_R}/events",
        summary="Server-sent events: each card laid on the reader, with its member",
        access=staff_may(Permission.MEMBERS_READ),
        handler=stream_events,
        content_type="text/event-stream",
    ),
)
