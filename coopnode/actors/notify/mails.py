"""The texts the notifier sends: the mails FLOWS.md names, and the SMS and voice passcodes.

Each mail is a function of typed arguments that returns a `MailText` (subject, body). Amounts
are `int` yen printed with thousands separators; totals are computed here from the items,
never passed in, so a mail cannot show a total that its lines do not add up to.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from coopnode.domain.errors import InvariantViolation
from coopnode.domain.money import Purse

ENROLMENT_SUBJECT = "【重要】大学生協ご加入に伴う組合員番号のお知らせと「アプリ登録」のお願い"
MAIL_CHANGE_SUBJECT = "大学生協加入情報（メールアドレス）変更受付"
VERIFICATION_SUBJECT = "【大学生協】確認コードのお知らせ"
KONBINI_CHARGE_SUBJECT = "【大学生協事業連合】コンビニチャージのお知らせ"
FAMILY_INVITATION_SUBJECT = "【大学生協】ファミリー（保護者）閲覧のご案内"

_SIGNATURE = "※このメールは送信専用のアドレスから送っています。ご返信いただいてもお答えできません。"
_NOT_YOU = "お心当たりのない場合は、このメールを破棄してください。"
_MEMBER_NO = re.compile(r"^[0-9]{12}$")
_CODE = re.compile(r"^[0-9]{6}$")

PURSE_LABELS: dict[Purse, str] = {
    Purse.BASE: "ベースマネー",
    Purse.TEXTBOOK: "教科書マネー",
    Purse.CAFETERIA: "学食マネー",
    Purse.MEAL: "ミール",
    Purse.POINTS: "ポイント",
}


class MailText(NamedTuple):
    subject: str
    body: str


class PaidItem(NamedTuple):
    """One line of the enrolment payment, e.g. ("生協加入 10口", 20000)."""

    label: str
    amount_yen: int


def yen(amount_yen: int) -> str:
    """20000 → "20,000円"."""
    return f"{amount_yen:,}円"


def _check_code(code: str) -> None:
    if not _CODE.match(code):
        raise InvariantViolation("a passcode in a message must be six digits")


def _check_url(url: str) -> None:
    # Links go to the co-op's own pages; anything else in a mail is a wiring mistake.
    if not url.startswith(("https://", "http://")) or any(char.isspace() for char in url):
        raise InvariantViolation("a link in a mail must be an absolute http(s) URL")


def _salutation(name: str) -> str:
    return f"{name} 様" if name else "組合員 様"


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
) -> MailText:
    """FLOWS §0: the "payment completed" mail sent when enrolment ends."""
    if not _MEMBER_NO.match(member_no):
        raise InvariantViolation("a member number has 12 digits")
    _check_url(password_guide_url)
    total_yen = enrolment_total_yen(items)
    lines = [f"　{item.label}：{yen(item.amount_yen)}" for item in items]
    body = "\n".join(
        [
            _salutation(member_name),
            "",
            f"このたびは{coop_name}にご加入いただき、ありがとうございます。",
            "以下のとおり決済が完了しましたのでお知らせします。",
            "",
            "■お支払い内容",
            *lines,
            f"　合計：{yen(total_yen)}",
            "",
            "■組合員番号",
            f"　{member_no}",
            "",
            "このメールは、組合員証（ICカード）が発行されるまでの間、"
            "組合員であることを証明するものです。大切に保管してください。",
            "",
            "■「アプリ登録」のお願い",
            "ご加入手続きに使ったメールアドレスが、マイポータル・組合員マイページの"
            "サインインIDになります。",
            "次のご案内に沿って、パスワードを設定してください。",
            f"　{password_guide_url}",
            "",
            _SIGNATURE,
        ]
    )
    return MailText(ENROLMENT_SUBJECT, body + "\n")


def mail_change_passcode_mail(
    *, passcode: str, passcode_entry_url: str, valid_minutes: int
) -> MailText:
    """FLOWS §1: the passcode sent to the current, then to the new, mail address."""
    _check_code(passcode)
    _check_url(passcode_entry_url)
    body = "\n".join(
        [
            "組合員 様",
            "",
            "大学生協加入情報（メールアドレス）の変更を受け付けました。",
            "次のパスコードを、パスコード入力画面に入力してください。",
            "",
            f"　パスコード：{passcode}",
            f"　有効期限：送信から{valid_minutes}分間",
            "",
            "パスコード入力画面：",
            f"　{passcode_entry_url}",
            "",
            "パスコードは誰にも教えないでください。生協の職員がお尋ねすることはありません。",
            _NOT_YOU,
            "",
            _SIGNATURE,
        ]
    )
    return MailText(MAIL_CHANGE_SUBJECT, body + "\n")


def verification_code_mail(*, code: str, valid_minutes: int) -> MailText:
    """FLOWS §2, §4 and §5: the verification code (確認コード) sent to a mail address."""
    _check_code(code)
    body = "\n".join(
        [
            "大学生協をご利用いただき、ありがとうございます。",
            "",
            "確認コードは次のとおりです。画面に入力して「コードの確認」を押してください。",
            "",
            f"　確認コード：{code}",
            f"　有効期限：送信から{valid_minutes}分間",
            "",
            "確認コードは誰にも教えないでください。",
            _NOT_YOU,
            "",
            _SIGNATURE,
        ]
    )
    return MailText(VERIFICATION_SUBJECT, body + "\n")


def konbini_charge_mail(
    *,
    customer_name_kana: str,
    amount_yen: int,
    purse: Purse,
    store_name: str,
    payment_info_url: str,
    pay_by: str,
) -> MailText:
    """FLOWS §6: where to find the payment numbers of a convenience-store charge."""
    if isinstance(amount_yen, bool) or amount_yen <= 0:
        raise InvariantViolation("a charge amount must be whole yen, more than 0")
    _check_url(payment_info_url)
    body = "\n".join(
        [
            _salutation(customer_name_kana),
            "",
            "大学生協電子マネーのコンビニチャージをお申し込みいただき、ありがとうございます。",
            "",
            f"　チャージ金額：{yen(amount_yen)}",
            f"　チャージ先：{PURSE_LABELS[purse]}",
            f"　お支払い先：{store_name}",
            f"　お支払い期限：{pay_by}",
            "",
            "お支払いに必要な番号と手順は、次のページでご確認ください。",
            f"　{payment_info_url}",
            "",
            "チャージは、コンビニでのお支払いが確認されてから反映されます。",
            "期限までにお支払いがない場合、お申し込みは取り消されます。",
            "",
            _SIGNATURE,
        ]
    )
    return MailText(KONBINI_CHARGE_SUBJECT, body + "\n")


def family_invitation_mail(*, member_name: str, url: str, member_account: bool) -> MailText:
    """FLOWS §3 step 5: a member let the address's holder see their cafeteria and purchase
    history. A guardian without a portal account confirms the address and sets a password
    at `url`; a member (the address has a portal account) signs in as usual at `url`.
    """
    _check_url(url)
    if member_account:
        how = [
            "マイポータルにサインインし、「ファミリー申請」のページからご覧ください。",
            f"　{url}",
        ]
    else:
        how = [
            "次のページでメールアドレスを確認し（確認コードをお送りします）、",
            "パスワードを設定してからサインインしてください。",
            f"　{url}",
        ]
    body = "\n".join(
        [
            "大学生協をご利用いただき、ありがとうございます。",
            "",
            f"{member_name} さんが、このメールアドレスの方に食堂利用履歴と購入履歴の閲覧を",
            "許可しました（ファミリー申請）。",
            "",
            *how,
            "",
            _NOT_YOU,
            "",
            _SIGNATURE,
        ]
    )
    return MailText(FAMILY_INVITATION_SUBJECT, body + "\n")


INQUIRY_ANSWER_SUBJECT = "【大学生協】お問合せへの回答"


def inquiry_answer_mail(
    *, name: str, inquiry_no: int, subject: str, answer: str, url: str
) -> MailText:
    """FLOWS §3 step 5: staff answered a member's inquiry (お問合せ); the answer is also
    on the portal home, in the inquiry list."""
    _check_url(url)
    body = "\n".join(
        [
            f"{name} 様",
            "",
            "大学生協へのお問合せ、ありがとうございます。次のとおり回答いたします。",
            "",
            f"お問合せNo：{inquiry_no}",
            f"件名：{subject}",
            "",
            answer,
            "",
            "回答はマイポータルのホーム（お問合せ履歴）でもご覧いただけます。",
            f"　{url}",
            "",
            _SIGNATURE,
        ]
    )
    return MailText(INQUIRY_ANSWER_SUBJECT, body + "\n")


def sms_passcode_text(*, code: str, valid_minutes: int) -> str:
    """FLOWS §3: the sign-in code by SMS; one short segment."""
    _check_code(code)
    return (
        f"【大学生協】認証コード：{code}（{valid_minutes}分間有効）。"
        "このコードは誰にも教えないでください。"
    )


def voice_passcode_text(*, code: str) -> str:
    """FLOWS §3: the sign-in code read out by a call, digit by digit and twice."""
    _check_code(code)
    spoken = "、".join(code)
    return f"大学生協です。認証コードをお知らせします。{spoken}。繰り返します。{spoken}。"
