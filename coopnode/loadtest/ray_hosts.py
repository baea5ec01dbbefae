"""A Ray cluster of several "hosts" on one machine, started with Ray's own commands.

Each host is one `ray start` node with its own temp directory (so its own raylet, object
store and workers), the custom resources that say what it holds (a disk by name, a
front), and, for a front, its own `coopnode serve --ray-address` process attached to it.
Killing a host kills every process of that node: its raylet and Ray's agents, found by
their temp directory on the command line, and every process below them (the workers,
among them the actors Ray placed there), with SIGKILL, as a host that loses power would.

The head may keep its cluster state in Redis (GCS fault tolerance, Debian's
`redis-server`): then a head that is killed and started again finds its actors and its
nodes where they were, and the other hosts wait for it instead of giving up.

Everything listens on 127.0.0.1 ports chosen free at start; the harness is for tests and
benchmarks on one machine, and the README shows the same commands for real hosts.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

LOOPBACK = "127.0.0.1"
# `ray start` of a node on a busy two-core machine takes seconds; a minute is a failure.
RAY_START_TIMEOUT_S = 120.0
# How long a killed host's processes may take to be gone from /proc.
KILL_WAIT_S = 30.0
# Ray's switch between its one-host mode and clusters other hosts join. A process that runs
# a local Ray of its own keeps it on loopback by setting it to 0 (coopnode.node.local_ray,
# and benchmarks/__init__.py for the whole benchmark package); inherited by `ray start
# --address`, it would refuse to join the head. The hosts of a cluster join on purpose, so
# they and their fronts run with Ray's own default on Linux, 1.
RAY_CLUSTER_SWITCH = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def ray_auth_environment(token_file: Path) -> dict[str, str]:
    """The environment that makes a Ray process require (and present) the cluster's token."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file)}


def write_ray_auth_token(path: Path) -> None:
    """A new cluster token for Ray, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(secrets.token_hex(32))


def ray_executable() -> str:
    """The `ray` command of the Python that runs this (the project's venv)."""
    beside = Path(sys.executable).parent / "ray"
    return str(beside) if beside.exists() else "ray"


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as file:
                stat = file.read().decode(errors="replace")
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after it.
        fields = stat[stat.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def processes_mentioning(text: str) -> set[int]:
    """The processes whose command line holds `text`, and every process below them."""
    tree = _children()
    roots = [
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit() and int(entry) != os.getpid() and text in _cmdline(int(entry))
    ]
    found: set[int] = set()
    while roots:
        pid = roots.pop()
        if pid not in found:
            found.add(pid)
            roots.extend(tree.get(pid, []))
    return found


def kill_all(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + KILL_WAIT_S
    while any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes outlived SIGKILL: {sorted(pids)}")
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """A process that has not exited (a zombie waiting for its parent has)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read().decode(errors="replace")
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


class RedisServer:
    """Debian's `redis-server` on a loopback port, for the head's cluster state."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self) -> Self:
        executable = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.root.mkdir(parents=True, exist_ok=True)
        log = (self.root / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                executable,
                "--bind",
                LOOPBACK,
                "--port",
                str(self.port),
                "--dir",
                str(self.root),
                # The state Ray keeps here is the cluster's; the file survives a restart.
                "--appendonly",
                "yes",
                "--save",
                "",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + RAY_START_TIMEOUT_S
        while True:
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: see {self.root / 'redis.log'}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class RayHost:
    """One Ray node of the cluster: `ray start` with its own temp dir and resources."""

    def __init__(
        self,
        name: str,
        root: Path,
        *,
        resources: dict[str, float],
        num_cpus: int = 0,
        gcs_port: int = 0,
        head_address: str = "",
        redis_address: str = "",
        auth_token_file: Path | None = None,
    ) -> None:
        self.name = name
        # Ray's cluster token (RAY_AUTH_MODE=token): only holders of the file may join.
        self.auth_token_file = auth_token_file
        # Ray's Unix sockets live under the temp dir, whose path may hold 107 bytes at most.
        self.temp_dir = root / name
        self.resources = resources
        self.num_cpus = num_cpus
        self.head = not head_address
        self.gcs_port = gcs_port or (free_port() if self.head else 0)
        self.head_address = head_address or f"{LOOPBACK}:{self.gcs_port}"
        self.redis_address = redis_address
        self.log_path = root / f"{name}.ray-start.log"

    @property
    def address(self) -> str:
        """The cluster's address (the head's GCS), which fronts and hosts join."""
        return self.head_address

    def environment(self) -> dict[str, str]:
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **RAY_CLUSTER_SWITCH}
        if self.auth_token_file is not None:
            env.update(ray_auth_environment(self.auth_token_file))
        if self.redis_address:
            # GCS fault tolerance: the head keeps the cluster's state in Redis.
            env["RAY_REDIS_ADDRESS"] = self.redis_address
            env["RAY_external_storage_namespace"] = "coopnode-test"
        return env

    def command(self) -> list[str]:
        command = [
            ray_executable(),
            "start",
            "--node-ip-address",
            LOOPBACK,
            "--temp-dir",
            str(self.temp_dir),
            "--num-cpus",
            str(self.num_cpus),
            "--resources",
            json.dumps(self.resources),
            "--disable-usage-stats",
            # Fixed default ports would clash between the nodes of one machine.
            "--node-manager-port",
            str(free_port()),
            "--object-manager-port",
            str(free_port()),
            "--dashboard-agent-listen-port",
            str(free_port()),
            "--dashboard-agent-grpc-port",
            str(free_port()),
            "--runtime-env-agent-port",
            str(free_port()),
            "--metrics-export-port",
            str(free_port()),
            "--min-worker-port",
            "0",
            "--max-worker-port",
            "0",
        ]
        if self.head:
            command += [
                "--head",
                "--port",
                str(self.gcs_port),
                "--include-dashboard",
                "false",
            ]
        else:
            command += ["--address", self.head_address]
        return command

    def start(self) -> Self:
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        if self.head and not self.processes():
            # A head that lost power left the address of its GCS behind; `ray start`
            # would take it for a head still running, because on this one machine the
            # other hosts' raylets name that address on their command lines.
            (self.temp_dir / "ray_current_cluster").unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            result = subprocess.run(
                self.command(),
                env=self.environment(),
                stdout=log,
                stderr=log,
                timeout=RAY_START_TIMEOUT_S,
                check=False,
            )
        if result.returncode != 0:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"ray start of host {self.name} failed:\n{tail}")
        return self

    def processes(self) -> set[int]:
        return processes_mentioning(f"{self.temp_dir}{os.sep}")

    def kill(self) -> None:
        """SIGKILL every process of this host, as a power cut would."""
        kill_all(self.processes())
