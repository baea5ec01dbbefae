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
from coopnode.http.console.counter.common import COUNTER, DESK
from coopnode.http.console.room import ConsolePart, MenuEntry
from coopnode.http.edge import Route, staff_may

_M = f"{COUNTER}/members/{{member_no}}"
_READ = staff_may(Permission.MEMBERS_READ)
_CHANGE = staff_may(Permission.MEMBERS_CHANGE)
_DESK = staff_may(Permission.DESK_ANSWER)

PART = ConsolePart(
    name="counter",
    routes=(
        Route(method="GET", path=COUNTER, handler=find.find_page, access=_READ,
              summary="Find a member, or lay the card on the counter's reader"),
        Route(method="GET", path=_M, handler=member.member_page, access=_READ,
              summary="A member's purses, history, cards, status, overdrafts and desk"),
        Route(method="POST", path=f"{_M}/resume", handler=member.resume_action, access=_CHANGE,
              summary="Resume a suspended account"),
        Route(method="POST", path=f"{_M}/payments/{{payment_key}}/refund",
              handler=member.refund_action, access=staff_may(Permission.MONEY_REFUND),
              summary="Refund a tap within what it paid"),
        Route(method="POST", path=f"{_M}/charges/{{charge_key}}/refund",
              handler=member.refund_charge_action, access=staff_may(Permission.MONEY_REFUND),
              summary="Hand back a charge paid in cash at the counter"),
        Route(method="POST", path=f"{_M}/payments/{{payment_key}}/settle",
              handler=member.settle_action, access=staff_may(Permission.OVERDRAFT_SETTLE),
              summary="Settle an offline tap's overdraft"),
        Route(method="GET", path=f"{_M}/card", handler=changes.card_page, access=_CHANGE,
              summary="A lost card and the new one"),
        Route(method="POST", path=f"{_M}/card", handler=changes.card_action, access=_CHANGE,
              summary="Block the lost card and bind the new one"),
        Route(method="GET", path=f"{_M}/mail", handler=changes.mail_page, access=_CHANGE,
              summary="The address change after first use"),
        Route(method="POST", path=f"{_M}/mail", handler=changes.mail_action, access=_CHANGE,
              summary="Change the address after the identity check"),
        Route(method="GET", path=f"{_M}/withdrawal", handler=withdrawal.withdrawal_page,
              access=staff_may(Permission.WITHDRAWAL), summary="What a withdrawal pays back"),
        Route(method="POST", path=f"{_M}/withdrawal", handler=withdrawal.withdraw_action,
              access=staff_may(Permission.WITHDRAWAL), summary="Withdraw (脱退)"),
        Route(method="GET", path=DESK, handler=desk.desk_page, access=_DESK,
              summary="Inquiries to answer, documents to send, events"),
        Route(method="POST", path=f"{DESK}/inquiries/{{inquiry_no}}/answer",
              handler=desk.answer_action, access=_DESK, summary="Answer an inquiry"),
        Route(method="POST", path=f"{DESK}/documents/{{request_no}}/sent",
              handler=desk.sent_action, access=_DESK, summary="A postal document was sent"),
        Route(method="POST", path=f"{DESK}/events", handler=desk.event_action, access=_DESK,
              summary="Create an event"),
        Route(method="GET", path=f"{DESK}/event", handler=desk.find_event, access=_DESK,
              summary="Go to an event by its number"),
        Route(method="GET", path=f"{DESK}/events/{{event_id}}", handler=desk.event_page,
              access=_DESK, summary="An event's applications and attendance"),
        Route(method="POST", path=f"{DESK}/events/{{event_id}}/attendance",
              handler=desk.attendance_action, access=_DESK, summary="Record attendance"),
    ),
    menu=(
        MenuEntry(path=COUNTER, label=N_("console.menu.counter"),
                  permission=Permission.MEMBERS_READ),
        MenuEntry(path=DESK, label=N_("console.menu.desk"), permission=Permission.DESK_ANSWER),
    ),
)  # fmt: skip
