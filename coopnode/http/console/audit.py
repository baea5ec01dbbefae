"""The audit log (issue 13 §1): every staff action under the person (`staff:<id>`) or the
machine's token (`token:<name>`) that did it, newest first, a page at a time."""

from __future__ import annotations

from aiohttp import web

from coopnode.actors.identity.messages import AuditList, AuditPage
from coopnode.catalogues import N_
from coopnode.domain.staff import Permission
from coopnode.http.console.pages import render
from coopnode.http.console.room import ConsolePart, MenuEntry
from coopnode.http.edge import Route, read_query, staff_may
from coopnode.http.identity_front import ask

AUDIT = "/console/audit"
# Entries one page shows: a screen's worth on a counter PC (the actor bounds it too).
AUDIT_PAGE_LINES = 50


async def audit_page(request: web.Request) -> web.Response:
    query = read_query(request, AuditList)
    asked = AuditList(before_seq=query.before_seq, limit=AUDIT_PAGE_LINES)
    page = await ask(request, asked)
    if not isinstance(page, AuditPage):
        raise TypeError("the audit log answered with something else")
    context = {"entries": page.entries, "next_before_seq": page.next_before_seq}
    context["first_page"] = query.before_seq == 0
    return render(request, "audit/log.html", context)


PART = ConsolePart(
    name="audit",
    routes=(
        Route(method="GET", path=AUDIT, handler=audit_page,
              access=staff_may(Permission.AUDIT_READ),
              summary="The audit log, newest first, paged"),
    ),
    menu=(
        MenuEntry(path=AUDIT, label=N_("console.menu.audit"), permission=Permission.AUDIT_READ),
    ),
)  # fmt: skip
