"""`coopnode loadtest`: run a scenario against a node, search its capacity, write a report.

    coopnode loadtest --scenario lunch-rush [--url URL ... --token-file F] [--out DIR] [--search]
    coopnode loadtest --scenario lunch-rush --fronts 2 [--shards 1] [--search]

Without `--url` the command starts a node of its own (`coopnode serve` in a child process,
on a fresh data directory, with the till demo off) and stops it afterwards; with
`--fronts N` (N ≥ 2) it starts instead a cluster of N hosts on this machine, each with its
disk and its front (`cluster.py`). `--url` may be given several times, or as a list with
commas: the fronts of one cluster, sharing the staff token. The load is spread over every
front (`fronts.py`), the report gives each front's figures and the whole's, and the books
are audited once, at the end, through the first front.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import secrets
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from coopnode.loadtest.cluster import HOSTS_MAX, LocalCluster, host_names, wait_healthy
from coopnode.loadtest.fronts import FrontsError, parse_front_urls
from coopnode.loadtest.harness import (
    HTTP_CONNECTIONS,
    CapacitySearch,
    HarnessError,
    Naming,
    RunFigures,
    Target,
    books_balanced,
    close,
    play,
    prepare,
    search,
    shard_count,
)
from coopnode.loadtest.machine import CpuShare
from coopnode.loadtest.node_process import (
    NICENESS_MAX,
    NodeProcess,
    remove_tree,
    session_priority,
    short_tmpdir,
)
from coopnode.loadtest.openloop import event_loop_factory
from coopnode.loadtest.planning import Plan, measured_capacity, plan, unmeasured
from coopnode.loadtest.scenarios import Scenario, ScenarioError, build_workload, load_scenario
from coopnode.settings import Settings

if TYPE_CHECKING:
    from coopnode.loadtest.report import HarnessReport

# Runs against the harness's own node keep its chatter out of the progress bar.
OWN_NODE_ENV = {"COOPNODE_LOG__LEVEL": "warning", "COOPNODE_TILL__DEMO_TILL": "false"}
# How far below the generator's CPU priority the harness's own node runs (`--node-nice`).
# 0, the default: on the shared two-core reference machine a node niced by 10 left the
# generator's lag where other engineers' work put it, and handed the node's CPU to that
# work instead (docs/capacity/README.md, "Generator and node on one machine", has the
# dated figures).
NODE_NICENESS_DEFAULT = 0


def add_loadtest_command(commands: Any) -> None:
    """Register `loadtest` on the `coopnode` command's subparsers."""
    parser = commands.add_parser("loadtest", help="capacity harness: run a load scenario")
    parser.add_argument("--scenario", required=True, help="a name in config/scenarios or a path")
    parser.add_argument(
        "--url",
        action="append",
        help="a front of the node to load; again (or URL,URL) for several (default: start one)",
    )
    parser.add_argument("--token-file", type=Path, help="an API token of the node (with --url)")
    parser.add_argument(
        "--fronts",
        type=int,
        default=1,
        choices=range(1, HOSTS_MAX + 1),
        metavar=f"1..{HOSTS_MAX}",
        help="own node: a cluster of this many hosts on this machine, a front on each"
        " (default 1: one `coopnode serve`)",
    )
    parser.add_argument(
        "--shards",
        type=int,
        choices=range(1, 65),
        metavar="1..64",
        help="own node: its wallet shards (default: the node's settings; a cluster: one a host)",
    )
    parser.add_argument("--out", type=Path, help="report directory (default var/loadtest/NAME)")
    parser.add_argument("--search", action="store_true", help="also search the capacity")
    parser.add_argument("--no-run", action="store_true", help="with --search: skip the run")
    parser.add_argument("--seed", type=int, help="override the scenario's seed")
    parser.add_argument("--duration", type=float, help="override the run's seconds")
    parser.add_argument("--rate", type=float, help="override the peak rate per second")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--node-nice",
        type=int,
        default=NODE_NICENESS_DEFAULT,
        choices=range(NICENESS_MAX + 1),
        metavar="0..19",
        help=f"own node: run it this much below the generator's priority (default"
        f" {NODE_NICENESS_DEFAULT})",
    )
    parser.set_defaults(run=run_command)


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """The handler of `coopnode loadtest`; returns the process's exit code."""
    del settings  # The harness drives a node; the node reads its own settings.
    try:
        scenario = load_scenario(args.scenario)
        if args.url is not None and args.token_file is None:
            raise ScenarioError("--url needs --token-file with an API token of the node")
        if args.url is not None and (args.fronts != 1 or args.shards is not None):
            raise ScenarioError("--fronts and --shards shape the harness's own node, not --url's")
        urls = parse_front_urls(args.url) if args.url is not None else []
    except (ScenarioError, FrontsError) as error:
        print(f"coopnode loadtest: {error}", file=sys.stderr)
        return 2
    command = shlex.join(["coopnode", *sys.argv[1:]]) if sys.argv[1:] else "coopnode loadtest"
    out_dir = args.out or Path("var") / "loadtest" / scenario.name
    node: NodeProcess | None = None
    cluster: LocalCluster[NodeProcess] | None = None
    data_dir: Path | None = None
    try:
        if args.url is None:
            data_dir = short_tmpdir("cnload")
            if args.fronts > 1:
                cluster = _own_cluster(data_dir, args)
                node, urls = cluster.fronts["a"], cluster.urls
            else:
                node = _own_node(data_dir, args).start()
                urls = [node.url]
            token = node.token
        else:
            token = args.token_file.read_text().strip()
        machine = _machine(node, len(urls))
        cpu = CpuShare(node.pid if node is not None and cluster is None else None)
        report = execute(scenario, urls, token, args, command, node is not None, machine)
        report = msgspec.structs.replace(
            report, machine=report.machine | {"cpu_during_runs": cpu.describe()}
        )
    except (HarnessError, OSError, RuntimeError) as error:
        print(f"coopnode loadtest: {error}", file=sys.stderr)
        return 1
    finally:
        if cluster is not None:
            cluster.stop()
        elif node is not None:
            node.stop()
        if data_dir is not None:
            remove_tree(data_dir)
    # matplotlib is imported only here, so that every other `coopnode` command starts fast.
    from coopnode.loadtest.report import write_report

    for path in write_report(report, out_dir):
        print(path)
    return 0 if report.books_balanced else 1


