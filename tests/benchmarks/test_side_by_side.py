"""The side-by-side benchmark's pure parts: the peer's table read, figures, ratios, medians."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from benchmarks.side_by_side import (
    CLOSED_16,
    CLOSED_64,
    OPEN_1000,
    OPEN_2000,
    PEER_SCRIPT,
    WARMUP,
    Figures,
    PeerSummaryError,
    median_figures,
    node_figures,
    node_plan,
    parse_peer_table,
    peer_environment,
    peer_figures,
    ratios,
    summary_line,
    table,
)

# The tail of a real summary of benchmarks/pg_debit_peer.sh (3 s runs: no *_mid figures).
PEER_SUMMARY = """
================ pg_debit_peer summary ================
host:      2 cores (AMD EPYC), 23.5 GiB RAM, kernel 6.18.44-fc-v1045
storage:   /dev/vda ext4 (data dir /tmp/pgpeer.AgFY75/data)
server:    PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu, 64-bit

name               sync_commit  clients  target_rate   tps  lat_avg_ms  lat_sd_ms  p50_ms  p90_ms  p99_ms  p999_ms  p99_mid_ms  p999_mid_ms   max_ms   txns  failed  lag_avg_ms  cpu_busy%  iowait%  pgbench_cpu%
closed_c16                  on       16            -  4735       3.217      1.659   2.932   4.377  10.624   16.223           -            -   31.115  14241       0           -         92        1            16
closed_c64                  on       64            -  4128      13.750      6.941  12.839  21.687  38.373   60.163       9.250       20.125  103.157  12449       2           -         96        0            13
open_R1000                  on       64         1000   958       1.653      3.428   0.851   2.132  23.357   36.528           -            -   39.860   2796       0       0.131         44        3             6
open_R2000                  on       64         2000  1882       2.187      5.428   1.049   2.823  33.305   62.599           -            -   81.330   5572       1       0.217         61        3            11
nosync_closed_c16          off       16            -  5886       2.538      0.990   2.454   3.644   5.159   10.291           -            -   23.005  17657       0           -         99        0            17

