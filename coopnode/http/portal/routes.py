"""The member portal's pages, set up on the node's aiohttp application.

    /portal/...          the guide, mail-address change, password, portal sign-in, home
                         and family access (/portal/family); inquiries, document requests,
                         events and the IC card (/portal/inquiries, /portal/documents,
                         /portal/events, /portal/ic-card); a guardian's invitation,
                         sign-in and home (/portal/guardian)
    /mypage/...          the my-page login, e-money registration and the e-money pages
    /wallet/...          the wallet's sign-in and consent screen (FLOWS §5)
    /lang/{ja,en}        the language switch
    /static/...          the style sheet and the one small script

The pages call the identity actor and the wallet shards in-process, through the same
clients as the JSON API; nothing here calls the node's own HTTP endpoints.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from coopnode.http.portal.charge import charge_routes
from coopnode.http.portal.core import language, portal_settings_key, setup_templates
from coopnode.http.portal.desk import desk_routes
from coopnode.http.portal.family import family_routes
from coopnode.http.portal.flows import flow_routes
from coopnode.http.portal.guardian import guardian_routes
from coopnode.http.portal.home import home_routes
from coopnode.http.portal.signin import sign_in_routes
from coopnode.http.portal.wallet import settings_key, wallet_routes
from coopnode.settings import Settings

_STATIC = Path(__file__).parent.parent / "static"


async def _root(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/portal")


def setup_portal(app: web.Application, settings: Settings) -> None:
    app[portal_settings_key] = settings.portal
    app[settings_key] = settings
    setup_templates(app)
    app.router.add_get("/", _root)
    app.router.add_get("/lang/{lang}", language)
    app.router.add_static("/static/", _STATIC, append_version=False)
    app.router.add_routes([*flow_routes(), *sign_in_routes(), *home_routes(), *wallet_routes()])
    app.router.add_routes(charge_routes())
    app.router.add_routes(family_routes())
    app.router.add_routes(desk_routes())
    app.router.add_routes(guardian_routes())
