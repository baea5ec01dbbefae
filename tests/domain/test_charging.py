"""The checks a charge passes before any payment starts."""

from __future__ import annotations

from coopnode.domain.charging import (
    CardBrand,
    amount_error,
    birthday_valid,
    card_brand,
    card_errors,
    katakana_valid,
    luhn_valid,
    phone_valid,
)
from coopnode.domain.money import Purse
from coopnode.domain.rules import CoopRules

TODAY = (2026, 11)


def test_luhn_and_brands() -> None:
    assert luhn_valid("4242424242424242") and not luhn_valid("4242424242424241")
    assert not luhn_valid("4242-4242-4242-4242")
    assert card_brand("378282246310005") is CardBrand.AMEX
    assert card_brand("5555555555554444") is CardBrand.MASTERCARD
    assert card_brand("3530111333300000") is CardBrand.JCB


def test_card_fields() -> None:
    assert card_errors("4242424242424242", "12", "2028", "123", "0517", TODAY) == {}
    # AMEX has a 4-digit security code; the others 3.
    assert card_errors("378282246310005", "12", "2028", "1234", "0229", TODAY) == {}
    assert set(card_errors("378282246310005", "12", "2028", "123", "0517", TODAY)) == {"cvc"}
    expired = card_errors("4242424242424242", "10", "2026", "123", "0517", TODAY)
    assert expired == {"expiry": "error.card_expired"}
    assert card_errors("4242424242424242", "13", "2028", "123", "1332", TODAY) == {
        "expiry": "error.card_expiry",
        "birthday": "error.card_birthday",
    }
    assert not birthday_valid("0230") and birthday_valid("1231")


def test_konbini_fields() -> None:
    assert katakana_valid("ヤマダ") and katakana_valid("ヴァージル・ー")
    assert not katakana_valid("やまだ") and not katakana_valid("ﾔﾏﾀﾞ") and not katakana_valid("")
    assert phone_valid(("090", "1234", "5678")) and phone_valid(("03", "1234", "5678"))
    assert not phone_valid(("90", "1234", "5678")) and not phone_valid(("090", "12a4", "5678"))


def test_amount_bounds_and_purse_cap() -> None:
    rules = CoopRules()
    assert amount_error(0, Purse.BASE, 0, rules) == ("amount_yen", "error.amount")
    assert amount_error(500, Purse.BASE, 0, rules)[1] == "error.below_minimum"
    assert amount_error(200_000, Purse.BASE, 0, rules)[1] == "error.above_maximum"
    assert amount_error(50_000, Purse.BASE, 60_000, rules)[1] == "error.over_limit"
    assert amount_error(5_000, Purse.MEAL, 0, rules)[0] == "purse"
    assert amount_error(40_000, Purse.BASE, 60_000, rules) == ("", "")
