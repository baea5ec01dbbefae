"""Who used the machine's CPU during a harness run: the harness, its node, everything else.

A capacity figure from a shared machine means little without the load beside it. Linux
counts every CPU's busy time since boot in /proc/stat and each process's in
/proc/PID/stat; the difference over a run between the machine's busy time and that of the
harness and of its node's session is what other work took. Processes of the node that
exit during the run take their time with them, so "other work" is an upper bound.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PROC = Path("/proc")
# /proc/stat's first line: user nice system idle iowait irq softirq steal (in clock ticks).
_IDLE_FIELDS = (3, 4)
_BUSY_FIELDS_END = 8
# In /proc/PID/stat after the ")" closing the command: state is field 0, session field 3,
# user time field 11 and system time field 12.
_SESSION_FIELD, _UTIME_FIELD, _STIME_FIELD = 3, 11, 12


def _ticks_per_s() -> float:
    return float(os.sysconf("SC_CLK_TCK"))


def machine_busy_s() -> float:
    """CPU-seconds every core of the machine has spent busy since boot."""
    values = [int(value) for value in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(values[:_BUSY_FIELDS_END]) - sum(values[index] for index in _IDLE_FIELDS)
    return busy / _ticks_per_s()


def session_cpu_s(session: int) -> float:
    """CPU-seconds used so far by the live processes of one session (the node and Ray)."""
    ticks = 0
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # The process ended while the directory was read.
        if int(fields[_SESSION_FIELD]) == session:
            ticks += int(fields[_UTIME_FIELD]) + int(fields[_STIME_FIELD])
    return ticks / _ticks_per_s()


def own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


class CpuShare:
    """Started when the node is up, read when the runs are done."""

    def __init__(self, node_session: int | None) -> None:
        self._node_session = node_session
        self._start_s = time.monotonic()
        self._machine_s = machine_busy_s()
        self._own_s = own_cpu_s()
        self._node_s = self._node_cpu_s()

    def _node_cpu_s(self) -> float:
        return 0.0 if self._node_session is None else session_cpu_s(self._node_session)

    def cores(self) -> dict[str, float]:
        """Average cores busy since the start: all, the harness, its node, other work."""
        elapsed_s = max(time.monotonic() - self._start_s, 1e-9)
        machine = (machine_busy_s() - self._machine_s) / elapsed_s
        harness = (own_cpu_s() - self._own_s) / elapsed_s
        node = (self._node_cpu_s() - self._node_s) / elapsed_s
        return {
            "machine": machine,
            "harness": harness,
            "node": node,
            "other": max(machine - harness - node, 0.0),
        }

    def describe(self) -> str:
        cores = self.cores()
        return (
            f"{cores['machine']:.2f} of {os.cpu_count()} cores busy on average during the"
            f" runs: the harness (generator) {cores['harness']:.2f}, its node"
            f" {cores['node']:.2f}, other work {cores['other']:.2f}"
        )
