"""Charging for oneself (自分チャージ, FLOWS §6): the amount, the purse, then the card or
the convenience store.

The amount is built with submit buttons (+1,000 … +100,000, and a reset) that post the
form back with the running total in a hidden field, so the page works without
JavaScript. The co-op's minimum and maximum and the purse's balance cap are checked
before the method's page is shown and again before any payment starts, with the error
next to the field in the member's language.

The card's number and security code go from the form to the acquirer adapter and
nowhere else: they are not kept, logged or shown again (a form with an error comes back
without them).
"""

from __future__ import annotations

import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from coopnode.actors.notify.mails import konbini_charge_mail
from coopnode.actors.notify.messages import MailMessage
from coopnode.actors.payments.actor import PaymentsUnavailable
from coopnode.actors.payments.messages import ChargeRecord, ChargeStatus
from coopnode.catalogues import N_
from coopnode.domain import charging as checks
from coopnode.domain.bounds import parse_int
from coopnode.domain.messages import DepositYen, WalletStatus
from coopnode.domain.money import CHARGEABLE_PURSES, Purse
from coopnode.domain.rules import CoopRules
from coopnode.http.api.konbini import charging_key, local_deadline
from coopnode.http.identity_front import notifier_key
from coopnode.http.portal.core import IDEMPOTENCY_FIELD, PageError, page, read_form, text
from coopnode.http.portal.labels import charge_text_id
from coopnode.http.portal.wallet import (
    SCOPE_PAY,
    WalletAccess,
    coop_rules_of,
    emoney_render,
    settings_key,
    wallet_member,
    wallet_view,
)
from coopnode.logs import get_logger
from coopnode.payments.acquirer import Card
from coopnode.payments.charging import ChargeRefused, Charging
from coopnode.payments.konbini import STORES

log = get_logger(__name__)

STEPS_YEN = (1_000, 3_000, 5_000, 10_000, 20_000, 30_000, 50_000, 100_000)
# The amount the charge page opens with, as the manual's page does (5,000 円), kept within
# the co-op's minimum and maximum; リセット goes to 0 for a smaller amount.
CHARGE_START_YEN = 5_000
_STEP_OF = {str(step): step for step in STEPS_YEN}  # A button's value, as posted.
# The running total never grows past this, whatever is clicked: the wallet's own bound
# on one operation.
AMOUNT_BUILD_MAX_YEN = 10_000_000
_CHARGEABLE = [purse for purse in (Purse.BASE, Purse.TEXTBOOK, Purse.CAFETERIA)]
# The error of a charge refused for the account's status, not for one of its fields.
SUSPENDED_FIELD = "account"
# Why a card charge did not go through (its record's reason), in the member's words.
_FAILURES = {
    "card_declined": N_("error.card_declined"),
    "insufficient_funds": N_("error.card_insufficient_funds"),
    "acquirer_unavailable": N_("error.acquirer_unavailable"),
    "over_limit": N_("error.over_limit"),
    "below_minimum": N_("error.below_minimum"),
    "above_maximum": N_("error.above_maximum"),
    "suspended": N_("error.suspended"),
}


def _charging(request: web.Request) -> Charging:
    charging = request.app.get(charging_key)
    if charging is None:
        raise PageError(503, N_("error.unavailable"))
    return charging


def _amount(form: dict[str, str]) -> int:
    # The page builds the amount with its buttons; another one is a hand-made request.
    return parse_int(form.get("amount_yen", "") or "0", DepositYen, "amount_yen")


def _purse(form: dict[str, str]) -> Purse | None:
    value = form.get("purse", "")
    return Purse(value) if value in {purse.value for purse in CHARGEABLE_PURSES} else None


def _yen(request: web.Request, amount: int) -> str:
    return text(request, N_("common.yen"), amount=f"{amount:,}")


def _limits(request: web.Request, rules: CoopRules) -> str:
    return text(
        request,
        N_("charge.limits"),
        minimum=_yen(request, rules.charge_min_yen),
        maximum=_yen(request, rules.charge_max_yen),
    )


