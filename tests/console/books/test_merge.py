"""The node's day is the shards' days added up, and the figures' check finds a gap."""

from __future__ import annotations

from datetime import date

import pytest

from coopnode.domain.books import DayFold, figure_problems, merge_days
from coopnode.domain.messages import JournalEntry
from tests.console.books.conftest import tokyo_ms

DAY = date(2026, 6, 1)


def sale(seq: int, member: str, store: str, yen: int, hour: int) -> JournalEntry:
    return JournalEntry(
        seq=seq, at_ms=tokyo_ms(2026, 6, 1, hour), kind="pay", member_no=member,
        key=f"t{seq}", amount_yen=yen,
        postings=[(f"member:{member}:base", -yen), (f"sales:{store}", yen)],
        store=store, till_id=f"{store}-1",
    )  # fmt: skip


def test_two_shards_add_up() -> None:
    one, two = DayFold(DAY), DayFold(DAY)
    one.add(sale(1, "202600000017", "north", 500, 12))
    two.add(sale(1, "202600000025", "north", 700, 12))
    two.add(sale(2, "202600000025", "shop", 300, 18))
    merged = merge_days([one.result(), two.result()])
    assert merged.entries == 3
    assert merged.accounts == {"purses:base": -1_500, "sales:north": 1_200, "sales:shop": 300}
    [north] = [f for f in merged.figures if f.store == "north"]
    assert (north.yen, north.entries) == (1_200, 2)
    assert merged.hourly_sales["north"][12] == 1_200 and merged.hourly_sales["shop"][18] == 300
    assert figure_problems(merged) == []
    with pytest.raises(ValueError, match="merged"):
        merge_days([one.result(), DayFold(date(2026, 6, 2)).result()])


def test_figures_that_do_not_explain_an_account_are_named() -> None:
    fold = DayFold(DAY)
    fold.add(sale(1, "202600000017", "north", 500, 12))
    sums = fold.result()
    wrong = sums.__class__(
        day=sums.day, entries=sums.entries, figures=sums.figures,
        accounts={**sums.accounts, "sales:north": 499, "purses:base": -499},
        hourly_sales=sums.hourly_sales, corrections=[],
    )  # fmt: skip
    problems = figure_problems(wrong)
    assert "sales:north: the journal says 499, the figures 500" in problems
