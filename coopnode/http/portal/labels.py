"""The pages' labels: maps from what a record names (a status, a kind, a store, a reason)
to the message id of its label, each id written out so that extraction sees it; a page
never builds an id by joining strings. The templates reach them as globals of the same
names (`setup_templates`), and `tests/catalogues/test_catalogues.py` checks that each map
covers the enum or the list it labels.
"""

from __future__ import annotations

from coopnode.actors.payments.messages import ChargeStatus
from coopnode.catalogues import N_
from coopnode.catalogues.labels import PURSE_LABELS, WALLET_SCOPE_LABELS
from coopnode.domain.member_desk import (
    AnswerBy,
    ApplicationStatus,
    Attendance,
    InquiryCategory,
    InquiryStatus,
)

# A history line's kind (`HistoryEntry.kind`, the wallet's operation kinds).
HISTORY_KIND_LABELS: dict[str, str] = {
    "open": N_("kind.open"),
    "pay": N_("kind.pay"),
    "offline_pay": N_("kind.offline_pay"),
    "void": N_("kind.void"),
    "refund": N_("kind.refund"),
    "charge": N_("kind.charge"),
    "move": N_("kind.move"),
}

# The statuses a charge record can show on its page (a card charge's or a store's).
CHARGE_STATUS_LABELS: dict[ChargeStatus, str] = {
    ChargeStatus.AUTHORIZING: N_("charge.status.authorizing"),
    ChargeStatus.DECLINED: N_("charge.status.declined"),
    ChargeStatus.PENDING: N_("charge.status.pending"),
    ChargeStatus.PAID: N_("charge.status.paid"),
    ChargeStatus.EXPIRED: N_("charge.status.expired"),
    ChargeStatus.CANCELLED: N_("charge.status.cancelled"),
    ChargeStatus.CREDITED: N_("charge.status.credited"),
    ChargeStatus.REFUNDED: N_("charge.status.refunded"),
}

# What HOME says of a store's charge that is paid and not yet credited, or refunded.
HOME_CHARGE_LABELS: dict[ChargeStatus, str] = {
    ChargeStatus.PAID: N_("emoney.charge_paid"),
    ChargeStatus.REFUNDED: N_("emoney.charge_refunded"),
}

# The convenience stores (`coopnode.payments.konbini.STORES`): their names and the steps
# to pay at each.
KONBINI_LABELS: dict[str, str] = {
    "lawson": N_("konbini.lawson"),
    "familymart": N_("konbini.familymart"),
    "ministop": N_("konbini.ministop"),
    "seicomart": N_("konbini.seicomart"),
    "dailyyamazaki": N_("konbini.dailyyamazaki"),
    "seveneleven": N_("konbini.seveneleven"),
}
KONBINI_STEPS: dict[str, str] = {
    "lawson": N_("konbini.steps.lawson"),
    "familymart": N_("konbini.steps.familymart"),
    "ministop": N_("konbini.steps.ministop"),
    "seicomart": N_("konbini.steps.seicomart"),
    "dailyyamazaki": N_("konbini.steps.dailyyamazaki"),
    "seveneleven": N_("konbini.steps.seveneleven"),
}

# The e-money pages' menu, in its order: the page's path under /mypage/emoney and its name.
EMONEY_MENU: dict[str, str] = {
    "home": N_("emoney.menu.home"),
    "history": N_("emoney.menu.history"),
    "charge": N_("emoney.menu.charge"),
    "move": N_("emoney.menu.move"),
    "notices": N_("emoney.menu.notices"),
    "suspend": N_("emoney.menu.suspend"),
}

# The mail change's six steps (FLOWS §1), by number.
MAIL_CHANGE_STEPS: dict[int, str] = {
    1: N_("mail_change.step1"),
    2: N_("mail_change.step2"),
    3: N_("mail_change.step3"),
    4: N_("mail_change.step4"),
    5: N_("mail_change.step5"),
    6: N_("mail_change.step6"),
}

# Where the sign-in code went, by the way it was sent.
CODE_SENT: dict[str, str] = {
    "sms": N_("portal.code_sent_sms"),
    "voice": N_("portal.code_sent_voice"),
}

