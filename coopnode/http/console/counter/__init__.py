"""The counter (窓口), issue 13 §2: a clerk finds a member (by number, kana, mail address,
or the card laid on the counter's reader), reads their file and serves them.

    find         the first page: the search, and the reader's events
    member       the member's page; resume, refund a tap, settle an overdraft
    changes      a lost card and the new one; the address change with the identity check
    withdrawal   withdrawal at graduation (脱退)
    desk         inquiries answered, documents sent, events and attendance
    common       rendering, refusals, the forms' idempotency keys, the paths
    labels       what a record names to the message id of its words

The pages call the counter's API functions (`http/api/counter.py`), so a page and its
JSON route do the same thing, audited under the clerk. Templates: `templates/counter/`.
"""

from __future__ import annotations

from coopnode.catalogues import N_
from coopnode.domain.staff import Permission
from coopnode.http.console.counter import changes, desk, find, member, withdrawal
from coopnode.http.console.counter.common import COUNTER, DESK, PageHandler, guarded
from coopnode.http.console.room import ConsolePart, MenuEntry
from coopnode.http.edge import Access, Route, staff_may

_M = f"{COUNTER}/members/{{member_no}}"
_READ = staff_may(Permission.MEMBERS_READ)
_CHANGE = staff_may(Permission.MEMBERS_CHANGE)
_REFUND = staff_may(Permission.MONEY_REFUND)
_SETTLE = staff_may(Permission.OVERDRAFT_SETTLE)
_WITHDRAW = staff_may(Permission.WITHDRAWAL)
_DESK = staff_may(Permission.DESK_ANSWER)


def _page(method: str, path: str, handler: PageHandler, access: Access, summary: str) -> Route:
    return Route(method=method, path=path, handler=guarded(handler), access=access, summary=summary)


PART = ConsolePart(
    name="counter",
    routes=(
        _page("GET", COUNTER, find.find_page, _READ,
              "Find a member, or lay the card on the counter's reader"),
        _page("GET", _M, member.member_page, _READ,
              "A member's purses, history, cards, status, overdrafts and desk"),
        _page("POST", f"{_M}/resume", member.resume_action, _CHANGE,
              "Resume a suspended account"),
        _page("POST", f"{_M}/payments/{{payment_key}}/refund", member.refund_action, _REFUND,
              "Refund a tap within what it paid"),
        _page("POST", f"{_M}/charges/{{charge_key}}/refund", member.refund_charge_action,
              _REFUND, "Hand back a charge paid in cash at the counter"),
        _page("POST", f"{_M}/payments/{{payment_key}}/settle", member.settle_action, _SETTLE,
              "Settle an offline tap's overdraft"),
        _page("GET", f"{_M}/card", changes.card_page, _CHANGE, "A lost card and the new one"),
        _page("POST", f"{_M}/card", changes.card_action, _CHANGE,
              "Block the lost card and bind the new one"),
        _page("GET", f"{_M}/mail", changes.mail_page, _CHANGE,
              "The address change after first use"),
        _page("POST", f"{_M}/mail", changes.mail_action, _CHANGE,
              "Change the address after the identity check"),
        _page("GET", f"{_M}/withdrawal", withdrawal.withdrawal_page, _WITHDRAW,
              "What a withdrawal pays back"),
        _page("POST", f"{_M}/withdrawal", withdrawal.withdraw_action, _WITHDRAW,
              "Withdraw (脱退)"),
        _page("GET", DESK, desk.desk_page, _DESK, "Inquiries to answer, documents to send, events"),
        _page("POST", f"{DESK}/inquiries/{{inquiry_no}}/answer", desk.answer_action, _DESK,
              "Answer an inquiry"),
        _page("POST", f"{DESK}/documents/{{request_no}}/sent", desk.sent_action, _DESK,
              "A postal document was sent"),
        _page("POST", f"{DESK}/events", desk.event_action, _DESK, "Create an event"),
        _page("GET", f"{DESK}/event", desk.find_event, _DESK, "Go to an event by its number"),
        _page("GET", f"{DESK}/events/{{event_id}}", desk.event_page, _DESK,
              "An event's applications and attendance"),
        _page("POST", f"{DESK}/events/{{event_id}}/attendance", desk.attendance_action, _DESK,
              "Record attendance"),
    ),
    menu=(
        MenuEntry(path=COUNTER, label=N_("console.menu.counter"),
                  permission=Permission.MEMBERS_READ),
        MenuEntry(path=DESK, label=N_("console.menu.desk"), permission=Permission.DESK_ANSWER),
    ),
)  # fmt: skip
