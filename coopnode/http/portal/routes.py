"""The member portal's pages, set up on the node's aiohttp application.

    /portal/...          the guide, mail-address change, password, portal sign-in, home
                         and family access (/portal/family); inquiries, document requests,
                         events and the IC card (/portal/inquiries, /portal/documents,
                         /portal/events, /portal/ic-card); a guardian's invitation,
                         sign-in and home (/portal/guardian)
    /mypage/...          the my-page login, e-money registration and the e-money pages
    /wallet/...          the wallet's sign-in and consent screen (FLOWS §5)
    /lang/{ja,en}        the language switch
    /static/...          the style sheet, the one small script and the icon

The pages call the identity actor and the wallet shards in-process, through the same
clients as the JSON API; nothing here calls the node's own HTTP endpoints.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
from aiohttp import web

from coopnode.catalogues import languages
from coopnode.http.portal.charge import charge_routes
from coopnode.http.portal.core import (
    language,
    page_not_found,
    portal_settings_key,
    setup_templates,
)
from coopnode.http.portal.desk import desk_routes
from coopnode.http.portal.family import family_routes
from coopnode.http.portal.flows import flow_routes
from coopnode.http.portal.guardian import guardian_routes
from coopnode.http.portal.home import home_routes
from coopnode.http.portal.signin import sign_in_routes
from coopnode.http.portal.wallet import settings_key, wallet_routes
from coopnode.settings import Settings

_STATIC = Path(__file__).parent / "static"


# Domains that cannot receive mail (RFC 2606, RFC 6761): a development sender on one of
# them is not shown to members as the domain to let through their filters.
_RESERVED_DOMAINS = ("example", "test", "invalid", "localhost")


def sender_domain(mail_from: str) -> str:
    """The domain of the node's sender address ("大学生協 <noreply@univ.coop>" → "univ.coop"),
    or "" when it is a reserved example domain."""
    address = mail_from.rsplit("<", 1)[-1].rstrip(">").strip()
    _, at, domain = address.rpartition("@")
    labels = domain.lower().split(".")
    reserved = labels[-1] in _RESERVED_DOMAINS or labels[-2:-1] == ["example"]
    return "" if not at or not domain or reserved else domain.lower()


async def _root(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/portal")


def setup_portal(app: web.Application, settings: Settings) -> None:
    if settings.portal.default_lang not in languages():
        raise ValueError(
            f"portal.default_lang is {settings.portal.default_lang!r}, but the catalogues "
            f"hold {', '.join(languages())} (coopnode/catalogues/*.po)"
        )
    app[portal_settings_key] = settings.portal
    app[settings_key] = settings
    setup_templates(app)
    environment = aiohttp_jinja2.get_env(app)
    environment.globals["sender_domain"] = sender_domain(settings.notifier.mail_from)
    # Innermost, after the node's JSON error middleware: it sees the router's 404 first.
    app.middlewares.append(page_not_found)
    app.router.add_get("/", _root)
    app.router.add_get("/lang/{lang}", language)
    app.router.add_static("/static/", _STATIC, append_version=False)
    app.router.add_routes([*flow_routes(), *sign_in_routes(), *home_routes(), *wallet_routes()])
    app.router.add_routes(charge_routes())
    app.router.add_routes(family_routes())
    app.router.add_routes(desk_routes())
    app.router.add_routes(guardian_routes())
