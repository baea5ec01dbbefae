"""The portal home's desk (FLOWS §3 step 5): inquiries (お問合せ), document requests
(資料請求), event applications (イベント申込) and the student-ID IC card (学生証ICカード登録).

The lists live in the identity actor (`identity_desk`); this module checks the forms,
shows errors next to their fields and sends the rest on. A form carries the session's
CSRF token and a one-time key (`idem`), so a second submit of the same form is the first
one; an event is applied to once per member however often the button is pressed.

The IC card is bound through the card registry, as staff bind one (`till_api`): the
front's `TillHub.apply` with `BindCard`. The registry allows one active card per member
and never binds a card twice, so a member who has a card is sent to the counter to
reissue it, and a card bound before is refused without saying to whom.
"""

from __future__ import annotations

import datetime
import re
import time
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from coopnode.actors.identity.messages import (
    AuditRecord,
    CardAttempt,
    DeskPage,
    DeskView,
    DocumentNew,
    EventApply,
    EventCancel,
    InquiryNew,
    Refused,
)
from coopnode.actors.registry.messages import BindCard, CardRecord
from coopnode.catalogues import N_
from coopnode.domain.bounds import RecordNo, parse_int
from coopnode.domain.errors import InvalidInput
from coopnode.domain.identity import SessionKind
from coopnode.domain.member_desk import AnswerBy, InquiryCategory, text_length_ok
from coopnode.domain.messages import Declined, GetWallet
from coopnode.http.api.wallet import wallet_client_key
from coopnode.http.errors import status_of
from coopnode.http.identity_front import ask
from coopnode.http.portal.core import (
    IDEMPOTENCY_FIELD,
    PageError,
    page,
    portal_settings_key,
    read_form,
    refusal_text,
    render,
    see_other,
    signed_in,
    text,
)
from coopnode.http.portal.flows import try_ask
from coopnode.http.portal.wallet import settings_key
from coopnode.http.tills.channel import till_hub_key
from coopnode.http.tills.hub import RegistryUnavailable

_ZONE = ZoneInfo("Asia/Tokyo")
_IDM = re.compile(r"^[0-9a-f]{16}$")
_IDEM_CHARS_MAX = 64


def day(at_s: float) -> str:
    """A moment as the member's calendar day; an empty cell for "not yet"."""
    if at_s <= 0:
        return ""
    return datetime.datetime.fromtimestamp(at_s, _ZONE).strftime("%Y/%m/%d")


def moment(at_s: float) -> str:
    return datetime.datetime.fromtimestamp(at_s, _ZONE).strftime("%Y/%m/%d %H:%M")


async def desk_of(request: web.Request, member_no: str) -> DeskPage:
    reply = await ask(request, DeskView(member_no=member_no))
    if not isinstance(reply, DeskPage):
        raise TypeError("the desk answered with something else")
    return reply


def active_card(request: web.Request, member_no: str) -> CardRecord | None:
    """The member's active card from the front's copy of the registry."""
    hub = request.app.get(till_hub_key)
    if hub is None:
        return None
    return hub.active_cards.get(member_no)


def desk_context(request: web.Request, desk: DeskPage) -> dict[str, Any]:
    """What the desk's lists (`desk_lists.html`) need besides the desk itself."""
    coop = request.app[settings_key].coops.get(desk.coop)
    return {
        "desk": desk,
        "coop_name": coop.name if coop is not None else desk.coop,
        "day": day,
        "moment": moment,
        "now_s": time.time(),
    }


def _render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    base = {"day": day, "moment": moment, "bounds": request.app[portal_settings_key]}
    if "desk" in context:
        base.update(desk_context(request, context["desk"]))
    return render(
        request,
        template,
        {**base, **context},
        status=status,
        session=SessionKind.PORTAL,
        here=request.path if request.method == "GET" else None,
    )


def _idem(form: dict[str, str]) -> str:
    return form.get(IDEMPOTENCY_FIELD, "")[:_IDEM_CHARS_MAX]


# Inquiries -------------------------------------------------------------------------------


@page
async def inquiry_form(request: web.Request) -> web.Response:
    await signed_in(request, (SessionKind.PORTAL,))
    return _render(request, "desk/inquiry_new.html", {"categories": list(InquiryCategory)})


