"""Load over several fronts: the split of tills and requests, each front's figures, the report."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import msgspec
import pytest
from aiohttp import web

from coopnode.loadtest.fronts import (
    FRONTS_MAX,
    FrontsError,
    assign_fronts,
    front_of_till,
    parse_front_urls,
    tills_per_front,
)
from coopnode.loadtest.harness import Naming, Target, play
from coopnode.loadtest.planning import measured_capacity, plan
from coopnode.loadtest.report import HarnessReport, front_table, write_report
from coopnode.loadtest.scenarios import Op, build_workload, load_scenario, parse_scenario
from coopnode.loadtest.tills import TillLoadSetup, TillSpec
from coopnode.node.cli import main
from tests.loadtest.test_openloop import Handler, serving

CHARGES = b"""
name = "charges"
duration_s = 1.0
mix = { charge_card = 1.0 }
[profile]
peak_rate_per_s = 60.0
arrival = "fixed"
[population]
members = 10
"""


def test_urls_are_taken_once_each_in_order_from_repeated_options_and_lists() -> None:
    given = ["http://a:1/", "http://b:2, http://c:3", " https://d:4 "]
    assert parse_front_urls(given) == ["http://a:1", "http://b:2", "http://c:3", "https://d:4"]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ([" , "], "no front"),
        (["http://a:1", "http://a:1/"], "twice"),
        (["a:1"], "http://"),
        ([",".join(f"http://h{n}:1" for n in range(FRONTS_MAX + 1))], "at most"),
    ],
)
def test_a_list_of_fronts_that_cannot_be_loaded_is_refused(given: list[str], message: str) -> None:
    with pytest.raises(FrontsError, match=message):
        parse_front_urls(given)


def test_tills_are_dealt_out_over_the_fronts_in_turn() -> None:
    assert [front_of_till(till, 3) for till in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    assert tills_per_front(32, 2) == [16, 16]
    assert tills_per_front(7, 3) == [3, 2, 2]
    assert tills_per_front(5, 1) == [5]
    with pytest.raises(FrontsError):
        front_of_till(0, 0)


def test_a_tap_goes_to_its_till_s_front_and_other_requests_to_the_fronts_in_turn() -> None:
    ops = [
        Op(at_s=0.0, kind="tap", member=0, till=3),
        Op(at_s=0.1, kind="enrol", member=0),
        Op(at_s=0.2, kind="tap", member=1, till=0),
        Op(at_s=0.3, kind="charge_card", member=2),
        Op(at_s=0.4, kind="sign_in", member=0),
        Op(at_s=0.5, kind="tap", member=1, till=5),
    ]
    assert assign_fronts(ops, 2) == [1, 0, 0, 1, 0, 1]
    assert assign_fronts(ops, 1) == [0] * len(ops)


def test_a_scenario_s_workload_is_split_evenly_and_the_same_way_every_time() -> None:
    scenario = load_scenario("mixed")
    ops = build_workload(scenario, 200.0, 10.0, scenario.seed)
    fronts = assign_fronts(ops, 2)
    assert fronts == assign_fronts(build_workload(scenario, 200.0, 10.0, scenario.seed), 2)
    requests = Counter(front for op, front in zip(ops, fronts, strict=True) if op.kind != "tap")
    assert abs(requests[0] - requests[1]) <= 1
    for op, front in zip(ops, fronts, strict=True):
        if op.kind == "tap":
            assert front == op.till % 2


def test_a_till_load_setup_spreads_its_tills_only_when_it_names_fronts() -> None:
    setup = TillLoadSetup(url="http://a:1", tills=[TillSpec(till_id="t", signing_key_hex="00")],
                          idms=[])  # fmt: skip
    assert setup.front_urls() == ["http://a:1"]
    spread = msgspec.structs.replace(setup, fronts=["http://a:1", "http://b:2"])
    assert spread.front_urls() == ["http://a:1", "http://b:2"]


async def test_each_front_is_measured_apart_and_the_whole_is_their_sum() -> None:
    """Two local servers stand in for two fronts; each counts what it was sent."""
    scenario = parse_scenario(CHARGES)
    ops = build_workload(scenario, 60.0, 1.0, seed=0)
    received = [0, 0]

    def counting(front: int) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            received[front] += 1
            return web.json_response({"ok": True})

        return handler

    async with serving(counting(0)) as first, serving(counting(1)) as second:
        target = Target([first, second], "token", scenario, Naming(prefix=4201))
        figures = await play(target, ops, 60.0, 1.0, progress=False)
    assert len(ops) == 60 and received == [30, 30]
    assert [front.url for front in figures.by_front] == [first, second]
    assert [front.operations for front in figures.by_front] == received
    for front, count in zip(figures.by_front, received, strict=True):
        assert front.overall.completed == front.by_kind["charge_card"].completed == count
        assert front.overall.errors == 0
    assert sum(front.overall.completed for front in figures.by_front) == (figures.overall.completed)
    table = front_table(figures, "charge_card")
    assert first in table and second in table and "all fronts" in table


async def test_one_front_has_no_figures_apart_from_the_run_s() -> None:
    scenario = parse_scenario(CHARGES)
    ops = build_workload(scenario, 60.0, 1.0, seed=0)

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async with serving(handler) as url:
        figures = await play(Target(url, "t", scenario, Naming(prefix=4202)), ops, 60.0, 1.0,
                             progress=False)  # fmt: skip
    assert figures.by_front == []
    assert figures.overall.completed == len(ops)


def test_the_report_shows_each_front_and_the_plan_s_assumptions(tmp_path: Path) -> None:
    scenario = load_scenario("lunch-rush")
    capacity = measured_capacity(2_000.0, 2, 1, "a test", scenario.planning)
    report = HarnessReport(
        scenario="lunch-rush", seed=1, command="coopnode loadtest", started_at="now",
        node_url="http://a:1", front_urls=["http://a:1", "http://b:2"], shards=1,
        own_node=True, machine={}, objective_kind="tap", p99_objective_ms=10.0, run=None,
        search=None, books_balanced=True, planning=plan(capacity, scenario.planning),
    )  # fmt: skip
    written = write_report(report, tmp_path)
    page = (tmp_path / "index.html").read_text()
    assert "http://a:1, http://b:2" in page and "wallet shards: 1" in page
    assert "hosts" in page and "rests on" in page
    decoded = msgspec.json.decode((tmp_path / "report.json").read_bytes(), type=HarnessReport)
    assert decoded == report
    assert tmp_path / "planning.md" in written


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--url", "http://a:1", "--url", "http://a:1"], "twice"),
        (["--url", "http://a:1,http://b:2", "--fronts", "2"], "own node"),
        (["--url", "http://a:1", "--shards", "2"], "own node"),
    ],
)
def test_the_command_refuses_fronts_it_cannot_load_before_it_starts_anything(
    arguments: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tmp_path / "staff-token"
    token.write_text("token")
    command = ["loadtest", "--scenario", "lunch-rush", "--token-file", str(token), *arguments]
    assert main(command) == 2
    assert message in capsys.readouterr().err