async def _amount_errors(
    request: web.Request, access: WalletAccess, amount: int, purse: Purse | None
) -> dict[str, str]:
    """The account's status, the co-op's bounds and the purse's cap, checked before any
    payment starts."""
    view = await wallet_view(request, access.member_no)
    refused = checks.start_error(view.status)
    if refused:
        return {SUSPENDED_FIELD: text(request, charge_text_id(refused))}
    if purse is None:
        return {"purse": text(request, N_("error.purse_not_allowed"))}
    rules = coop_rules_of(request, view.coop)
    field, key = checks.amount_error(amount, purse, view.balances.get(purse), rules)
    if not field:
        return {}
    return {field: _rule_text(request, key, rules, purse)}


def _rule_text(request: web.Request, key: str, rules: CoopRules, purse: Purse) -> str:
    """An error about the co-op's bounds, with the bounds filled in."""
    return text(
        request,
        charge_text_id(key),
        limit=_yen(request, rules.purse_balance_max_yen[purse]),
        minimum=_yen(request, rules.charge_min_yen),
        maximum=_yen(request, rules.charge_max_yen),
    )


async def _charge_page(
    request: web.Request,
    access: WalletAccess,
    amount: int,
    chosen: str,
    errors: dict[str, str],
) -> web.Response:
    view = await wallet_view(request, access.member_no)
    context = {
        "view": view,
        "amount": amount,
        "chosen": chosen,
        "steps": STEPS_YEN,
        "chargeable": _CHARGEABLE,
        "limits": _limits(request, coop_rules_of(request, view.coop)),
        "errors": errors,
    }
    # A suspended account is shown why it cannot be charged, and refused (403) any step.
    status = (403 if SUSPENDED_FIELD in errors else 400) if errors else 200
    return emoney_render(request, "emoney/charge.html", access, "charge", context, status=status)


def start_amount(rules: CoopRules) -> int:
    return min(max(CHARGE_START_YEN, rules.charge_min_yen), rules.charge_max_yen)


@page
async def charge_form(request: web.Request) -> web.Response:
    access = await wallet_member(request, SCOPE_PAY)
    view = await wallet_view(request, access.member_no)
    start = start_amount(coop_rules_of(request, view.coop))
    return await _charge_page(request, access, start, Purse.BASE.value, {})


@page
async def charge_step(request: web.Request) -> web.Response:
    """A +amount or reset button, or the choice of method once the amount is set."""
    form = await read_form(request)
    access = await wallet_member(request, SCOPE_PAY, form)
    amount = _amount(form)
    chosen = form.get("purse", Purse.BASE.value)
    added = form.get("add", "")
    if added == "reset":
        return await _charge_page(request, access, 0, chosen, {})
    if added:
        step = _STEP_OF.get(added, 0)
        return await _charge_page(
            request, access, min(amount + step, AMOUNT_BUILD_MAX_YEN), chosen, {}
        )
    method = form.get("method", "")
    purse = _purse(form)
    errors = await _amount_errors(request, access, amount, purse)
    if errors or method not in ("card", "konbini") or purse is None:
        return await _charge_page(request, access, amount, chosen, errors)
    return _method_page(request, access, method, amount, purse, {}, {})


def _method_page(
    request: web.Request,
    access: WalletAccess,
    method: str,
    amount: int,
    purse: Purse,
    form: dict[str, str],
    errors: dict[str, str],
    failure: str = "",
    *,
    choose_store: bool = False,
) -> web.Response:
    context: dict[str, Any] = {
        "amount": amount,
        "purse": purse.value,
        "form": form,
        "errors": errors,
        "failure": failure,
        "choose_store": choose_store,
    }
    if method == "card":
        this_year = datetime.datetime.now(ZoneInfo("Asia/Tokyo")).year
        context["years"] = list(range(this_year, this_year + 11))
        template = "emoney/charge_card.html"
    else:
        context["stores"] = STORES
        template = "emoney/charge_konbini.html"
    status = 400 if errors or failure else 200
    return emoney_render(request, template, access, "charge", context, status=status)


