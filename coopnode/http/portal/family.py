"""Family access (ファミリー申請, FLOWS §3 step 5): a member lets a guardian read their
cafeteria usage history and purchase history, and takes the permission back.

The guardian is named by a mail address, and the grant mails it an invitation. A member
holding that address signs in to the portal as usual and finds the grant on this page; a
guardian who is not a member confirms the address and sets a password through the
invitation (`portal_guardian`) and signs in to a guardian session, which this module's
view accepts and member pages do not. The grant lives in the identity store (member →
guardians and guardian → members); the guardian's page shows, for one member who granted
access, only the month calendar and the purchase history read through the wallet client
— no balance, charge or profile.
"""

from __future__ import annotations

from aiohttp import web

from coopnode.actors.identity.messages import (
    Family,
    FamilyGrant,
    FamilyList,
    FamilyRevoke,
    Refused,
)
from coopnode.catalogues import N_
from coopnode.domain.identity import SessionKind
from coopnode.http.errors import status_of
from coopnode.http.identity_front import ask
from coopnode.http.portal.core import (
    PageError,
    page,
    read_form,
    refusal_text,
    render,
    see_other,
    signed_in,
    text,
)
from coopnode.http.portal.flows import try_ask
from coopnode.http.portal.guardian import guardian_family
from coopnode.http.portal.home import member_history


async def _family(request: web.Request, member_no: str) -> Family:
    reply = await ask(request, FamilyList(member_no=member_no))
    if not isinstance(reply, Family):
        raise TypeError("the family list answered with something else")
    return reply


async def _family_page(
    request: web.Request,
    member_no: str,
    *,
    status: int = 200,
    done: str = "",
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> web.Response:
    family = await _family(request, member_no)
    context = {"family": family, "done": done, "errors": errors or {}, "form": form or {}}
    return render(
        request,
        "guardian/family.html",
        context,
        status=status,
        session=SessionKind.PORTAL,
        here="/portal/family",
    )


@page
async def family_form(request: web.Request) -> web.Response:
    who = await signed_in(request, (SessionKind.PORTAL,))
    done = {"granted": N_("family.done"), "revoked": N_("family.revoked")}.get(
        request.query.get("done", ""), ""
    )
    return await _family_page(request, who.subject, done=done)


@page
async def family_grant(request: web.Request) -> web.Response:
    form = await read_form(request)
    who = await signed_in(request, (SessionKind.PORTAL,), form)
    mail = form.get("guardian_mail", "")
    if not mail:
        errors = {"guardian_mail": text(request, N_("error.required"))}
        return await _family_page(request, who.subject, status=400, errors=errors, form=form)
    reply = await try_ask(request, FamilyGrant(member_no=who.subject, guardian_mail=mail))
    if isinstance(reply, Refused):
        errors = {"guardian_mail": refusal_text(request, reply)}
        shown = {"guardian_mail": mail}
        return await _family_page(
            request, who.subject, status=status_of(reply.reason), errors=errors, form=shown
        )
    return see_other("/portal/family?done=granted")


@page
async def family_revoke(request: web.Request) -> web.Response:
    form = await read_form(request)
    who = await signed_in(request, (SessionKind.PORTAL,), form)
    guardian_mail = form.get("guardian_mail", "")
    if not guardian_mail:
        raise PageError(400, N_("error.invalid_input"))
    await ask(request, FamilyRevoke(member_no=who.subject, guardian_mail=guardian_mail))
    return see_other("/portal/family?done=revoked")


@page
async def family_view(request: web.Request) -> web.Response:
    """A guardian's view of one member's history; only with that member's grant. The
    guardian is a member signed in to the portal, or a guardian in a guardian session.
    """
    who = await signed_in(request, (SessionKind.PORTAL, SessionKind.GUARDIAN))
    member_no = request.match_info["member_no"]
    if who.kind is SessionKind.GUARDIAN:
        family = await guardian_family(request, who.subject)
        frame = {"base": "guardian/signed.html", "back": "/portal/guardian/home"}
    else:
        family = await _family(request, who.subject)
        frame = {"base": "member/portal_signed.html", "back": "/portal/family"}
    ward = next((person for person in family.wards if person.member_no == member_no), None)
    if ward is None:
        raise PageError(403, N_("error.family_forbidden"))
    context = {"ward": ward, **frame, **await member_history(request, ward.member_no)}
    return render(request, "guardian/family_view.html", context, session=who.kind)


def family_routes() -> list[web.RouteDef]:
    return [
        web.get("/portal/family", family_form),
        web.post("/portal/family", family_grant),
        web.post("/portal/family/revoke", family_revoke),
        web.get(r"/portal/family/{member_no:[0-9]{12}}", family_view),
    ]