INQUIRY_CATEGORY_LABELS: dict[InquiryCategory, str] = {
    InquiryCategory.MEMBERSHIP: N_("desk.category.membership"),
    InquiryCategory.EMONEY: N_("desk.category.emoney"),
    InquiryCategory.KYOSAI: N_("desk.category.kyosai"),
    InquiryCategory.SHOP: N_("desk.category.shop"),
    InquiryCategory.OTHER: N_("desk.category.other"),
}
ANSWER_BY_LABELS: dict[AnswerBy, str] = {
    AnswerBy.MAIL: N_("desk.answer_by.mail"),
    AnswerBy.PHONE: N_("desk.answer_by.phone"),
}
INQUIRY_STATUS_LABELS: dict[InquiryStatus, str] = {
    InquiryStatus.RECEIVED: N_("desk.status.received"),
    InquiryStatus.ANSWERED: N_("desk.status.answered"),
}
# How a document is provided (`DocumentOffer.provided_by`, "post" or "download").
PROVIDED_BY_LABELS: dict[str, str] = {
    "post": N_("desk.provided_by.post"),
    "download": N_("desk.provided_by.download"),
}
APPLICATION_STATUS_LABELS: dict[ApplicationStatus, str] = {
    ApplicationStatus.APPLIED: N_("desk.application.applied"),
    ApplicationStatus.CANCELLED: N_("desk.application.cancelled"),
}
ATTENDANCE_LABELS: dict[Attendance, str] = {
    Attendance.UNKNOWN: N_("desk.attendance.unknown"),
    Attendance.ATTENDED: N_("desk.attendance.attended"),
    Attendance.ABSENT: N_("desk.attendance.absent"),
}

# A refusal's reason code (the identity actor's, the wallet's `Reason`, a charge's) and
# the sentence a page shows for it; a reason without one reads `error.generic`, so that
# a new refusal still reads as a sentence.
REFUSAL_TEXTS: dict[str, str] = {
    "csrf": N_("error.csrf"),
    "unauthorized": N_("error.unauthorized"),
    "session_expired": N_("error.session_expired"),
    "invalid_credentials": N_("error.invalid_credentials"),
    "locked": N_("error.locked"),
    "busy": N_("error.busy"),
    "no_match": N_("error.no_match"),
    "emoney_in_use": N_("error.emoney_in_use"),
    "mail_in_use": N_("error.mail_in_use"),
    "phone_mismatch": N_("error.phone_mismatch"),
    "flow_expired": N_("error.flow_expired"),
    "out_of_order": N_("error.out_of_order"),
    "invalid_input": N_("error.invalid_input"),
    "not_found": N_("error.not_found"),
    "passcode_wrong": N_("error.passcode_wrong"),
    "passcode_expired": N_("error.passcode_expired"),
    "passcode_used": N_("error.passcode_used"),
    "passcode_locked": N_("error.passcode_locked"),
    "passcode_cooldown": N_("error.passcode_cooldown"),
    "passcode_rate_limited": N_("error.passcode_rate_limited"),
    # An authenticator's code used before reads as a mailed one used before did.
    "totp_used": N_("error.passcode_used"),
    "password_mismatch": N_("error.password_mismatch"),
    "password_too_short": N_("error.password_too_short"),
    "password_too_long": N_("error.password_too_long"),
    "password_needs_lower": N_("error.password_needs_lower"),
    "password_needs_upper": N_("error.password_needs_upper"),
    "password_needs_digit": N_("error.password_needs_digit"),
    "password_needs_symbol": N_("error.password_needs_symbol"),
    "password_common": N_("error.password_common"),
    "password_contains_account": N_("error.password_contains_account"),
    "family_self": N_("error.family_self"),
    "family_too_many": N_("error.family_too_many"),
    "family_invitations_exhausted": N_("error.family_invitations_exhausted"),
    "suspended": N_("error.suspended"),
    "insufficient_funds": N_("error.insufficient_funds"),
    "over_limit": N_("error.over_limit"),
    "below_minimum": N_("error.below_minimum"),
    "above_maximum": N_("error.above_maximum"),
    "purse_not_allowed": N_("error.purse_not_allowed"),
    "overloaded": N_("error.overloaded"),
    "unavailable": N_("error.unavailable"),
    "outcome_unknown": N_("error.outcome_unknown"),
    "card_declined": N_("error.card_declined"),
    "acquirer_unavailable": N_("error.acquirer_unavailable"),
    "pending_max": N_("error.pending_max"),
    "desk_daily_limit": N_("error.desk_daily_limit"),
    "document_unknown": N_("error.document_unknown"),
    "event_unknown": N_("error.event_unknown"),
    "event_full": N_("error.event_full"),
    "event_closed": N_("error.event_closed"),
    "card_active": N_("error.card_active"),
    "card_taken": N_("error.card_taken"),
}


