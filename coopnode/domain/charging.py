"""The checks a charge passes before any payment starts (FLOWS §6), as plain functions.

Card fields are checked here, in the node, before the acquirer is called: the Luhn check
digit, the expiry (not past, at most `CARD_EXPIRY_YEARS_MAX` ahead), the security code's
length for the brand (4 digits for AMEX, 3 for the others) and the birthday as MMDD. The
convenience-store form needs the name in full-width katakana and a phone number in three
parts. Nothing here keeps a card number: callers keep only the brand and last four digits.
"""

from __future__ import annotations

import calendar
import re
from enum import StrEnum

from coopnode.domain.messages import WalletStatus
from coopnode.domain.money import CHARGEABLE_PURSES, Purse
from coopnode.domain.rules import CoopRules

# Cards are issued for at most about ten years; a year further out is a typing mistake.
CARD_EXPIRY_YEARS_MAX = 20
_DIGITS = re.compile(r"^[0-9]+$")
# An expiry as printed on a card: MM and YY (or YYYY).
_MONTH = re.compile(r"[0-9]{1,2}")
_YEAR = re.compile(r"[0-9]{2}|[0-9]{4}")
# Full-width katakana, the prolonged sound mark, the middle dot and a full-width space.
_KATAKANA = re.compile(r"^[\u30a1-\u30f6\u30fc\u30fb\u3000]+$")


class CardBrand(StrEnum):
    VISA = "visa"
    MASTERCARD = "mastercard"
    AMEX = "amex"
    JCB = "jcb"
    DINERS = "diners"
    UNKNOWN = "unknown"


def luhn_valid(number: str) -> bool:
    """Whether `number` (12 to 19 digits, nothing else) passes the Luhn check digit, as
    every payment card number does; the log redaction uses it to tell cards from ids."""
    if not _DIGITS.match(number) or not 12 <= len(number) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def card_brand(number: str) -> CardBrand:
    if number.startswith(("34", "37")):
        return CardBrand.AMEX
    if number.startswith("4"):
        return CardBrand.VISA
    if number[:2] in ("51", "52", "53", "54", "55") or "2221" <= number[:4] <= "2720":
        return CardBrand.MASTERCARD
    if "3528" <= number[:4] <= "3589":
        return CardBrand.JCB
    if number.startswith(("36", "300", "301", "302", "303", "304", "305", "38")):
        return CardBrand.DINERS
    return CardBrand.UNKNOWN


def card_errors(
    number: str, month: str, year: str, cvc: str, birthday: str, today: tuple[int, int]
) -> dict[str, str]:
    """Field name → error key for a card form; `today` is the (year, month) of now."""
    errors: dict[str, str] = {}
    if not luhn_valid(number):
        errors["card_number"] = "error.card_number"
    expiry = expiry_error(month, year, today)
    if expiry:
        errors["expiry"] = expiry
    cvc_length = 4 if card_brand(number) is CardBrand.AMEX else 3
    if not _DIGITS.match(cvc) or len(cvc) != cvc_length:
        errors["cvc"] = "error.card_cvc"
    if not birthday_valid(birthday):
        errors["birthday"] = "error.card_birthday"
    return errors


def expiry_error(month: str, year: str, today: tuple[int, int]) -> str:
    if not (_MONTH.fullmatch(month) and _YEAR.fullmatch(year)) or not 1 <= int(month) <= 12:
        return "error.card_expiry"
    full_year = int(year) + 2000 if len(year) == 2 else int(year)
    if full_year > today[0] + CARD_EXPIRY_YEARS_MAX:
        return "error.card_expiry"
    if (full_year, int(month)) < today:
        return "error.card_expired"
    return ""


def expiry_year(year: str) -> int:
    return int(year) + 2000 if len(year) == 2 else int(year)


def birthday_valid(birthday: str) -> bool:
    if len(birthday) != 4 or not _DIGITS.match(birthday):
        return False
    month, day = int(birthday[:2]), int(birthday[2:])
    # A leap year, so that 0229 is a birthday.
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(2024, month)[1]


def katakana_valid(text: str) -> bool:
    return bool(_KATAKANA.match(text)) and len(text) <= 32


def phone_valid(parts: tuple[str, str, str]) -> bool:
    """A Japanese number in three parts (090-1234-5678, 03-1234-5678): 10 or 11 digits."""
    if not all(_DIGITS.match(part) and 1 <= len(part) <= 5 for part in parts):
        return False
    return parts[0].startswith("0") and len("".join(parts)) in (10, 11)


def amount_error(
    amount_yen: int, purse: Purse, balance_yen: int, rules: CoopRules
) -> tuple[str, str]:
    """(field, error key) when a charge would be refused by the wallet; ("", "") otherwise.

    The wallet applies the same rules when it credits; checking here means no payment
    starts for a charge that could not be credited.
    """
    if purse not in CHARGEABLE_PURSES:
        return "purse", "error.purse_not_allowed"
    if amount_yen <= 0:
        return "amount_yen", "error.amount"
    if amount_yen < rules.charge_min_yen:
        return "amount_yen", "error.below_minimum"
    if amount_yen > rules.charge_max_yen:
        return "amount_yen", "error.above_maximum"
    if balance_yen + amount_yen > rules.purse_balance_max_yen[purse]:
        return "amount_yen", "error.over_limit"
    return "", ""


def start_error(status: WalletStatus) -> str:
    """The error key when no charge may start for a wallet in `status`; "" when one may.

    A suspended account starts no charge: no card is authorized and no payment number
    issued, so no money is taken that the member could not use (the account is often
    suspended because the card was lost). A convenience-store charge issued before the
    suspension is still credited when paid (`wallet._charge`).
    """
    return "error.charge_suspended" if status is WalletStatus.SUSPENDED else ""
