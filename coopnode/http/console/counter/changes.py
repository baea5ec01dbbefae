"""The changes a clerk makes to a member's account at the counter, each on its own form:
a lost card and the new one (the balance stays with the wallet), and the address change
after first use with the identity check (FLOWS §1 sends the member to the counter)."""

from __future__ import annotations

import datetime

import msgspec
from aiohttp import web

from coopnode.domain.counter import IdDocument
from coopnode.domain.till_frames import Idm
from coopnode.http.api.counter import MailBody, change_mail, member_file, replace_card
from coopnode.http.console.counter.common import (
    counter_render,
    form_field,
    member_no_in_path,
    member_path,
    refused_text,
)
from coopnode.http.console.pages import FORM, see_other
from coopnode.http.errors import ApiError


async def _form_page(
    request: web.Request,
    template: str,
    *,
    member_no: str,
    error: str = "",
    status: int = 200,
) -> web.Response:
    context = {
        "file": await member_file(request, member_no),
        "error": error,
        "form": dict(request.get(FORM) or {}),
        "documents": list(IdDocument),
    }
    return counter_render(request, template, context, status=status)


async def card_page(request: web.Request) -> web.Response:
    return await _form_page(request, "counter/card.html", member_no=member_no_in_path(request))


async def card_action(request: web.Request) -> web.Response:
    member_no = member_no_in_path(request)
    form = request[FORM]
    raw = form_field(form, "new_idm").lower()
    try:
        new_idm = str(msgspec.convert(raw, Idm)) if raw else None
        await replace_card(request, member_no, new_idm)
    except msgspec.ValidationError:
        refusal = ApiError("invalid_input", "an IDm is 16 hex digits")
        return await _form_page(
            request, "counter/card.html", member_no=member_no,
            error=refused_text(request, refusal), status=400,
        )  # fmt: skip
    except ApiError as refusal:
        return await _form_page(
            request, "counter/card.html", member_no=member_no,
            error=refused_text(request, refusal), status=refusal.status,
        )  # fmt: skip
    return see_other(f"{member_path(member_no)}?done=card")


async def mail_page(request: web.Request) -> web.Response:
    return await _form_page(request, "counter/mail.html", member_no=member_no_in_path(request))


def _mail_body(request: web.Request) -> MailBody:
    form = request[FORM]
    try:
        return MailBody(
            mail=form_field(form, "mail"),
            birth_date=datetime.date.fromisoformat(form_field(form, "birth_date")),
            identification=IdDocument(form_field(form, "identification")),
        )
    except ValueError:
        raise ApiError("invalid_input", "the address, birth date or identification") from None


async def mail_action(request: web.Request) -> web.Response:
    member_no = member_no_in_path(request)
    try:
        await change_mail(request, member_no, _mail_body(request))
    except ApiError as refusal:
        return await _form_page(
            request, "counter/mail.html", member_no=member_no,
            error=refused_text(request, refusal), status=refusal.status,
        )  # fmt: skip
    return see_other(f"{member_path(member_no)}?done=mail")
