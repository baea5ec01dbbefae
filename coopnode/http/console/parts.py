"""The console's parts, one line each, and the room's set-up on the node's app.

To add a part: a module (or sub-package) of this room exposing a `ConsolePart` (see the
room's docstring), and one line in `PARTS`.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from coopnode.http.console import audit, counter, signin, staff
from coopnode.http.console.books import pages as books
from coopnode.http.console.live import pages as live_pages
from coopnode.http.console.pages import STATIC, console_not_found, serve, setup_templates
from coopnode.http.console.room import ConsolePart, console_menu_key, console_routes_key
from coopnode.http.console.tills import pages as tills_pages

PARTS: tuple[ConsolePart, ...] = (
    signin.PART,
    staff.PART,
    audit.PART,
    books.PART,
    counter.PART,
    tills_pages.PART,
    live_pages.PART,
)

_STATIC = Path(__file__).parent / "static"


def setup_console(app: web.Application, parts: tuple[ConsolePart, ...] = PARTS) -> None:
    """The frame's templates, the static files, and every part's pages and menu."""
    setup_templates(app)
    routes = tuple(route for part in parts for route in part.routes)
    for route in routes:
        if not route.path.startswith("/console"):
            raise ValueError(f"a console page lives under /console, not {route.path}")
    app[console_routes_key] = routes
    app[console_menu_key] = tuple(entry for part in parts for entry in part.menu)
    app.router.add_static(STATIC, _STATIC, append_version=False)
    # Innermost, after the portal's: the router's 404 under /console is the console's.
    app.middlewares.append(console_not_found)
    for route in routes:
        app.router.add_route(route.method, route.path, serve(route))
