"""A real Ray cluster on this machine, started as an operator starts one, and fronts on it.

`RayHead` runs `ray start --head --block` in a session of its own: its own temporary
directory (short, since Ray's Unix sockets must fit 107 bytes), free ports for every
server Ray opens, bound to 127.0.0.1 (`--node-ip-address`), a fixed CPU count and a
small object store. Stopping it ends `ray start` (which stops what it started) and then
every process still running from that temporary directory (workers and actors), each by
its id: nothing of the cluster outlives the fixture, and nothing of anybody else's Ray is
touched (`ray stop` would stop every Ray of the user on the machine).

The cluster runs with Ray's token authentication, its token in a file of its own (never
the user's `~/.ray`), which every front is given as Ray asks (`RAY_AUTH_MODE=token`,
`RAY_AUTH_TOKEN_PATH`).

`Front` is `coopnode serve --ray-address ADDRESS` on a data directory of its own, as a
front on another host would be; the cluster's secrets (the staff token, the shards' link
token, the identity keys, the store network's webhook key) are copied from the first
front's directory before a second starts, as an operator puts them on every host.
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
from typing import Any

from tests.nodeproc import NodeProcess

# Ray's head starts within seconds; this is patience, not a measure.
HEAD_START_S = 120.0
# How long `ray start --block` gets to stop what it started before it is killed.
HEAD_STOP_S = 30.0
# The ports one Ray head opens, besides its workers' range.
_HEAD_PORT_FLAGS = (
    "--port",
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
)
# Workers (one per actor) each listen on a port of this many, taken together.
_WORKER_PORTS = 64


def cluster_env(token_path: Path) -> dict[str, str]:
    """What every process of the cluster runs with: Ray's token authentication with the
    cluster's own token (Ray refuses a driver without it), and Ray's one-host mode."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_path), **ONE_HOST_ENV}


def write_token(path: Path) -> Path:
    """A fresh token for one cluster (256 bits, as `ray get-auth-token --generate` makes)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(secrets.token_hex(32))
    return path


# Ray on Linux takes `--node-ip-address 127.0.0.1` (and a driver's 127.0.0.1 address) for
# the machine's network address, and listens there; its one-host switch keeps the head's
# servers and every driver on loopback (`coopnode.node.local_ray` says more). Hosts of a
# real cluster have addresses of their own and run without it.
ONE_HOST_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
# Files of a front's data directory that every front of a cluster must share.
CLUSTER_SECRETS = (
    "staff-token",
    # The harness's machine token, made by the first front's bootstrap (`NodeProcess`).
    "api-token",
    "passcode-key",
    "identity-key",
    "konbini-webhook-key",
    "wallet/link-token",
)


def free_ports(count: int) -> list[int]:
    """`count` ports free on loopback now (held open together, so all differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port_range(length: int) -> int:
    """The first of `length` consecutive ports that are free on loopback now."""
    for start in range(42_000, 60_000, length):
        with contextlib.ExitStack() as held:
            try:
                for port in range(start, start + length):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return start
    raise RuntimeError("no free range of ports for Ray's workers")


def _processes_of(temp_dir: Path, token_path: Path) -> list[int]:
    """Every process of one cluster: its command line names the cluster's temporary
    directory (Ray's servers and workers), or its environment the cluster's token file
    (inherited by all of them from `ray start`, also by those that retitle themselves
    `ray::…`, whose command line then names nothing)."""
    in_command = str(temp_dir).encode()
    in_environment = f"RAY_AUTH_TOKEN_PATH={token_path}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            environment = (entry / "environ").read_bytes() + b"\0"
        except OSError:
            continue
        if in_command in command or in_environment in environment:
            found.append(int(entry.name))
    return found


class RayHead:
    """`ray start --head` on loopback with its own temporary directory and ports."""

    def __init__(
        self, temp_dir: Path, num_cpus: int = 1, resources: dict[str, float] | None = None
    ) -> None:
        self.temp_dir = temp_dir
        self.num_cpus = num_cpus
        # What the head declares it holds besides CPUs (a kiosk's reader: `reader:<name>`).
        self.resources = resources or {}
        self.address = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = temp_dir.parent / f"{temp_dir.name}-ray-start.log"
        self.token_path = temp_dir.parent / f"{temp_dir.name}-auth-token"
        self.env: dict[str, str] = {}

    def start(self) -> RayHead:
        ports = free_ports(len(_HEAD_PORT_FLAGS))
        worker_low = free_port_range(_WORKER_PORTS)
        ray = Path(sys.executable).with_name("ray")
        command = [
            str(ray),
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--temp-dir={self.temp_dir}",
            f"--num-cpus={self.num_cpus}",
            "--object-store-memory=100000000",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--resources={json.dumps(self.resources)}",
            f"--min-worker-port={worker_low}",
            f"--max-worker-port={worker_low + _WORKER_PORTS - 1}",
            *(f"{flag}={port}" for flag, port in zip(_HEAD_PORT_FLAGS, ports, strict=True)),
        ]
        self.env = cluster_env(write_token(self.token_path))
        env = {**os.environ, **self.env, "RAY_USAGE_STATS_ENABLED": "0"}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=log, env=env, start_new_session=True
            )
        self.address = f"127.0.0.1:{ports[0]}"
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """The head is up once `ray start` says so in its output."""
        deadline = time.monotonic() + HEAD_START_S
        while b"Ray runtime started" not in self.log_path.read_bytes():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"ray start exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Ray head did not start:\n{self.log_tail()}")
            time.sleep(0.2)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def pids(self) -> list[int]:
        """The cluster's processes still running."""
        return _processes_of(self.temp_dir, self.token_path)

    def stop(self) -> None:
        """Stop `ray start` and everything it started; kill what is left, by its id."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=HEAD_STOP_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=HEAD_STOP_S)
        deadline = time.monotonic() + HEAD_STOP_S
        while pids := self.pids():
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise RuntimeError(f"Ray processes {pids} outlived the cluster")
            time.sleep(0.1)


class Front(NodeProcess):
    """`coopnode serve --ray-address ADDRESS`: one front of the cluster."""

    def __init__(
        self, data_dir: Path, head: RayHead, env: dict[str, str] | None = None, **options: Any
    ) -> None:
        super().__init__(data_dir, env={**head.env, **(env or {})}, **options)
        self.ray_address = head.address

    def _command(self, subcommand: str) -> list[str]:
        return [*super()._command(subcommand), "--ray-address", self.ray_address]

    def share_secrets_of(self, first: Front) -> Front:
        """Put the cluster's secrets, as the first front made them, in this front's files."""
        for name in CLUSTER_SECRETS:
            source = first.data_dir / name
            target = self.data_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        return self