consistency: 146532 journal rows; 146532 debits of 500; 0 untouched-kind rows changed; 0 purses below 500; db size 37 MB
"""  # noqa: E501 (the peer's table, as it prints it)


def test_the_peer_s_table_is_read_by_its_own_column_names() -> None:
    rows = parse_peer_table(PEER_SUMMARY)
    assert list(rows) == [CLOSED_16, CLOSED_64, OPEN_1000, OPEN_2000, "nosync_closed_c16"]
    assert rows[CLOSED_64]["p99_mid_ms"] == "9.250"
    assert rows[OPEN_1000]["target_rate"] == "1000"
    assert rows["nosync_closed_c16"]["sync_commit"] == "off"
    assert rows[CLOSED_16]["pgbench_cpu%"] == "16"


def test_the_peer_s_figures_are_the_whole_run_p99_and_the_closed_runs_tps() -> None:
    figures = peer_figures(parse_peer_table(PEER_SUMMARY))
    assert figures == Figures(
        p99_at_1000_ms=23.357, p99_at_2000_ms=33.305,
        closed_16_per_s=4735.0, closed_64_per_s=4128.0, errors=3,
    )  # fmt: skip
    assert figures.capacity_per_s == 4735.0


def test_the_summary_s_labelled_lines_are_found() -> None:
    assert (
        summary_line(PEER_SUMMARY, "storage") == "/dev/vda ext4 (data dir /tmp/pgpeer.AgFY75/data)"
    )
    assert summary_line(PEER_SUMMARY, "consistency").startswith("146532 journal rows;")
    assert summary_line(PEER_SUMMARY, "nothing") == ""


def test_a_summary_without_its_table_or_a_needed_run_is_refused() -> None:
    with pytest.raises(PeerSummaryError, match="no results table"):
        parse_peer_table("runtime:   55 s\n")
    without_open = "\n".join(line for line in PEER_SUMMARY.splitlines() if "open_R2000" not in line)
    with pytest.raises(PeerSummaryError, match="open_R2000"):
        peer_figures(parse_peer_table(without_open))


def test_a_row_that_does_not_fit_the_columns_is_refused() -> None:
    broken = PEER_SUMMARY.replace("closed_c16                  on       16", "closed_c16  on")
    with pytest.raises(PeerSummaryError, match="cells under"):
        parse_peer_table(broken)


def test_a_dash_where_a_figure_is_needed_is_refused() -> None:
    rows = parse_peer_table(PEER_SUMMARY)
    rows[OPEN_1000]["p99_ms"] = "-"
    with pytest.raises(PeerSummaryError, match="not a number"):
        peer_figures(rows)


NODE = Figures(p99_at_1000_ms=5.0, p99_at_2000_ms=10.0, closed_16_per_s=3_000.0,
               closed_64_per_s=6_000.0, errors=0)  # fmt: skip
PEER = Figures(p99_at_1000_ms=20.0, p99_at_2000_ms=40.0, closed_16_per_s=4_000.0,
               closed_64_per_s=3_000.0, errors=1)  # fmt: skip


def test_ratios_are_node_over_peer_and_capacity_is_each_side_s_better_run() -> None:
    ratio = ratios(NODE, PEER)
    assert (ratio.p99_at_1000, ratio.p99_at_2000) == (0.25, 0.25)
    assert (ratio.closed_16, ratio.closed_64) == (0.75, 2.0)
    # 6,000 (the node's 64-client run) over 4,000 (the peer's 16-client run).
    assert ratio.capacity == 1.5


def test_a_peer_figure_of_zero_gives_no_ratio_rather_than_a_crash() -> None:
    zero = Figures(p99_at_1000_ms=0.0, p99_at_2000_ms=40.0, closed_16_per_s=0.0,
                   closed_64_per_s=0.0, errors=0)  # fmt: skip
    ratio = ratios(NODE, zero)
    assert ratio.p99_at_1000 is None and ratio.capacity is None
    assert ratio.p99_at_2000 == 0.25
    assert "-" in table(NODE, zero).splitlines()[1]


def test_the_medians_are_taken_per_figure_and_errors_are_summed() -> None:
    third = Figures(p99_at_1000_ms=7.0, p99_at_2000_ms=1.0, closed_16_per_s=1.0,
                    closed_64_per_s=9_000.0, errors=2)  # fmt: skip
    median = median_figures([NODE, PEER, third])
    assert median == Figures(p99_at_1000_ms=7.0, p99_at_2000_ms=10.0, closed_16_per_s=3_000.0,
                             closed_64_per_s=6_000.0, errors=3)  # fmt: skip
    with pytest.raises(ValueError, match="no rounds"):
        median_figures([])


def test_the_table_prints_both_sides_and_the_ratio_on_each_line() -> None:
    lines = table(NODE, PEER).splitlines()
    assert re.fullmatch(r"\s+open loop p99 at 1,000/s\s+5\.0 ms\s+20\.0 ms\s+0\.25", lines[1])
    assert re.fullmatch(
        r"\s+capacity \(the better closed run\)\s+6,000/s\s+4,000/s\s+1\.50", lines[5]
    )


def test_the_node_s_figures_come_from_its_runs_by_the_peer_s_names() -> None:
    closed = {"approved_per_s": 3_000.0, "errors": 1}
    runs = {
        WARMUP: {"approved_per_s": 1.0, "errors": 50},  # Not counted, as the peer's warm-up.
        CLOSED_16: closed, CLOSED_64: {**closed, "approved_per_s": 6_000.0},
        OPEN_1000: {"latency_p99_ms": 5.0, "errors": 0},
        OPEN_2000: {"latency_p99_ms": 10.0, "errors": 0},
    }  # fmt: skip
    assert node_figures(runs) == Figures(p99_at_1000_ms=5.0, p99_at_2000_ms=10.0,
                                         closed_16_per_s=3_000.0, closed_64_per_s=6_000.0,
                                         errors=2)  # fmt: skip


def test_the_node_runs_what_the_peer_runs_in_the_peer_s_order() -> None:
    plan = node_plan(20)
    assert [name for name, _ in plan] == [WARMUP, CLOSED_16, CLOSED_64, OPEN_1000, OPEN_2000]
    assert plan[1][1] == ["--closed-tills", "16", "--duration", "20"]
    assert plan[4][1] == ["--rate-fixed", "2000", "--duration", "20"]


def test_the_vendored_peer_is_the_shared_reference_byte_for_byte() -> None:
    # The header names the original's hash; deleting the header's lines 2-9 gives it back.
    lines = Path(PEER_SCRIPT).read_bytes().splitlines(keepends=True)
    named = re.search(rb"sha256 ([0-9a-f]{64})", b"".join(lines[1:9]))
    assert named is not None
    original = lines[0] + b"".join(lines[9:])
    assert hashlib.sha256(original).hexdigest() == named.group(1).decode()


def test_the_peer_runs_as_long_with_as_many_members_as_the_node_on_its_own_port() -> None:
    env = peer_environment(20, 10_000, 55999)
    assert (env["PGPEER_DURATION"], env["PGPEER_MEMBERS"], env["PGPEER_PORT"]) == (
        "20", "10000", "55999",
    )  # fmt: skip