async def _refused_page(
    request: web.Request, access: WalletAccess, amount: int, purse: Purse, refused: ChargeRefused
) -> web.Response:
    """A charge the service refused before any payment started: the account was suspended
    since the page was shown (the charge page says so), or the service is unavailable."""
    if refused.key != N_("error.charge_suspended"):
        raise PageError(503, N_("error.unavailable"))
    errors = {SUSPENDED_FIELD: text(request, charge_text_id(refused.key))}
    return await _charge_page(request, access, amount, purse.value, errors)


# Card -------------------------------------------------------------------------------------


def _today() -> tuple[int, int]:
    now = datetime.datetime.now(ZoneInfo("Asia/Tokyo"))
    return now.year, now.month


@page
async def charge_card(request: web.Request) -> web.Response:
    form = await read_form(request)
    access = await wallet_member(request, SCOPE_PAY, form)
    amount, purse = _amount(form), _purse(form)
    # What may be shown again if the page comes back: never the card number or the CVC.
    kept = {name: form.get(name, "") for name in ("exp_month", "exp_year", "birthday")}
    errors = await _amount_errors(request, access, amount, purse)
    if errors or purse is None:
        return await _charge_page(request, access, amount, form.get("purse", ""), errors)
    number, cvc = form.get("card_number", ""), form.get("cvc", "")
    month, year = form.get("exp_month", ""), form.get("exp_year", "")
    found = checks.card_errors(number, month, year, cvc, kept["birthday"], _today())
    if found:
        shown = {field: text(request, charge_text_id(key)) for field, key in found.items()}
        return _method_page(request, access, "card", amount, purse, kept, shown)
    card = Card(
        number=number,
        exp_month=int(month),
        exp_year=checks.expiry_year(year),
        cvc=cvc,
        birthday=kept["birthday"],
    )
    form_key = f"card.{form.get(IDEMPOTENCY_FIELD, '')[:40]}"
    try:
        record = await _charging(request).charge_card(
            access.member_no, form_key, purse, amount, card
        )
    except ChargeRefused as refused:
        return await _refused_page(request, access, amount, purse, refused)
    except PaymentsUnavailable:
        raise PageError(503, N_("error.unavailable")) from None
    if record.status is ChargeStatus.CREDITED:
        return emoney_render(
            request, "emoney/charge_done.html", access, "charge", {"record": record}
        )
    failure = text(request, _failure_key(record.reason))
    if record.reason in _WALLET_REASONS:
        # The purse filled up meanwhile (another charge): the payment was voided.
        view = await wallet_view(request, access.member_no)
        rules = coop_rules_of(request, view.coop)
        failure = _rule_text(request, _failure_key(record.reason), rules, purse)
    return _method_page(request, access, "card", amount, purse, kept, {}, failure)


# A card charge the wallet refused after the payment: the payment was voided.
_WALLET_REASONS = frozenset({"over_limit", "below_minimum", "above_maximum", "suspended"})


def _failure_key(reason: str) -> str:
    """The message id of why a card charge did not go through."""
    return _FAILURES.get(reason, N_("error.generic"))


# Convenience store ---------------------------------------------------------------------------


def _konbini_errors(
    request: web.Request, form: dict[str, str], *, with_store: bool
) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name in ("kana_family", "kana_given"):
        if not checks.katakana_valid(form.get(name, "")):
            errors[name] = text(request, N_("error.kana"))
    mail = form.get("mail", "")
    local, _, domain = mail.partition("@")
    if not local or "." not in domain or len(mail) > 254 or any(c.isspace() for c in mail):
        errors["mail"] = text(request, N_("error.invalid_input"))
    parts = (form.get("phone1", ""), form.get("phone2", ""), form.get("phone3", ""))
    if not checks.phone_valid(parts):
        errors["phone"] = text(request, N_("error.phone_parts"))
    if with_store and form.get("store", "") not in STORES:
        errors["store"] = text(request, N_("error.store"))
    return errors


_KONBINI_FIELDS = ("kana_family", "kana_given", "mail", "phone1", "phone2", "phone3", "store")


