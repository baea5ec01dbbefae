"""Sign-ins per second at the production argon2id cost, the queueing at twice that rate,
and the node's peak memory: the figures a co-op needs for the first week of term.

Starts a node with the embedded defaults (argon2id INTERACTIVE: 2 passes over 64 MiB,
two hashing workers), enrols members and sets their passwords through the real password
flow (codes read from the development outbox), then offers my-page sign-ins
(`POST /api/v1/mypage/login`, one argon2id verification each) open loop:

1. a capacity search for the highest rate whose p99 stays under the objective;
2. twice that rate for a while: how long sign-ins queue, and how many are told "busy";
3. all along, the resident memory of the node's whole process tree (node, Ray, actors),
   sampled from /proc, and its peak.

Run: .venv/bin/python -m benchmarks.identity_signin [--seconds 8] [--objective-ms 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import msgspec

from coopnode.loadtest.node_process import NodeProcess, remove_tree, short_tmpdir
from coopnode.loadtest.openloop import RequestSpec, find_max_rate, run_open_loop
from coopnode.settings import IdentitySettings

REPO = Path(__file__).resolve().parent.parent
MEMBERS = 16
PASSWORD = "Bench-Kaede-2026!"  # noqa: S105  # A benchmark member's, on a throwaway node.
_CODE = re.compile(r"確認コード：([0-9]{6})")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


class MemorySampler(threading.Thread):
    """Samples the resident memory of a process and all its descendants."""

    def __init__(self, root_pid: int, interval_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self._root = root_pid
        self._interval_s = interval_s
        self._stop_event = threading.Event()
        self.peak_bytes = 0
        self.last_bytes = 0

    def _tree_rss_bytes(self) -> int:
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # The process ended between the listing and the read.
            parents[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(fields[21]) * _PAGE_BYTES
        tree = {self._root}
        grew = True
        while grew:
            added = {pid for pid, parent in parents.items() if parent in tree} - tree
            tree |= added
            grew = bool(added)
        return sum(rss.get(pid, 0) for pid in tree)

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.last_bytes = self._tree_rss_bytes()
            self.peak_bytes = max(self.peak_bytes, self.last_bytes)
            self._stop_event.wait(self._interval_s)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def _mail(index: int) -> str:
    return f"bench{index:04d}@student.demo-u.ac.jp"


def _enrolment(index: int) -> dict[str, Any]:
    return {
        "member_no": f"2026880{index:05d}",
        "name": "負荷 試験",
        "kana": "フカ シケン",
        "birth_date": "2006-04-01",
        "mail": _mail(index),
        "phone": f"080{index + 10_000_000:08d}",
        "coop": "demo",
        "share_units": 10,
        "emoney_yen": 1000,
    }


def _wait_code(node: NodeProcess, mail: str, after: int) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status, page = node.request("GET", f"/dev/outbox.json?to={mail}&after={after}")
        for message in page["messages"] if status == 200 else []:
            found = _CODE.search(message["body"])
            if found:
                return found.group(1)
        time.sleep(0.05)
    raise TimeoutError(f"no code for {mail}")


def prepare_members(node: NodeProcess, count: int) -> None:
    """Enrol members and set their passwords through the §2 flow."""
    for index in range(count):
        status, body = node.request("POST", "/api/v1/members", _enrolment(index))
        if status not in (200, 201):
            raise RuntimeError(f"enrolment refused: {body}")
        _, page = node.request("GET", "/dev/outbox.json?to=nobody@invalid.example")
        after = int(page["last_sequence"])
        status, flow = node.request("POST", "/api/v1/flows/password", {"mail": _mail(index)})
        if status != 200:
            raise RuntimeError(f"password flow refused: {flow}")
        code = _wait_code(node, _mail(index), after)
        node.request(
            "POST", "/api/v1/flows/password/verify", {"flow_id": flow["flow_id"], "code": code}
        )
        body = {"flow_id": flow["flow_id"], "password": PASSWORD, "password_confirm": PASSWORD}
        status, done = node.request("POST", "/api/v1/flows/password/set", body)
        if status != 200:
            raise RuntimeError(f"password not set: {done}")


def _factory(members: int) -> Any:
    bodies = [
        msgspec.json.encode({"mail": _mail(index), "password": PASSWORD})
        for index in range(members)
    ]
    headers = {"Content-Type": "application/json"}

    def factory(index: int) -> RequestSpec:
        return RequestSpec(
            method="POST",
            path="/api/v1/mypage/login",
            body=bodies[index % members],
            headers=headers,
        )

    return factory


def _check(status: int, body: bytes) -> str | None:
    return None if b'"flow_id"' in body else "no_flow"


async def _measure(url: str, seconds: float, objective_ms: float) -> dict[str, Any]:
    factory = _factory(MEMBERS)
    search = await find_max_rate(
        url,
        factory,
        start_rate=4.0,
        step_factor=1.5,
        p99_objective_ms=objective_ms,
        duration_s=seconds,
        max_rate=400.0,
        connections=256,
        check=_check,
        request_timeout_s=30.0,
        # Sign-ins take tens of milliseconds: a send a few milliseconds late measures the
        # same, so lateness counts from 20 ms, and a step with few requests may have some.
        schedule_lag_threshold_ms=20.0,
        late_fraction_max=0.05,
        pause_between_steps_s=2.0,
        on_step=lambda step: print("  " + step.format_line(), flush=True),
    )
    sustained = search.max_rate_held_per_s
    await asyncio.sleep(2.0)
    overload = await run_open_loop(
        url,
        factory,
        rate_per_s=max(2.0, 2 * sustained),
        duration_s=seconds,
        connections=512,
        check=_check,
        first_index=10_000_000,
        request_timeout_s=30.0,
        schedule_lag_threshold_ms=20.0,
    )
    return {"search": search.to_dict(), "overload": overload.to_dict()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.identity_signin")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per load step")
    parser.add_argument("--objective-ms", type=float, default=2000.0, help="p99 objective")
    args = parser.parse_args(argv)
    defaults = IdentitySettings()
    data_dir = short_tmpdir("cnbid")
    # The test config lowers argon2id; the benchmark measures the production default.
    env = {
        "COOPNODE_IDENTITY__ARGON2_OPSLIMIT": str(defaults.argon2_opslimit),
        "COOPNODE_IDENTITY__ARGON2_MEMLIMIT_KIB": str(defaults.argon2_memlimit_kib),
    }
    node = NodeProcess(data_dir, config=REPO / "config" / "test.toml", env=env, cwd=REPO)
    node.start()
    sampler = MemorySampler(node.pid)
    sampler.start()
    try:
        idle_bytes = sampler._tree_rss_bytes()
        prepare_members(node, MEMBERS)
        figures = asyncio.run(_measure(node.url, args.seconds, args.objective_ms))
    finally:
        sampler.stop()
        node.stop()
        remove_tree(data_dir)
    search, overload = figures["search"], figures["overload"]
    cost = f"opslimit {defaults.argon2_opslimit}, {defaults.argon2_memlimit_kib // 1024} MiB"
    summary = {
        "argon2id": cost,
        "hash_workers": defaults.password_hash_workers,
        "sustained_signins_per_s": search["max_rate_held_per_s"],
        "p99_objective_ms": args.objective_ms,
        "overload_offered_per_s": overload["offered_rate_per_s"],
        "overload_achieved_per_s": overload["achieved_rate_per_s"],
        "overload_queueing_p50_ms": overload["latency_p50_ms"],
        "overload_queueing_p99_ms": overload["latency_p99_ms"],
        "overload_queueing_max_ms": overload["latency_max_ms"],
        "overload_errors_by_reason": overload["errors_by_reason"],
        "node_tree_rss_idle_mib": round(idle_bytes / 2**20),
        "node_tree_rss_peak_mib": round(sampler.peak_bytes / 2**20),
    }
    print(
        f"identity sign-in: sustained {summary['sustained_signins_per_s']:.1f}/s at argon2id "
        f"{summary['argon2id']} ({defaults.password_hash_workers} workers, p99 < "
        f"{args.objective_ms:g} ms); at 2x ({overload['offered_rate_per_s']:.1f}/s offered) "
        f"achieved {overload['achieved_rate_per_s']:.1f}/s, queueing p50 "
        f"{overload['latency_p50_ms']:.0f} ms p99 {overload['latency_p99_ms']:.0f} ms, errors "
        f"{overload['errors_by_reason']}; node tree RSS idle {summary['node_tree_rss_idle_mib']} "
        f"MiB, peak {summary['node_tree_rss_peak_mib']} MiB",
        flush=True,
    )
    print(msgspec.json.encode(summary).decode(), flush=True)
    return summary


if __name__ == "__main__":
    main()
