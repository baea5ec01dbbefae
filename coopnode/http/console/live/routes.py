"""The live lunch view's API: the latest figures, and a stream of them as server-sent
events (`text/event-stream`, one `figures` event per sampling interval)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from coopnode.domain.money import Reason
from coopnode.domain.staff import Permission
from coopnode.http.console.live.board import LiveBoard, LiveFigures, WatchersFull, live_board_key
from coopnode.http.edge import Route, staff_may
from coopnode.http.errors import ApiError, asks_event_stream


async def live_figures(request: web.Request) -> web.Response:
    board = request.app[live_board_key]
    return web.Response(body=board.latest, content_type="application/json")


def _event(data: bytes) -> bytes:
    return b"event: figures\ndata: " + data + b"\n\n"


async def live_events(request: web.Request) -> web.StreamResponse:
    """One `figures` event now, then one per interval, until the watcher goes or the node
    stops. A watcher that went away is noticed at the next write, an interval later.

    Only a request that asks for `text/event-stream` (as EventSource does) is streamed;
    any other gets the one event and the end, within the request timeout it is under."""
    stream = request.app[live_board_key].watch()
    try:
        first = await anext(stream)
    except WatchersFull as error:
        raise ApiError(Reason.OVERLOADED, str(error)) from None
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    try:
        await response.prepare(request)
        await response.write(_event(first))
        if asks_event_stream(request):
            async for figures in stream:
                await response.write(_event(figures))
    except (ConnectionError, RuntimeError):
        pass  # The watcher went away.
    finally:
        await stream.aclose()
    return response


async def run_board(app: web.Application) -> AsyncIterator[None]:
    """The board's sampler lives as long as the app (a `cleanup_ctx`)."""
    board = app[live_board_key]
    task = asyncio.get_running_loop().create_task(board.run())
    yield
    board.stop()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def stop_watchers(app: web.Application) -> None:
    """On shutdown, before the runner waits for its handlers: end every live stream."""
    app[live_board_key].stop()


def setup_live(app: web.Application, board: LiveBoard) -> None:
    app[live_board_key] = board
    app.cleanup_ctx.append(run_board)
    app.on_shutdown.append(stop_watchers)


LIVE_ROUTES: tuple[Route, ...] = (
    Route(
        method="GET",
        path="/api/v1/console/live",
        summary="The live lunch view's latest figures: taps per minute, declines by reason, "
        "tills connected and the queue-wait estimate per store",
        access=staff_may(Permission.LIVE_READ),
        handler=live_figures,
        response=LiveFigures,
    ),
    Route(
        method="GET",
        path="/api/v1/console/live/events",
        summary="The live figures as server-sent events: one `figures` event now and one "
        "per sampling interval (live.sample_interval_s); at most live.watchers_max at once",
        access=staff_may(Permission.LIVE_READ),
        handler=live_events,
        response=LiveFigures,
        content_type="text/event-stream",
    ),
)

__all__ = ["LIVE_ROUTES", "setup_live"]