# The ids the charging checks (`coopnode.domain.charging`) and the charging service
# (`coopnode.payments.charging.ChargeRefused`) name: neither may import the catalogues, so
# they are marked here, and a charge page reads its text through this map.
CHARGE_TEXTS: dict[str, str] = {
    "error.card_number": N_("error.card_number"),
    "error.card_cvc": N_("error.card_cvc"),
    "error.card_birthday": N_("error.card_birthday"),
    "error.card_expiry": N_("error.card_expiry"),
    "error.card_expired": N_("error.card_expired"),
    "error.purse_not_allowed": N_("error.purse_not_allowed"),
    "error.amount": N_("error.amount"),
    "error.below_minimum": N_("error.below_minimum"),
    "error.above_maximum": N_("error.above_maximum"),
    "error.over_limit": N_("error.over_limit"),
    "error.charge_suspended": N_("error.charge_suspended"),
    "error.pending_max": N_("error.pending_max"),
    "error.unavailable": N_("error.unavailable"),
}


def charge_text_id(key: str) -> str:
    """The message id of a charging check's or the charging service's refusal;
    `error.generic` for one without a sentence of its own."""
    return CHARGE_TEXTS.get(key, N_("error.generic"))


# The identity actor's reasons that a page shows as `error.generic`, on purpose: OAuth's
# protocol codes (answered to apps, never on a page), and refusals whose page says more
# itself or that a page's own checks keep from the actor. A new reason fails
# tests/catalogues until it is given a sentence or put here.
GENERIC_REFUSALS = frozenset(
    {
        # Staff refusals: the console words them itself (`http.console.pages`).
        "forbidden",
        "bootstrap_done",
        "conflict",
        "wallet",
        "invalid_mail",
        "invalid_phone",
        "invalid_staff_id",
        "phone_in_use",
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_response_type",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
        "insecure_transport",
        "missing_authorization",
        "unsupported_token_type",
        "invalid_token",
        "insufficient_scope",
    }
)


def refusal_text_id(reason: str) -> str:
    """The message id of a refusal's sentence; `error.generic` for a reason without one."""
    return REFUSAL_TEXTS.get(reason, N_("error.generic"))


# The maps the templates read, by the name they read them under.
TEMPLATE_LABELS: dict[str, object] = {
    "purse_labels": PURSE_LABELS,
    "scope_labels": WALLET_SCOPE_LABELS,
    "history_kind_labels": HISTORY_KIND_LABELS,
    "charge_status_labels": CHARGE_STATUS_LABELS,
    "home_charge_labels": HOME_CHARGE_LABELS,
    "konbini_labels": KONBINI_LABELS,
    "konbini_steps": KONBINI_STEPS,
    "emoney_menu": EMONEY_MENU,
    "mail_change_steps": MAIL_CHANGE_STEPS,
    "code_sent": CODE_SENT,
    "inquiry_category_labels": INQUIRY_CATEGORY_LABELS,
    "answer_by_labels": ANSWER_BY_LABELS,
    "inquiry_status_labels": INQUIRY_STATUS_LABELS,
    "provided_by_labels": PROVIDED_BY_LABELS,
    "application_status_labels": APPLICATION_STATUS_LABELS,
    "attendance_labels": ATTENDANCE_LABELS,
}
