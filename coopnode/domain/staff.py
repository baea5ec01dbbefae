"""What co-op staff may do: their roles and a permission per action (issue 13 §1).

A permission names one kind of action in the staff console and the staff API; a route
declares the one it needs (`http.edge.staff_may`) and the edge checks it before the
handler runs. A role is a fixed set of permissions, the co-op's jobs as they are:

- counter clerk (窓口): finds members and serves them at the counter;
- store manager (店長): runs a store's tills and its day, refunds within the rules;
- accountant (経理): closes days, reconciles, reports the unused balance;
- administrator: everything, including staff accounts and machines' API tokens.

One place for the table: the console's menus, the permission checks and the tests read
`ROLE_PERMISSIONS` and nothing else.
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    # The counter (窓口), §2.
    MEMBERS_READ = "members.read"  # find a member; see purses, history, cards, status
    MEMBERS_CHANGE = "members.change"  # resume, lost card and reissue, mail change
    MONEY_REFUND = "money.refund"  # refund a tap or a charge within the co-op's rules
    OVERDRAFT_SETTLE = "overdraft.settle"  # settle what offline taps left owing
    WITHDRAWAL = "members.withdraw"  # withdrawal at graduation (脱退)
    DESK_ANSWER = "desk.answer"  # inquiries, documents sent, events and attendance
    MONEY_CHARGE = "money.charge"  # credit a charge at the counter, move between purses
    PAYMENTS_TAKE = "payments.take"  # take and void a payment at a till (a POS system)
    # Tills, §3.
    TILLS_READ = "tills.read"  # which tills are connected, their last tap
    TILLS_MANAGE = "tills.manage"  # register and retire tills, a new till's key
    # The books, §4–§6.
    BOOKS_READ = "books.read"  # daily settlement figures, CSV and charts
    BOOKS_CLOSE = "books.close"  # close a day (締め), record a correction
    RECONCILE = "books.reconcile"  # acquirer and convenience-store reconciliation
    UNUSED_BALANCE = "books.unused_balance"  # the legal unused-balance report
    JOURNAL_VERIFY = "journal.verify"  # the tamper-evident journal's check
    # Watching, §7.
    LIVE_READ = "live.read"  # the live lunch view
    # Running the node.
    AUDIT_READ = "audit.read"  # the audit log and the books' recount
    STAFF_MANAGE = "staff.manage"  # staff accounts and their roles
    TOKENS_MANAGE = "tokens.manage"  # machines' scoped API tokens
    NODE_OPERATE = "node.operate"  # backups, shard moves, other operations


class Role(StrEnum):
    COUNTER_CLERK = "counter_clerk"  # 窓口
    STORE_MANAGER = "store_manager"  # 店長
    ACCOUNTANT = "accountant"  # 経理
    ADMINISTRATOR = "administrator"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.COUNTER_CLERK: frozenset(
        {
            Permission.MEMBERS_READ,
            Permission.MEMBERS_CHANGE,
            Permission.OVERDRAFT_SETTLE,
            Permission.DESK_ANSWER,
            Permission.MONEY_CHARGE,
            Permission.TILLS_READ,
            Permission.LIVE_READ,
        }
    ),
    Role.STORE_MANAGER: frozenset(
        {
            Permission.MEMBERS_READ,
            Permission.MONEY_REFUND,
            Permission.MONEY_CHARGE,
            Permission.PAYMENTS_TAKE,
            Permission.OVERDRAFT_SETTLE,
            Permission.TILLS_READ,
            Permission.TILLS_MANAGE,
            Permission.BOOKS_READ,
            Permission.LIVE_READ,
        }
    ),
    Role.ACCOUNTANT: frozenset(
        {
            Permission.MEMBERS_READ,
            Permission.MONEY_REFUND,
            Permission.WITHDRAWAL,
            Permission.BOOKS_READ,
            Permission.BOOKS_CLOSE,
            Permission.RECONCILE,
            Permission.UNUSED_BALANCE,
            Permission.JOURNAL_VERIFY,
            Permission.AUDIT_READ,
            Permission.LIVE_READ,
        }
    ),
    Role.ADMINISTRATOR: frozenset(Permission),
}


def role_may(role: Role, permission: Permission) -> bool:
    """Whether a staff member of `role` may take an action that needs `permission`."""
    return permission in ROLE_PERMISSIONS[role]
