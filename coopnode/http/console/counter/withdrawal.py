"""Withdrawal at graduation (脱退) at the counter: the page shows what each purse becomes
under the co-op's rule and the share capital; the clerk confirms the refund shown, which
the node books only if it is still the refund (`domain.withdrawal`)."""

from __future__ import annotations

import msgspec
from aiohttp import web

from coopnode.domain.withdrawal import WithdrawalRule
from coopnode.http.api.counter import WithdrawBody, member_file, withdraw, withdrawal_plan
from coopnode.http.console.counter.common import (
    counter_render,
    form_field,
    form_key,
    member_no_in_path,
    member_path,
    refused_text,
)
from coopnode.http.console.pages import FORM, see_other
from coopnode.http.errors import ApiError
from coopnode.http.portal.wallet import settings_key


async def withdrawal_page(
    request: web.Request, *, error: str = "", status: int = 200
) -> web.Response:
    member_no = member_no_in_path(request)
    shown = await withdrawal_plan(request, member_no)
    context = {
        "member_no": member_no,
        "shown": shown,
        "rule": await _coop_rule(request, member_no),
        "key": form_key("withdraw"),
        "error": error,
    }
    return counter_render(request, "counter/withdrawal.html", context, status=status)


async def _coop_rule(request: web.Request, member_no: str) -> WithdrawalRule:
    file = await member_file(request, member_no)
    coop = file.wallet.coop if file.wallet is not None else file.account.coop
    return request.app[settings_key].coops[coop].withdrawal


async def withdraw_action(request: web.Request) -> web.Response:
    member_no = member_no_in_path(request)
    form = request[FORM]
    try:
        body = msgspec.convert(
            {"key": form_field(form, "key"), "refund_yen": form_field(form, "refund_yen")},
            WithdrawBody,
            strict=False,
        )
        await withdraw(request, member_no, body)
    except msgspec.ValidationError:
        refusal = ApiError("invalid_input", "the withdrawal form is not valid")
        return await withdrawal_page(request, error=refused_text(request, refusal), status=400)
    except ApiError as refusal:
        error = refused_text(request, refusal)
        return await withdrawal_page(request, error=error, status=refusal.status)
    return see_other(f"{member_path(member_no)}?done=withdrawn")
