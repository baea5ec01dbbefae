"""The store network's webhook, the staff sweep, and the simulated store network.

    POST /webhooks/konbini                  a signed payment notification (see
                                            `payments.konbini`); credited exactly once
    POST /api/v1/staff/konbini/sweep        cancel expired charges now (staff token);
                                            in development `{"at_ms": …}` sweeps as of
                                            that instant, the tests' clock
    POST /api/v1/staff/konbini/charges/{charge_id}/refund
                                            record that a charge the store network reported
                                            paid, but the wallet would not credit (the purse
                                            cap was reached meanwhile), was paid back to the
                                            member (staff token; idempotent; audited)
    GET  /dev/konbini                       the simulated store counter (development)
    POST /dev/konbini                       "pay at the store": sends a signed notice
    GET  /dev/konbini/due/{number}          what the simulated network knows of a number

The webhook answers 200 when the charge is credited (or was already), 401 for a bad or
stale signature, 404 for an unknown number, 409 for an expired or cancelled charge and
422 for an amount that is not the charge's, and 503 when the wallet did not take the
credit now or the same payment's notice is being credited at this moment (the network
sends it again); a refused notification changes nothing. Two notices of one payment at
once ask the wallet once: the payments store lets one caller at a time credit a charge.
The three API routes are in `KONBINI_ROUTES`, which also feeds the OpenAPI document; the
simulator's pages are development tools and are not in it.
"""

from __future__ import annotations

import datetime
import time
from typing import Annotated
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from coopnode.actors.identity.messages import AuditRecord
from coopnode.actors.payments.messages import REFUND_NOTE_MAX_CHARS, ChargeRecord, ChargeStatus
from coopnode.domain.bounds import EpochMs
from coopnode.domain.money import Reason
from coopnode.domain.staff import Permission
from coopnode.http.edge import PUBLIC, Body, Route, read_body, staff_actor, staff_may
from coopnode.http.errors import ApiError
from coopnode.http.identity_front import ask
from coopnode.http.portal.core import check_form_csrf, page, read_form, render
from coopnode.logs import get_logger
from coopnode.payments.charging import ChargeRefused, Charging
from coopnode.payments.konbini import (
    SIGNATURE_HEADER,
    DueAmount,
    PaymentNotice,
    pay_at_store,
    verify,
)
from coopnode.settings import Environment, Settings

log = get_logger(__name__)

charging_key = web.AppKey("charging", Charging)
konbini_key_key = web.AppKey("konbini_webhook_key", str)
payments_settings_key = web.AppKey("payments_node_settings", Settings)
# A notification is a few hundred bytes; anything much bigger is not one.
NOTICE_MAX_BYTES = 4096
_notice_decoder = msgspec.json.Decoder(PaymentNotice)
_REFUSAL_STATUS = {"unknown": 404, "expired": 409, "amount": 422}
# How long HOME keeps telling the member that a charge was refunded (about a month's
# statement); the charge page keeps saying it for as long as it is listed.
REFUNDED_SHOWN_DAYS = 31
# A refund's refusals: the catalogue key, the reason code (its status is the table's in
# `errors.py`), and a sentence for staff.
_REFUND_REFUSALS: dict[str, tuple[str, str]] = {
    "error.unknown": ("unknown_charge", "no charge has this id"),
    "error.not_refundable": (
        "not_refundable",
        "only a convenience-store charge that was paid but not credited can be refunded",
    ),
    "error.already_credited": (
        "already_credited",
        "the wallet took the credit when asked again: the charge is credited, not refunded",
    ),
    "error.unavailable": (Reason.UNAVAILABLE, "the wallet did not answer; try again"),
}


class SweepRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    at_ms: EpochMs | None = None


class SweepAnswer(msgspec.Struct, frozen=True, kw_only=True):
    expired: list[str]  # the ids of the charges this sweep expired


