"""The development outbox: every mail, SMS and call the node sent, as a page and as JSON.

Registered only when the node runs in development with its embedded mail server; in
production these routes do not exist (404), since the outbox holds passcodes in clear.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from aiohttp import web

from coopnode.actors.notify.actor import OutboxPort
from coopnode.actors.notify.messages import Channel
from coopnode.actors.notify.outbox import OutboxMessage
from coopnode.domain.bounds import Cursor
from coopnode.http.edge import PUBLIC, Route, read_query

outbox_key = web.AppKey("outbox", OutboxPort)


class OutboxQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    to: Annotated[str, msgspec.Meta(max_length=254)] = ""
    channel: Channel | None = None
    # Only messages newer than this sequence number.
    after: Cursor = 0


class OutboxPage(msgspec.Struct, frozen=True):
    messages: list[OutboxMessage]
    last_sequence: int


async def _messages(request: web.Request) -> tuple[list[OutboxMessage], int]:
    query = read_query(request, OutboxQuery)
    snapshot = await request.app[outbox_key].snapshot(query.to or None, query.channel, query.after)
    return snapshot.messages, snapshot.last_sequence


async def outbox_json(request: web.Request) -> web.Response:
    messages, last = await _messages(request)
    body = msgspec.json.encode(OutboxPage(messages=messages, last_sequence=last))
    return web.Response(body=body, content_type="application/json")


def _row(message: OutboxMessage) -> str:
    sent = datetime.fromtimestamp(message.received_at_s, UTC).strftime("%Y-%m-%d %H:%M:%S")
    cells = (
        str(message.sequence),
        sent,
        message.channel.value,
        message.to,
        message.subject,
    )
    columns = "".join(f"<td>{html.escape(cell)}</td>" for cell in cells)
    return f"<tr>{columns}<td><pre>{html.escape(message.body)}</pre></td></tr>"


async def outbox_page(request: web.Request) -> web.Response:
    messages, _ = await _messages(request)
    rows = "".join(_row(message) for message in reversed(messages))
    page = (
        '<!doctype html><html lang="ja"><head><meta charset="utf-8">'
        "<title>開発用送信箱 (development outbox)</title>"
        "<style>body{font-family:sans-serif}td{vertical-align:top;border-top:1px solid #ccc;"
        "padding:4px}pre{white-space:pre-wrap;margin:0}</style></head><body>"
        "<h1>開発用送信箱 (development outbox)</h1>"
        "<p>Mail, SMS and calls the node sent, newest first. Development only.</p>"
        "<table><tr><th>#</th><th>sent (UTC)</th><th>channel</th><th>to</th>"
        f"<th>subject</th><th>body</th></tr>{rows}</table></body></html>"
    )
    headers = {"Cache-Control": "no-store"}
    return web.Response(text=page, content_type="text/html", charset="utf-8", headers=headers)


DEV_ROUTES: tuple[Route, ...] = (
    Route(method="GET", path="/dev/outbox", handler=outbox_page, content_type="text/html",
          access=PUBLIC, query_type=OutboxQuery,
          summary="Development only: the outbox as a page"),
    Route(method="GET", path="/dev/outbox.json", handler=outbox_json, response=OutboxPage,
          access=PUBLIC, query_type=OutboxQuery,
          summary="Development only: the outbox as JSON"),
)  # fmt: skip
