"""The mail texts come from the catalogues: in Japanese they read as the co-op's mails
always did, and every mail is whole in every language (no placeholder left unfilled)."""

from __future__ import annotations

import pytest

from coopnode.actors.notify import mails
from coopnode.catalogues import languages
from coopnode.domain.errors import InvariantViolation
from coopnode.domain.money import Purse

URL = "https://portal.univ.coop/portal/mail-change/passcode"


def _every_mail(language: str) -> list[mails.MailText]:
    return [
        mails.enrolment_completed_mail(
            coop_name="東京大学生協",
            member_name="山田 花子",
            member_no="202600001234",
            items=[mails.PaidItem("生協加入 10口", 20_000), mails.PaidItem("ミール", 96_000)],
            password_guide_url=URL,
            language=language,
        ),
        mails.mail_change_passcode_mail(
            passcode="123456", passcode_entry_url=URL, valid_minutes=10, language=language
        ),
        mails.verification_code_mail(code="123456", valid_minutes=10, language=language),
        mails.konbini_charge_mail(
            customer_name_kana="ヤマダ ハナコ",
            amount_yen=5_000,
            purse=Purse.BASE,
            store_name="ローソン",
            payment_info_url=URL,
            pay_by="2026-12-10 23:59",
            language=language,
        ),
        mails.family_invitation_mail(
            member_name="山田 花子", url=URL, member_account=False, language=language
        ),
        mails.family_invitation_mail(
            member_name="山田 花子", url=URL, member_account=True, language=language
        ),
        mails.inquiry_answer_mail(
            name="山田 花子",
            inquiry_no=7,
            subject="100% の返金",
            answer="%(x)s はそのまま",
            url=URL,
            language=language,
        ),
    ]


def test_the_verification_mail_reads_as_it_always_did() -> None:
    text = mails.verification_code_mail(code="123456", valid_minutes=10)
    assert text.subject == "【大学生協】確認コードのお知らせ"
    assert text.body == (
        "大学生協をご利用いただき、ありがとうございます。\n\n"
        "確認コードは次のとおりです。画面に入力して「コードの確認」を押してください。\n\n"
        "　確認コード：123456\n　有効期限：送信から10分間\n\n"
        "確認コードは誰にも教えないでください。\n"
        "お心当たりのない場合は、このメールを破棄してください。\n\n"
        "※このメールは送信専用のアドレスから送っています。ご返信いただいてもお答えできません。\n"
    )


def test_the_enrolment_mail_adds_up_its_lines() -> None:
    body = _every_mail("ja")[0].body
    assert "　生協加入 10口：20,000円\n　ミール：96,000円\n　合計：116,000円" in body
    assert body.startswith("山田 花子 様\n\nこのたびは東京大学生協にご加入いただき")
    konbini = _every_mail("ja")[3].body
    assert "　チャージ金額：5,000円\n　チャージ先：ベースマネー\n" in konbini


@pytest.mark.parametrize("language", languages())
def test_every_mail_is_whole_in_every_language(language: str) -> None:
    for text in _every_mail(language):
        assert text.subject and text.body.endswith("\n")
        # Values are placed as they are: a member's "%" or "%(x)s" is not a placeholder.
        leftover = text.body.replace("%(x)s はそのまま", "").replace("100%", "")
        assert "%(" not in leftover and "%" not in leftover, (language, text.subject)
    sms = mails.sms_passcode_text(code="123456", valid_minutes=10, language=language)
    voice = mails.voice_passcode_text(code="123456", language=language)
    assert "123456" in sms and voice.count("6") == 2


def test_the_codes_read_as_they_always_did() -> None:
    assert mails.sms_passcode_text(code="123456", valid_minutes=10) == (
        "【大学生協】認証コード：123456（10分間有効）。このコードは誰にも教えないでください。"
    )
    assert mails.voice_passcode_text(code="123456") == (
        "大学生協です。認証コードをお知らせします。1、2、3、4、5、6。"
        "繰り返します。1、2、3、4、5、6。"
    )


def test_a_mail_refuses_what_it_cannot_say() -> None:
    with pytest.raises(InvariantViolation):
        mails.verification_code_mail(code="12345", valid_minutes=10)
    with pytest.raises(KeyError, match="xx"):
        mails.verification_code_mail(code="123456", valid_minutes=10, language="xx")