def _own_node(data_dir: Path, args: argparse.Namespace) -> NodeProcess:
    env = dict(OWN_NODE_ENV)
    if args.shards is not None:
        env["COOPNODE_WALLET__SHARD_COUNT"] = str(args.shards)
    config = getattr(args, "config", None)
    return NodeProcess(data_dir, config=config, env=env, niceness=args.node_nice)


def _own_cluster(root: Path, args: argparse.Namespace) -> LocalCluster[NodeProcess]:
    """A cluster of `--fronts` hosts on this machine (a head, a disk and front per host)."""
    config = getattr(args, "config", None)

    def front(data_dir: Path, **options: Any) -> NodeProcess:
        return NodeProcess(data_dir, config=config, niceness=args.node_nice, **options)

    cluster = LocalCluster(
        root, front, hosts=host_names(args.fronts), shard_count=args.shards, env=OWN_NODE_ENV
    )
    try:
        cluster.start()
        for started in cluster.fronts.values():
            wait_healthy(started)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def execute(
    scenario: Scenario, urls: list[str], token: str, args: argparse.Namespace, command: str,
    own_node: bool, machine: dict[str, str],
) -> HarnessReport:  # fmt: skip
    """Run the scenario (and the search) on the select() loop and build the report."""
    _, loop_factory = event_loop_factory("auto", scenario.tills.count + HTTP_CONNECTIONS)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(_execute(scenario, urls, token, args, command, own_node, machine))


async def _execute(
    scenario: Scenario, urls: list[str], token: str, args: argparse.Namespace, command: str,
    own_node: bool, machine: dict[str, str],
) -> HarnessReport:  # fmt: skip
    from coopnode.loadtest.report import HarnessReport

    seed = scenario.seed if args.seed is None else args.seed
    duration_s = args.duration or scenario.duration_s
    rate = args.rate or scenario.profile.peak_rate_per_s
    progress = not args.quiet
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    target = Target(urls, token, scenario, Naming(prefix=1000 + secrets.randbelow(9000)))
    # The tills' WebSockets live in this session, so it stays open until the runs end.
    async with target.session() as session:
        try:
            await prepare(target, session)
            run = None
            if not (args.search and args.no_run):
                ops = build_workload(scenario, rate, duration_s, seed)
                label = f"{scenario.name} {rate:.0f}/s"
                run = await play(target, ops, rate, duration_s, label, progress)
            capacity = await search(target, progress) if args.search else None
        finally:
            await close(target)
    # One audit at the end, through the first front: the shards' books are the cluster's.
    balanced = await books_balanced(target)
    shards = await shard_count(target)
    return HarnessReport(
        scenario=scenario.name,
        seed=seed,
        command=command,
        started_at=started_at,
        node_url=target.url,
        front_urls=target.urls,
        own_node=own_node,
        machine=machine | {"load_average_at_end": _load_average()},
        objective_kind=scenario.objective.kind,
        p99_objective_ms=scenario.objective.p99_ms,
        run=run,
        search=capacity,
        books_balanced=balanced,
        shards=shards,
        planning=_planning(scenario, run, capacity, len(target.urls), shards),
    )


def _planning(scenario: Scenario, run: RunFigures | None, capacity: CapacitySearch | None,
              fronts: int, shards: int) -> Plan:  # fmt: skip
    """The planning table from the best capacity figure this invocation measured."""
    planning = scenario.planning
    if scenario.objective.kind != "tap":
        reason = f"not measured: {scenario.name} is judged on {scenario.objective.kind}"
        return plan(unmeasured(reason), planning)
    if capacity is not None and capacity.max_rate_held_per_s > 0:
        source = f"capacity search of {scenario.name}, peak rate held"
        held = capacity.max_rate_held_per_s
        return plan(measured_capacity(held, fronts, shards, source, planning), planning)
    if run is not None and "tap" in run.by_kind:
        tap = run.by_kind["tap"]
        if tap.latency_p99_ms <= scenario.objective.p99_ms:
            source = f"a run of {scenario.name} that held its objective (a lower bound)"
            held = run.peak_rate_per_s
            return plan(measured_capacity(held, fronts, shards, source, planning), planning)
    return plan(unmeasured("no run held the objective"), planning)


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _machine(node: NodeProcess | None, fronts: int) -> dict[str, str]:
    """The machine and how the generator and the node shared it, for the report."""
    generator = f"in the coopnode loadtest process ({session_priority(os.getpid())})"
    if node is None:
        where = f"given by --url ({fronts} front(s))"
    elif fronts > 1:
        where = (
            f"a cluster of {fronts} hosts started by the harness on this machine, a front on"
            f" each (first front: {session_priority(node.pid)}); its hosts' and fronts' CPU"
            " counts as other work below"
        )
    else:
        where = f"started by the harness on this machine ({session_priority(node.pid)})"
    return {
        "cpus": str(os.cpu_count()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": _load_average(),
        "generator": generator,
        "node": where,
    }
