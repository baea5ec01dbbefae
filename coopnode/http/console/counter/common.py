"""What the counter's pages share: rendering with the counter's labels, a refusal in the
clerk's language, the idempotency key a form carries, and the paths."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
from aiohttp import web

from coopnode.catalogues.labels import PURSE_LABELS
from coopnode.domain.messages import MemberNo
from coopnode.domain.money import Reason
from coopnode.http.console.counter.labels import COUNTER_REFUSALS, COUNTER_TEMPLATE_LABELS
from coopnode.http.console.pages import error_page, permissions_of, refusal_text, render, text
from coopnode.http.errors import ApiError, IdentityRefused, PageError

COUNTER = "/console/counter"
DESK = "/console/counter/desk"


def member_path(member_no: str) -> str:
    return f"{COUNTER}/members/{member_no}"


def member_no_in_path(request: web.Request) -> str:
    try:
        return str(msgspec.convert(request.match_info["member_no"], MemberNo))
    except msgspec.ValidationError:
        raise ApiError(Reason.INVALID_INPUT, "a member number is 12 digits") from None


def form_key(action: str) -> str:
    """The idempotency key a form carries from the page that showed it: the same form
    submitted twice books once."""
    return f"counter-{action}-{secrets.token_hex(8)}"


def counter_render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
) -> web.Response:
    may = {permission.value for permission in permissions_of(request)}
    values = {
        **COUNTER_TEMPLATE_LABELS,
        "purse_labels": PURSE_LABELS,
        "may": may,
        **(context or {}),
    }
    return render(request, template, values, status=status)


def refused_text(request: web.Request, refusal: ApiError) -> str:
    """A refusal in the clerk's language: the counter's own words, else the console's."""
    key = COUNTER_REFUSALS.get(refusal.reason)
    if key is not None:
        return text(request, key)
    return refusal_text(request, refusal)


def form_field(form: Mapping[str, str], name: str) -> str:
    return form.get(name, "").strip()


PageHandler = Callable[[web.Request], Awaitable[web.Response]]


def guarded(handler: PageHandler) -> PageHandler:
    """A counter page whose refusals by the wallet or the registry (a node that does not
    answer, a record that is not there) read as the error page in the clerk's language,
    not as the API's JSON; the identity actor's and the page's own go to the frame."""

    @functools.wraps(handler)
    async def page(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except (IdentityRefused, PageError):
            raise
        except ApiError as refusal:
            return error_page(request, refused_text(request, refusal), refusal.status)

    return page
