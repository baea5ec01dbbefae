"""The counter's label maps: what a record names (a way to find, an identification, a
card's or a wallet's status, a purse's fate at withdrawal, a history line's kind) to the
message id of its words. Never ids built by joining strings."""

from __future__ import annotations

from coopnode.actors.registry.messages import CardStatus
from coopnode.catalogues import N_
from coopnode.domain.counter import FindBy, IdDocument
from coopnode.domain.messages import WalletStatus
from coopnode.domain.withdrawal import OnWithdrawal
from coopnode.http.portal.labels import (
    ATTENDANCE_LABELS,
    HISTORY_KIND_LABELS,
    INQUIRY_CATEGORY_LABELS,
    INQUIRY_STATUS_LABELS,
)

FIND_BY_LABELS: dict[FindBy, str] = {
    FindBy.MEMBER_NO: N_("counter.find.by.member_no"),
    FindBy.KANA: N_("counter.find.by.kana"),
    FindBy.MAIL: N_("counter.find.by.mail"),
    FindBy.CARD: N_("counter.find.by.card"),
}

ID_DOCUMENT_LABELS: dict[IdDocument, str] = {
    IdDocument.STUDENT_CARD: N_("counter.id.student_card"),
    IdDocument.DRIVERS_LICENCE: N_("counter.id.drivers_licence"),
    IdDocument.MY_NUMBER_CARD: N_("counter.id.my_number_card"),
    IdDocument.PASSPORT: N_("counter.id.passport"),
    IdDocument.RESIDENCE_CARD: N_("counter.id.residence_card"),
}

CARD_STATUS_LABELS: dict[str, str] = {
    CardStatus.ACTIVE: N_("counter.card.active"),
    CardStatus.LOST: N_("counter.card.lost"),
    CardStatus.REPLACED: N_("counter.card.replaced"),
    "unknown": N_("counter.card.unknown"),
}

WALLET_STATUS_LABELS: dict[WalletStatus, str] = {
    WalletStatus.ACTIVE: N_("counter.status.active"),
    WalletStatus.SUSPENDED: N_("counter.status.suspended"),
    WalletStatus.CLOSED: N_("counter.status.closed"),
}

ON_WITHDRAWAL_LABELS: dict[OnWithdrawal, str] = {
    OnWithdrawal.REFUND: N_("counter.withdrawal.refund"),
    OnWithdrawal.PRO_RATA: N_("counter.withdrawal.pro_rata"),
    OnWithdrawal.FORFEIT: N_("counter.withdrawal.forfeit"),
}

# A journal line's kind: the portal's map, which names every kind the wallet writes; a
# kind not listed reads as other.
OTHER_KIND = N_("counter.kind.other")

# What a done action says on the member's page (`?done=`).
DONE_TEXTS: dict[str, str] = {
    "resumed": N_("counter.done.resumed"),
    "card": N_("counter.done.card"),
    "mail": N_("counter.done.mail"),
    "refund": N_("counter.done.refund"),
    "settle": N_("counter.done.settle"),
    "withdrawn": N_("counter.done.withdrawn"),
}

# The refusals the counter words itself; any other reads as the console words it.
COUNTER_REFUSALS: dict[str, str] = {
    "account_closed": N_("counter.error.account_closed"),
    "withdrawal_changed": N_("counter.error.withdrawal_changed"),
    "overdraft_owed": N_("counter.error.overdraft_owed"),
    "refund_exceeds_payment": N_("counter.error.refund_exceeds_payment"),
    "nothing_owed": N_("counter.error.nothing_owed"),
    "duplicate": N_("counter.error.duplicate"),
    "unknown_card": N_("counter.error.unknown_card"),
    "unknown_payment": N_("counter.error.unknown_payment"),
    "no_match": N_("counter.error.birth_date"),
    "already_voided": N_("counter.error.already_voided"),
}

# The maps the counter's templates read, by the name they read them under.
COUNTER_TEMPLATE_LABELS: dict[str, object] = {
    "find_by_labels": FIND_BY_LABELS,
    "id_document_labels": ID_DOCUMENT_LABELS,
    "card_status_labels": CARD_STATUS_LABELS,
    "wallet_status_labels": WALLET_STATUS_LABELS,
    "on_withdrawal_labels": ON_WITHDRAWAL_LABELS,
    "counter_kind_labels": HISTORY_KIND_LABELS,
    "counter_other_kind": OTHER_KIND,
    "inquiry_status_labels": INQUIRY_STATUS_LABELS,
    "inquiry_category_labels": INQUIRY_CATEGORY_LABELS,
    "attendance_labels": ATTENDANCE_LABELS,
}
