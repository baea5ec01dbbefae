"""Scenario files: the shipped ones load, bad ones are refused by key, seeds reproduce."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import msgspec
import pytest

from coopnode.loadtest.scenarios import (
    SCENARIO_DIR,
    ScenarioError,
    arrival_offsets_s,
    build_workload,
    load_scenario,
    parse_scenario,
    till_kinds,
)

GOOD = b"""
name = "tiny"
duration_s = 10.0
mix = { tap = 1.0 }
[profile]
peak_rate_per_s = 100.0
points = [[0.0, 0.1], [0.5, 1.0], [1.0, 0.1]]
[population]
members = 50
lost_cards = 2
[tills]
count = 4
"""


@pytest.mark.parametrize("name", ["lunch-rush", "term-start", "mixed"])
def test_shipped_scenarios_load(name: str) -> None:
    scenario = load_scenario(name)
    assert scenario.name == name
    assert (SCENARIO_DIR / f"{name}.toml").exists()


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (GOOD.replace(b"peak_rate_per_s = 100.0", b'peak_rate_per_s = "fast"'),
         "$.profile.peak_rate_per_s"),
        (GOOD.replace(b"members = 50", b"members = 50\nmembres = 3"), "membres"),
        (GOOD.replace(b"count = 4", b"count = -1"), "$.tills.count"),
        (GOOD.replace(b"[[0.0, 0.1], [0.5, 1.0], [1.0, 0.1]]", b"[[0.5, 1.0], [0.0, 0.1]]"),
         "profile.points"),
        (GOOD.replace(b"duration_s = 10.0\n", b""), "duration_s"),
        (GOOD.replace(b"mix = { tap = 1.0 }", b"mix = { sign_in = 1.0 }"), "accounts"),
        (GOOD.replace(b"mix = { tap = 1.0 }", b"mix = { teleport = 1.0 }"), "$.mix"),
        (b"name = [unclosed", "not a TOML file"),
    ],
)  # fmt: skip
def test_bad_scenarios_are_refused_naming_the_key(text: bytes, names: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "bad.toml")
    assert "bad.toml" in str(caught.value)
    assert names in str(caught.value)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(str(tmp_path / "absent.toml"))


def test_same_seed_gives_the_same_workload() -> None:
    scenario = load_scenario("mixed")
    first = build_workload(scenario, 200.0, 5.0, seed=7)
    again = build_workload(scenario, 200.0, 5.0, seed=7)
    other = build_workload(scenario, 200.0, 5.0, seed=8)
    assert msgspec.json.encode(first) == msgspec.json.encode(again)
    assert msgspec.json.encode(first) != msgspec.json.encode(other)
    assert [op.at_s for op in first] == sorted(op.at_s for op in first)


def test_the_workload_follows_the_profile_and_the_population() -> None:
    scenario = parse_scenario(GOOD)
    ops = build_workload(scenario, 400.0, 10.0, seed=1)
    taps = [op for op in ops if op.kind == "tap"]
    # The profile peaks mid-run: the middle fifth is far busier than the first fifth.
    early = sum(op.at_s < 2.0 for op in taps)
    middle = sum(4.0 <= op.at_s < 6.0 for op in taps)
    assert middle > 3 * early
    # Zipf-like weights: the busiest member taps far more often than the median member.
    per_member = Counter(op.member for op in taps)
    assert per_member[0] > 5 * sorted(per_member.values())[len(per_member) // 2]
    assert sum(op.kind == "report_lost" for op in ops) == 2
    kinds = till_kinds(scenario)
    for op in taps:
        low, high = scenario.tills.amounts_yen[kinds[op.till]]
        assert low - 10 <= op.amount_yen <= high + 10


def test_fixed_arrivals_follow_the_profile_evenly() -> None:
    scenario = parse_scenario(GOOD.replace(b"points =", b'arrival = "fixed"\npoints ='))
    offsets = arrival_offsets_s(scenario.profile, 100.0, 10.0, seed=0)
    # The mean share of the peak over the run is 0.55, so about 550 sends.
    assert 500 <= len(offsets) <= 600
    assert offsets == sorted(offsets)


def test_term_start_resets_only_passwords_of_enrolled_newcomers() -> None:
    scenario = load_scenario("term-start")
    ops = build_workload(scenario, 60.0, 20.0, seed=3)
    enrolled: dict[int, float] = {}
    for op in ops:
        if op.kind == "enrol":
            enrolled[op.member] = op.at_s
        if op.kind == "password_start":
            assert enrolled[op.member] <= op.at_s - 1.0
    resets = [op.member for op in ops if op.kind == "password_start"]
    assert resets == list(range(len(resets)))
