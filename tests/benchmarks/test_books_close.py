"""The books benchmark runs end to end on a small day and prints both p99s (the figures
are measured by `make bench`, not asserted here)."""

from __future__ import annotations

import json

import pytest

from benchmarks import books_close


def test_a_small_run_prints_the_taps_with_and_without_the_books(
    capsys: pytest.CaptureFixture[str],
) -> None:
    books_close.main(["--day-taps", "2000", "--rate", "200", "--phase-s", "0.5", "--rounds", "1"])
    out = capsys.readouterr().out
    line, document = out.split("\n", 1)
    assert "tap p99" in line and "while closing the day" in line
    figures = json.loads(document)
    assert figures["closed_entries"] == 2_000
    assert figures["quiet"]["taps"] == 100
    assert figures["report_entries"] >= 2_000 and figures["books"]["taps"] > 0
