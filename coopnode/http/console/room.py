"""What a console part brings (`ConsolePart`, `MenuEntry`), and the app keys the room
keeps its pages and menu under."""

from __future__ import annotations

import msgspec
from aiohttp import web

from coopnode.domain.staff import Permission
from coopnode.http.edge import Route


class MenuEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A link in the frame's menu, shown to staff whose role grants `permission`."""

    path: str
    label: str  # a message id
    permission: Permission


class ConsolePart(msgspec.Struct, frozen=True, kw_only=True):
    """One part of the console: its pages (edge `Route`s under /console) and its menu."""

    name: str
    routes: tuple[Route, ...]
    menu: tuple[MenuEntry, ...] = ()


# The console's pages as served, each behind its access: read by the permission tests.
console_routes_key: web.AppKey[tuple[Route, ...]] = web.AppKey("console_routes")
console_menu_key: web.AppKey[tuple[MenuEntry, ...]] = web.AppKey("console_menu")