class WebhookAnswer(msgspec.Struct, frozen=True, kw_only=True):
    # credited, already_credited, refunded, ignored; not_credited or crediting (503: the
    # same notice is answered for good once the wallet answers, or the notice being
    # credited at this moment has finished); or a refusal: bad_signature, unknown,
    # expired, amount, invalid, too_large.
    outcome: str
    charge_id: str = ""


class KonbiniRefundRequest(Body, frozen=True):
    # Why the money went back (for the audit log), e.g. "purse cap reached; cash at counter".
    note: Annotated[str, msgspec.Meta(max_length=REFUND_NOTE_MAX_CHARS)] = ""


class KonbiniRefundAnswer(msgspec.Struct, frozen=True, kw_only=True):
    charge_id: str
    member_no: str
    amount_yen: int
    status: ChargeStatus
    # False when the charge had been refunded before: the answer repeats, nothing changed.
    refunded_now: bool


def _answer(status: int, outcome: str, charge_id: str = "") -> web.Response:
    body = {"outcome": outcome, "charge_id": charge_id}
    return web.json_response(body, status=status)


async def konbini_webhook(request: web.Request) -> web.Response:
    body = await request.content.read(NOTICE_MAX_BYTES + 1)
    if len(body) > NOTICE_MAX_BYTES:
        return _answer(413, "too_large")
    settings = request.app[payments_settings_key].payments
    header = request.headers.get(SIGNATURE_HEADER, "")
    key = request.app[konbini_key_key]
    if not verify(key, header, body, time.time(), settings.konbini_webhook_tolerance_s):
        log.warning("konbini notification refused: bad signature")
        return _answer(401, "bad_signature")
    try:
        notice = _notice_decoder.decode(body)
    except msgspec.DecodeError:
        return _answer(400, "invalid")
    if notice.event != "payment.succeeded":
        return _answer(200, "ignored")
    try:
        record, outcome = await request.app[charging_key].konbini_paid(
            notice.payment_number, notice.amount
        )
    except ChargeRefused as refused:
        log.info("konbini notification refused", reason=refused.key)
        return _answer(_REFUSAL_STATUS.get(refused.key, 400), refused.key)
    # A refunded charge is final as well: the network must not send it again.
    status = 200 if outcome in ("credited", "already_credited", "refunded") else 503
    return _answer(status, outcome, record.charge_id)


