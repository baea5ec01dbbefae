"""The texts the notifier sends: the mails FLOWS.md names, and the SMS and voice passcodes.

Each mail is a function of typed arguments that returns a `MailText` (subject, body). The
words are the message catalogues' (`coopnode.catalogues`, ids `mail.*`, `sms.*`,
`voice.*`), in Japanese, the co-op's language, unless a caller names another `language`
that has a catalogue. Amounts are `int` yen printed with thousands separators; totals are
computed here from the items, never passed in, so a mail cannot show a total that its
lines do not add up to.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from coopnode.catalogues import JAPANESE, N_, Catalogue, catalogue
from coopnode.catalogues.labels import PURSE_LABELS
from coopnode.domain.errors import InvariantViolation
from coopnode.domain.money import Purse

_MEMBER_NO = re.compile(r"^[0-9]{12}$")
_CODE = re.compile(r"^[0-9]{6}$")


class MailText(NamedTuple):
    subject: str
    body: str


class PaidItem(NamedTuple):
    """One line of the enrolment payment, e.g. ("生協加入 10口", 20000)."""

    label: str
    amount_yen: int


def yen(amount_yen: int, language: str = JAPANESE) -> str:
    """20000 → "20,000円" (in Japanese)."""
    return catalogue(language).text(N_("common.yen"), amount=f"{amount_yen:,}")


def _check_code(code: str) -> None:
    if not _CODE.match(code):
        raise InvariantViolation("a passcode in a message must be six digits")


def _check_url(url: str) -> None:
    # Links go to the co-op's own pages; anything else in a mail is a wiring mistake.
    if not url.startswith(("https://", "http://")) or any(char.isspace() for char in url):
        raise InvariantViolation("a link in a mail must be an absolute http(s) URL")


def _salutation(texts: Catalogue, name: str) -> str:
    if not name:
        return texts.text(N_("mail.salutation_member"))
    return texts.text(N_("mail.salutation"), name=name)


def _mail(texts: Catalogue, subject_id: str, *parts: str) -> MailText:
    """A mail of `parts` (paragraphs, blank lines between them), signed."""
    body = "\n\n".join([*parts, texts.text(N_("mail.signature"))])
    return MailText(texts.text(subject_id), body + "\n")


def enrolment_items(
    *,
    share_units: int,
    share_unit_yen: int,
    insurance: Sequence[PaidItem],
    emoney_yen: int,
    meal_yen: int,
    language: str = JAPANESE,
) -> list[PaidItem]:
    """What a member paid at enrolment, as the enrolment mail lists it (none of zero)."""
    texts = catalogue(language)
    items = [
        PaidItem(
            texts.text(N_("mail.enrolment.shares"), units=share_units),
            share_units * share_unit_yen,
        ),
        *insurance,
    ]
    if emoney_yen:
        items.append(PaidItem(texts.gettext(N_("mail.enrolment.emoney")), emoney_yen))
    if meal_yen:
        items.append(PaidItem(texts.gettext(N_("mail.enrolment.meal")), meal_yen))
    return items


def enrolment_total_yen(items: Sequence[PaidItem]) -> int:
    if not items:
        raise InvariantViolation("an enrolment payment has at least one item")
    for item in items:
        if isinstance(item.amount_yen, bool) or item.amount_yen < 0:
            raise InvariantViolation(f"the amount of {item.label!r} must be whole yen, 0 or more")
    return sum(item.amount_yen for item in items)


def enrolment_completed_mail(
    *,
    coop_name: str,
    member_name: str,
    member_no: str,
    items: Sequence[PaidItem],
    password_guide_url: str,
    language: str = JAPANESE,
) -> MailText:
    """FLOWS §0: the "payment completed" mail sent when enrolment ends."""
    if not _MEMBER_NO.match(member_no):
        raise InvariantViolation("a member number has 12 digits")
    _check_url(password_guide_url)
    total_yen = enrolment_total_yen(items)
    texts = catalogue(language)
    lines = [
        texts.text(
            N_("mail.enrolment.item"), label=item.label, amount=yen(item.amount_yen, language)
        )
        for item in items
    ]
    body = texts.text(
        N_("mail.enrolment.body"),
        coop_name=coop_name,
        items="\n".join(lines),
        total=yen(total_yen, language),
        member_no=member_no,
        url=password_guide_url,
    )
    return _mail(texts, N_("mail.enrolment.subject"), _salutation(texts, member_name), body)


def mail_change_passcode_mail(
    *, passcode: str, passcode_entry_url: str, valid_minutes: int, language: str = JAPANESE
) -> MailText:
    """FLOWS §1: the passcode sent to the current, then to the new, mail address."""
    _check_code(passcode)
    _check_url(passcode_entry_url)
    texts = catalogue(language)
    body = texts.text(
        N_("mail.mail_change.body"),
        passcode=passcode,
        valid_minutes=valid_minutes,
        url=passcode_entry_url,
    )
    return _mail(
        texts,
        N_("mail.mail_change.subject"),
        _salutation(texts, ""),
        body + "\n" + texts.text(N_("mail.not_you")),
    )


def verification_code_mail(*, code: str, valid_minutes: int, language: str = JAPANESE) -> MailText:
    """FLOWS §2, §4 and §5: the verification code (確認コード) sent to a mail address."""
    _check_code(code)
    texts = catalogue(language)
    body = texts.text(N_("mail.verification.body"), code=code, valid_minutes=valid_minutes)
    return _mail(
        texts, N_("mail.verification.subject"), body + "\n" + texts.text(N_("mail.not_you"))
    )


def konbini_charge_mail(
    *,
    customer_name_kana: str,
    amount_yen: int,
    purse: Purse,
    store_name: str,
    payment_info_url: str,
    pay_by: str,
    language: str = JAPANESE,
) -> MailText:
    """FLOWS §6: where to find the payment numbers of a convenience-store charge."""
    if isinstance(amount_yen, bool) or amount_yen <= 0:
        raise InvariantViolation("a charge amount must be whole yen, more than 0")
    _check_url(payment_info_url)
    texts = catalogue(language)
    body = texts.text(
        N_("mail.konbini.body"),
        amount=yen(amount_yen, language),
        purse=texts.text(PURSE_LABELS[purse]),
        store=store_name,
        pay_by=pay_by,
        url=payment_info_url,
    )
    return _mail(texts, N_("mail.konbini.subject"), _salutation(texts, customer_name_kana), body)


def family_invitation_mail(
    *, member_name: str, url: str, member_account: bool, language: str = JAPANESE
) -> MailText:
    """FLOWS §3 step 5: a member let the address's holder see their cafeteria and purchase
    history. A guardian without a portal account confirms the address and sets a password
    at `url`; a member (the address has a portal account) signs in as usual at `url`.
    """
    _check_url(url)
    texts = catalogue(language)
    how_id = N_("mail.family.how_member") if member_account else N_("mail.family.how_guardian")
    body = texts.text(N_("mail.family.body"), name=member_name, how=texts.text(how_id, url=url))
    return _mail(texts, N_("mail.family.subject"), body, texts.text(N_("mail.not_you")))


def inquiry_answer_mail(
    *, name: str, inquiry_no: int, subject: str, answer: str, url: str, language: str = JAPANESE
) -> MailText:
    """FLOWS §3 step 5: staff answered a member's inquiry (お問合せ); the answer is also
    on the portal home, in the inquiry list."""
    _check_url(url)
    texts = catalogue(language)
    body = texts.text(
        N_("mail.inquiry_answer.body"),
        inquiry_no=inquiry_no,
        subject=subject,
        answer=answer,
        url=url,
    )
    salutation = texts.text(N_("mail.salutation"), name=name)
    return _mail(texts, N_("mail.inquiry_answer.subject"), salutation, body)


def sms_passcode_text(*, code: str, valid_minutes: int, language: str = JAPANESE) -> str:
    """FLOWS §3: the sign-in code by SMS; one short segment."""
    _check_code(code)
    return catalogue(language).text(N_("sms.passcode"), code=code, valid_minutes=valid_minutes)


def voice_passcode_text(*, code: str, language: str = JAPANESE) -> str:
    """FLOWS §3: the sign-in code read out by a call, digit by digit and twice."""
    _check_code(code)
    texts = catalogue(language)
    spoken = texts.text(N_("voice.digit_separator")).join(code)
    return texts.text(N_("voice.passcode"), digits=spoken)