@page
async def charge_konbini(request: web.Request) -> web.Response:
    """Details (戻る / 確定する), then the store chain, then the payment numbers."""
    form = await read_form(request)
    access = await wallet_member(request, SCOPE_PAY, form)
    amount, purse = _amount(form), _purse(form)
    step = form.get("step", "")
    if step == "back" or purse is None:
        return await _charge_page(request, access, amount, form.get("purse", ""), {})
    kept = {name: form.get(name, "") for name in _KONBINI_FIELDS}
    if step == "back_details":
        return _method_page(request, access, "konbini", amount, purse, kept, {})
    errors = await _amount_errors(request, access, amount, purse)
    if errors:
        return await _charge_page(request, access, amount, purse.value, errors)
    errors = _konbini_errors(request, form, with_store=step == "issue")
    if errors and "store" not in errors:
        return _method_page(request, access, "konbini", amount, purse, kept, errors)
    if step != "issue" or errors:
        return _method_page(
            request, access, "konbini", amount, purse, kept, errors, choose_store=True
        )
    kana = f"{kept['kana_family']}\u3000{kept['kana_given']}"
    form_key = f"konbini.{form.get(IDEMPOTENCY_FIELD, '')[:40]}"
    try:
        record, fresh = await _charging(request).issue_konbini(
            access.member_no, form_key, purse, amount, kept["store"], kana, kept["mail"]
        )
    except ChargeRefused as refused:
        if refused.key != N_("error.pending_max"):
            return await _refused_page(request, access, amount, purse, refused)
        failure = text(request, charge_text_id(refused.key))
        return _method_page(request, access, "konbini", amount, purse, kept, {}, failure)
    except PaymentsUnavailable:
        raise PageError(503, N_("error.unavailable")) from None
    if fresh:
        _mail_numbers(request, record.charge_id, kana, record)
    return _issued_page(request, access, record, fresh)


def _mail_numbers(request: web.Request, charge_id: str, kana: str, record: ChargeRecord) -> None:
    settings = request.app[settings_key]
    url = f"{settings.identity.portal_base_url}/mypage/emoney/charge/konbini/{charge_id}"
    mail = konbini_charge_mail(
        customer_name_kana=kana,
        amount_yen=record.amount_yen,
        purse=record.purse,
        store_name=text(request, f"konbini.{record.store}"),
        payment_info_url=url,
        pay_by=local_deadline(record.pay_by_ms),
    )
    message = MailMessage(
        to=record.mail, subject=mail.subject, body=mail.body, kind="konbini_charge"
    )
    if not request.app[notifier_key].submit(message):
        log.warning("konbini mail not queued", charge_id=charge_id)


def _issued_page(
    request: web.Request,
    access: WalletAccess,
    record: ChargeRecord,
    fresh: bool,
    suspended: bool = False,
) -> web.Response:
    context = {
        "record": record,
        "fresh": fresh,
        "pay_by": local_deadline(record.pay_by_ms),
        "suspended": suspended,
    }
    return emoney_render(request, "emoney/charge_issued.html", access, "charge", context)


@page
async def konbini_numbers(request: web.Request) -> web.Response:
    """The payment numbers of one of the member's charges (the mail links here)."""
    access = await wallet_member(request, SCOPE_PAY)
    record = await _charging(request).get(request.match_info["charge_id"])
    if record is None or record.member_no != access.member_no or not record.payment_number:
        raise PageError(404, N_("error.generic"))
    view = await wallet_view(request, access.member_no)
    return _issued_page(request, access, record, False, view.status is WalletStatus.SUSPENDED)


def charge_routes() -> list[web.RouteDef]:
    return [
        web.get("/mypage/emoney/charge", charge_form),
        web.post("/mypage/emoney/charge", charge_step),
        web.post("/mypage/emoney/charge/card", charge_card),
        web.post("/mypage/emoney/charge/konbini", charge_konbini),
        web.get("/mypage/emoney/charge/konbini/{charge_id:[0-9a-f]{24}}", konbini_numbers),
    ]
