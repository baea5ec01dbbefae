"""The counter's (窓口) rules: how a clerk finds a member, and what identification a
change made at the counter records.

Pure: the identity actor searches its accounts with these, and the pages and the API
read the same bounds.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from typing import Annotated

import msgspec

# A query a clerk types: a mail address is at most 254 characters (RFC 5321's path
# limit), and nothing else a clerk looks for is longer.
COUNTER_QUERY_CHARS_MAX = 254
# Members one search lists: a screenful for a clerk who then narrows the search; a kana
# that matches more is too short to serve anybody at the counter.
COUNTER_RESULTS_MAX = 20
# Accounts one kana search reads: a co-op's members with room to spare, so that a
# search answers in a bounded time (about a second on the reference host) and holds the
# identity actor no longer, whatever the store holds.
COUNTER_KANA_SCAN_MAX = 200_000

CounterQuery = Annotated[
    str, msgspec.Meta(min_length=1, max_length=COUNTER_QUERY_CHARS_MAX, description="what to find")
]


class FindBy(StrEnum):
    """What the clerk typed, or laid on the reader."""

    MEMBER_NO = "member_no"  # the 12 digits, exactly
    KANA = "kana"  # a part of the name in kana, hiragana or katakana, full or half width
    MAIL = "mail"  # the registered address, exactly (case and spaces aside)
    CARD = "card"  # a card's IDm, laid on the counter's reader


class IdDocument(StrEnum):
    """A photo identification a clerk checks before a change at the counter (FLOWS §1
    sends members who already use e-money to the counter for an address change; the
    online flow's check, the member number with the birth date, is made here too)."""

    STUDENT_CARD = "student_card"  # 学生証
    DRIVERS_LICENCE = "drivers_licence"  # 運転免許証
    MY_NUMBER_CARD = "my_number_card"  # マイナンバーカード (the card, never its number)
    PASSPORT = "passport"  # パスポート
    RESIDENCE_CARD = "residence_card"  # 在留カード


_HIRAGANA_TO_KATAKANA = 0x60
_SPACES = re.compile(r"[\s\u3000・]+")


def normalise_kana(text: str) -> str:
    """Kana as the counter compares it: full-width katakana (NFKC turns half-width into
    full-width), hiragana read as katakana, without spaces or the middle dot."""
    folded = unicodedata.normalize("NFKC", text)
    katakana = "".join(
        chr(ord(char) + _HIRAGANA_TO_KATAKANA) if "ぁ" <= char <= "ゖ" else char for char in folded
    )
    return _SPACES.sub("", katakana)


def kana_matches(query: str, kana: str) -> bool:
    """Whether a member's kana holds the (normalised) query: a family name, a given name,
    or both in the order the account holds them."""
    wanted = normalise_kana(query)
    return bool(wanted) and wanted in normalise_kana(kana)