def _inquiry_errors(request: web.Request, form: dict[str, str]) -> dict[str, str]:
    bounds = request.app[portal_settings_key]
    errors: dict[str, str] = {}
    if form.get("category", "") not in {c.value for c in InquiryCategory}:
        errors["category"] = text(request, N_("error.desk_choice"))
    if form.get("answer_by", "") not in {a.value for a in AnswerBy}:
        errors["answer_by"] = text(request, N_("error.desk_choice"))
    if not text_length_ok(form.get("subject", ""), 1, bounds.inquiry_subject_chars_max):
        errors["subject"] = text(
            request, N_("error.desk_length"), min=1, max=bounds.inquiry_subject_chars_max
        )
    low, high = bounds.inquiry_body_chars_min, bounds.inquiry_body_chars_max
    if not text_length_ok(form.get("body", ""), low, high):
        errors["body"] = text(request, N_("error.desk_length"), min=low, max=high)
    return errors


@page
async def inquiry_send(request: web.Request) -> web.Response:
    form = await read_form(request)
    who = await signed_in(request, (SessionKind.PORTAL,), form)
    errors = _inquiry_errors(request, form)
    context: dict[str, Any] = {"categories": list(InquiryCategory), "form": form}
    if errors:
        return _render(request, "desk/inquiry_new.html", {**context, "errors": errors}, 400)
    message = InquiryNew(
        member_no=who.subject,
        category=InquiryCategory(form["category"]),
        subject=form["subject"],
        body=form["body"],
        answer_by=AnswerBy(form["answer_by"]),
        idem=_idem(form),
    )
    reply = await try_ask(request, message)
    if isinstance(reply, Refused):
        errors = {"body": refusal_text(request, reply)}
        return _render(
            request,
            "desk/inquiry_new.html",
            {**context, "errors": errors},
            status_of(reply.reason),
        )
    return see_other("/portal/home?done=inquiry#inquiries")


# Document requests -----------------------------------------------------------------------


def _offers(request: web.Request, coop: str) -> list[Any]:
    return [
        offer
        for offer in request.app[portal_settings_key].documents
        if not offer.coops or coop in offer.coops
    ]


@page
async def document_form(request: web.Request) -> web.Response:
    who = await signed_in(request, (SessionKind.PORTAL,))
    desk = await desk_of(request, who.subject)
    return _render(request, "desk/document_new.html", {"offers": _offers(request, desk.coop)})


@page
async def document_send(request: web.Request) -> web.Response:
    form = await read_form(request)
    who = await signed_in(request, (SessionKind.PORTAL,), form)
    document_id = form.get("document_id", "")
    desk = await desk_of(request, who.subject)
    context: dict[str, Any] = {"offers": _offers(request, desk.coop), "form": form}
    if not document_id:
        errors = {"document_id": text(request, N_("error.desk_choice"))}
        return _render(request, "desk/document_new.html", {**context, "errors": errors}, 400)
    message = DocumentNew(member_no=who.subject, document_id=document_id[:40], idem=_idem(form))
    reply = await try_ask(request, message)
    if isinstance(reply, Refused):
        errors = {"document_id": refusal_text(request, reply)}
        return _render(
            request,
            "desk/document_new.html",
            {**context, "errors": errors},
            status_of(reply.reason),
        )
    return see_other("/portal/home?done=document#documents")


# Events ----------------------------------------------------------------------------------


async def _events_page(
    request: web.Request, member_no: str, *, status: int = 200, error: str = "", done: str = ""
) -> web.Response:
    desk = await desk_of(request, member_no)
    context = {"desk": desk, "error": error, "done": done}
    return _render(request, "desk/events.html", context, status)


@page
async def events(request: web.Request) -> web.Response:
    who = await signed_in(request, (SessionKind.PORTAL,))
    done = {"applied": N_("desk.event_applied"), "cancelled": N_("desk.event_cancelled")}.get(
        request.query.get("done", ""), ""
    )
    return await _events_page(request, who.subject, done=done)


def _event_id(request: web.Request) -> int:
    try:
        return parse_int(request.match_info["event_id"], RecordNo, "event_id")
    except InvalidInput:
        raise PageError(404, N_("error.event_unknown")) from None