async def konbini_sweep(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        wanted = msgspec.json.decode(raw or b"{}", type=SweepRequest)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise ApiError(Reason.INVALID_INPUT, f"invalid request: {error}") from None
    development = request.app[payments_settings_key].node.environment is Environment.DEVELOPMENT
    if wanted.at_ms is not None and not development:
        raise ApiError(Reason.INVALID_INPUT, "at_ms is for development only")
    expired = await request.app[charging_key].sweep(wanted.at_ms)
    return web.json_response({"expired": [record.charge_id for record in expired]})


async def konbini_refund(request: web.Request) -> web.Response:
    body = await read_body(request, KonbiniRefundRequest)
    charge_id = request.match_info["charge_id"]
    actor = staff_actor(request)
    try:
        record, refunded_now = await request.app[charging_key].refund_konbini(
            charge_id, actor, body.note
        )
    except ChargeRefused as refused:
        reason, message = _REFUND_REFUSALS.get(refused.key, ("refused", "the refund was refused"))
        raise ApiError(reason, message) from None
    if refunded_now:
        detail = f"{record.amount_yen} yen to member {record.member_no}; {body.note}".strip()
        await ask(
            request,
            AuditRecord(actor=actor, action="konbini.refund", target=charge_id, detail=detail),
        )
    answer = KonbiniRefundAnswer(
        charge_id=record.charge_id,
        member_no=record.member_no,
        amount_yen=record.amount_yen,
        status=record.status,
        refunded_now=refunded_now,
    )
    return web.Response(body=msgspec.json.encode(answer), content_type="application/json")


async def konbini_due(request: web.Request) -> web.Response:
    """What the simulated store network knows of a number: its amount and store."""
    number = request.match_info["number"]
    record = await request.app[charging_key].by_number(number)
    if record is None:
        return web.json_response({"error": "unknown payment number"}, status=404)
    due = DueAmount(payment_number=number, amount=record.amount_yen, store=record.store)
    return web.Response(body=msgspec.json.encode(due), content_type="application/json")


@page
async def simulator_form(request: web.Request) -> web.Response:
    return render(request, "emoney/konbini_simulator.html", {"result": ""})


@page
async def simulator_pay(request: web.Request) -> web.Response:
    form = await read_form(request)
    check_form_csrf(request, form)
    number = form.get("payment_number", "")
    url = f"http://{request.host}"
    status, body = await pay_at_store(url, request.app[konbini_key_key], number)
    result = f"{status} {body}"
    return render(request, "emoney/konbini_simulator.html", {"result": result, "form": form})


KONBINI_ROUTES: tuple[Route, ...] = (
    Route(
        method="POST",
        path="/webhooks/konbini",
        summary=(
            "The store network's payment notification, signed in the "
            f"{SIGNATURE_HEADER} header; credits the charge exactly once"
        ),
        handler=konbini_webhook,
        request=PaymentNotice,
        response=WebhookAnswer,
        error=WebhookAnswer,
        # The network signs each notice (the handler checks it over the body it read).
        access=PUBLIC,
    ),
    Route(
        method="POST",
        path="/api/v1/staff/konbini/sweep",
        summary="Expire the convenience-store charges past their deadline now",
        access=staff_may(Permission.NODE_OPERATE),
        audit="konbini.sweep",
        handler=konbini_sweep,
        request=SweepRequest,
        response=SweepAnswer,
    ),
    Route(
        method="POST",
        path="/api/v1/staff/konbini/charges/{charge_id}/refund",
        summary=(
            "Record the refund of a convenience-store charge that was paid but that the "
            "wallet would not credit (idempotent, audited)"
        ),
        access=staff_may(Permission.MONEY_REFUND),
        handler=konbini_refund,
        request=KonbiniRefundRequest,
        response=KonbiniRefundAnswer,
    ),
)


def konbini_routes(settings: Settings) -> list[web.RouteDef]:
    """The simulated store network's pages (development only); the API is in
    `KONBINI_ROUTES`.
    """
    routes: list[web.RouteDef] = []
    if settings.node.environment is Environment.DEVELOPMENT:
        routes += [
            web.get("/dev/konbini", simulator_form),
            web.post("/dev/konbini", simulator_pay),
            web.get("/dev/konbini/due/{number:[0-9]{11}}", konbini_due),
        ]
    return routes


def local_deadline(at_ms: int, timezone: str = "Asia/Tokyo") -> str:
    moment = datetime.datetime.fromtimestamp(at_ms / 1000, ZoneInfo(timezone))
    return moment.strftime("%Y-%m-%d %H:%M")


async def pending_konbini(request: web.Request, member_no: str) -> list[tuple[ChargeRecord, str]]:
    """The member's convenience-store charges for HOME, with their deadlines: those awaiting
    payment, those paid but not credited yet, and those refunded in the last
    `REFUNDED_SHOWN_DAYS`; none when the node runs without payments.
    """
    charging = request.app.get(charging_key)
    if charging is None:
        return []
    charges = await charging.member_charges(member_no)
    shown_since_ms = charging.now_ms() - REFUNDED_SHOWN_DAYS * 86_400_000
    return [
        (record, local_deadline(record.pay_by_ms))
        for record in charges
        if record.status in (ChargeStatus.PENDING, ChargeStatus.PAID)
        or (record.status is ChargeStatus.REFUNDED and record.updated_at_ms >= shown_since_ms)
    ]
