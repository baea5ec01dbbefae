"""The console's label maps: a role or a permission to the message id of its name."""

from __future__ import annotations

from coopnode.catalogues import N_
from coopnode.domain.staff import Permission, Role

ROLE_LABELS: dict[Role, str] = {
    Role.COUNTER_CLERK: N_("console.role.counter_clerk"),
    Role.STORE_MANAGER: N_("console.role.store_manager"),
    Role.ACCOUNTANT: N_("console.role.accountant"),
    Role.ADMINISTRATOR: N_("console.role.administrator"),
}

PERMISSION_LABELS: dict[Permission, str] = {
    Permission.MEMBERS_READ: N_("console.permission.members_read"),
    Permission.MEMBERS_CHANGE: N_("console.permission.members_change"),
    Permission.MONEY_REFUND: N_("console.permission.money_refund"),
    Permission.OVERDRAFT_SETTLE: N_("console.permission.overdraft_settle"),
    Permission.WITHDRAWAL: N_("console.permission.withdrawal"),
    Permission.DESK_ANSWER: N_("console.permission.desk_answer"),
    Permission.MONEY_CHARGE: N_("console.permission.money_charge"),
    Permission.PAYMENTS_TAKE: N_("console.permission.payments_take"),
    Permission.TILLS_READ: N_("console.permission.tills_read"),
    Permission.TILLS_MANAGE: N_("console.permission.tills_manage"),
    Permission.BOOKS_READ: N_("console.permission.books_read"),
    Permission.BOOKS_CLOSE: N_("console.permission.books_close"),
    Permission.RECONCILE: N_("console.permission.reconcile"),
    Permission.UNUSED_BALANCE: N_("console.permission.unused_balance"),
    Permission.JOURNAL_VERIFY: N_("console.permission.journal_verify"),
    Permission.LIVE_READ: N_("console.permission.live_read"),
    Permission.AUDIT_READ: N_("console.permission.audit_read"),
    Permission.STAFF_MANAGE: N_("console.permission.staff_manage"),
    Permission.TOKENS_MANAGE: N_("console.permission.tokens_manage"),
    Permission.NODE_OPERATE: N_("console.permission.node_operate"),
}

# The refusals the console words itself; any other reads as the portal words it.
CONSOLE_REFUSALS: dict[str, str] = {
    "bootstrap_done": N_("console.error.bootstrap_done"),
    "conflict": N_("console.error.conflict"),
    "not_found": N_("console.error.not_found"),
    "invalid_input": N_("console.error.invalid_input"),
    "invalid_staff_id": N_("console.error.invalid_staff_id"),
}