@page
async def event_apply(request: web.Request) -> web.Response:
    form = await read_form(request)
    who = await signed_in(request, (SessionKind.PORTAL,), form)
    reply = await try_ask(request, EventApply(member_no=who.subject, event_id=_event_id(request)))
    if isinstance(reply, Refused):
        message = refusal_text(request, reply)
        return await _events_page(
            request, who.subject, status=status_of(reply.reason), error=message
        )
    return see_other("/portal/events?done=applied")


@page
async def event_cancel(request: web.Request) -> web.Response:
    form = await read_form(request)
    who = await signed_in(request, (SessionKind.PORTAL,), form)
    reply = await try_ask(request, EventCancel(member_no=who.subject, event_id=_event_id(request)))
    if isinstance(reply, Refused):
        message = refusal_text(request, reply)
        return await _events_page(
            request, who.subject, status=status_of(reply.reason), error=message
        )
    return see_other("/portal/events?done=cancelled")


# The student-ID IC card ------------------------------------------------------------------


def _card_page(
    request: web.Request, member_no: str, *, status: int = 200, error: str = "", done: bool = False
) -> web.Response:
    card = active_card(request, member_no)
    context = {
        "card": card,
        "done": done,
        "errors": {"idm": error} if error else {},
        "form": {},
    }
    return _render(request, "desk/ic_card.html", context, status)


@page
async def ic_card(request: web.Request) -> web.Response:
    who = await signed_in(request, (SessionKind.PORTAL,))
    return _card_page(request, who.subject, done=request.query.get("done") == "1")


async def _card_refusal(request: web.Request, member_no: str, idm: str) -> str:
    """Why the card cannot be bound, as an error key; empty when it can."""
    if active_card(request, member_no) is not None:
        return N_("error.card_active")
    reply = await try_ask(request, CardAttempt(member_no=member_no))
    if isinstance(reply, Refused):
        return N_("error.desk_daily_limit")
    wallet = await request.app[wallet_client_key].submit(GetWallet(member_no=member_no))
    if isinstance(wallet, Declined):
        return N_("error.card_no_wallet")
    hub = request.app.get(till_hub_key)
    if hub is None:
        return N_("error.cards_unavailable")
    try:
        change = await hub.apply(BindCard(idm=idm, member_no=member_no))
    except RegistryUnavailable:
        return N_("error.cards_unavailable")
    if not change.ok:
        # The registry says "duplicate" both when the member has a card (another tab
        # bound one a moment ago) and when the card was bound before, to anyone.
        return (
            N_("error.card_active") if active_card(request, member_no) else N_("error.card_taken")
        )
    return ""


@page
async def ic_card_register(request: web.Request) -> web.Response:
    form = await read_form(request)
    who = await signed_in(request, (SessionKind.PORTAL,), form)
    idm = form.get("idm", "").replace(" ", "").replace("-", "").lower()
    if not _IDM.match(idm):
        return _card_page(
            request, who.subject, status=400, error=text(request, N_("error.idm_format"))
        )
    refusal = await _card_refusal(request, who.subject, idm)
    if refusal:
        status = 503 if refusal == N_("error.cards_unavailable") else 409
        return _card_page(request, who.subject, status=status, error=text(request, refusal))
    # The IDm names a card, not a secret; the audit log keeps only its last four digits.
    record = AuditRecord(
        actor=who.subject, action="card.register", target=who.subject, detail=f"…{idm[-4:]}"
    )
    await ask(request, record)
    return see_other("/portal/ic-card?done=1")


def desk_routes() -> list[web.RouteDef]:
    return [
        web.get("/portal/inquiries/new", inquiry_form),
        web.post("/portal/inquiries", inquiry_send),
        web.get("/portal/documents/new", document_form),
        web.post("/portal/documents", document_send),
        web.get("/portal/events", events),
        web.post(r"/portal/events/{event_id:[0-9]{1,15}}/apply", event_apply),
        web.post(r"/portal/events/{event_id:[0-9]{1,15}}/cancel", event_cancel),
        web.get("/portal/ic-card", ic_card),
        web.post("/portal/ic-card", ic_card_register),
    ]
