"""A two-host Ray cluster on this machine with Ray's TLS on, and a front on it (issue 15 §4).

Started as an operator starts one: `coopnode cluster dev-ca` makes the certificates,
`coopnode cluster env` prints each host's `ray start` environment, `ray start --head` and
`ray start --address` run with their own temp directories and free ports, and the front
is `coopnode serve --ray-address` with `[cluster.tls]` naming its host's files. Then a
payment goes through (over a wallet link with mutual TLS, as the shard logs), and a
`ray start --address` whose certificate another CA signed does not join.

Addresses: Ray on Linux takes `--node-ip-address 127.0.0.1` for the machine's own
address (a cluster's nodes must reach each other; only its one-host mode keeps to
loopback, and that mode refuses `ray start --address`), so Ray's nodes here know each
other by that address, and the hosts' certificates name it besides 127.0.0.1. The
traffic stays on this machine; with TLS on, nothing without a certificate of the
cluster's CA gets past a handshake. Every process started here is stopped by its id.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coopnode.loadtest.ray_hosts import RAY_CLUSTER_SWITCH
from coopnode.node.cli import main
from tests.nodeproc import NodeProcess, remove_tree, short_tmpdir

# `ray start` of one node on a busy two-core machine takes seconds: patience, not a measure.
RAY_START_S = 120.0
# How long the refused host is given to show the refusal in its log (it retries for ever).
REFUSAL_PATIENCE_S = 90.0
RAY = str(Path(sys.executable).with_name("ray"))


def _node_address() -> str:
    """The address Ray gives a node started with `--node-ip-address 127.0.0.1` here, asked
    of a Python with the cluster switch on, as the nodes run (this process may hold it off:
    the benchmarks package keeps its local Ray on loopback, and Ray then answers 127.0.0.1)."""
    script = (
        "from ray._private.services import resolve_ip_for_localhost; "
        "print(resolve_ip_for_localhost('127.0.0.1'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **RAY_CLUSTER_SWITCH},
        capture_output=True,
        timeout=RAY_START_S,
        check=True,
    )
    return result.stdout.decode().split()[-1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _cluster_env(capsys: pytest.CaptureFixture[str], config: Path) -> dict[str, str]:
    """`coopnode --config FILE cluster env`, as an operator runs it on a host."""
    assert main(["--config", str(config), "cluster", "env"]) == 0
    lines = capsys.readouterr().out.splitlines()
    env: dict[str, str] = {}
    for line in lines:
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = value.strip("'")
    return env


def _host_config(root: Path, host: str, ca_dir: Path) -> Path:
    """A host's settings file naming its own files."""
    config = root / f"{host}.toml"
    config.write_text(
        "[cluster.tls]\n"
        f'ca_file = "{ca_dir / host / "ca.pem"}"\n'
        f'cert_file = "{ca_dir / host / "cert.pem"}"\n'
        f'key_file = "{ca_dir / host / "key.pem"}"\n'
    )
    return config


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text(errors="replace")
            parent = int(stat[stat.rfind(")") + 2 :].split()[1])
            tree.setdefault(parent, []).append(int(entry))
    return tree


def _processes_of(marker: str) -> set[int]:
    """Processes whose command line holds `marker` (a node's temp dir), and their children
    (the workers, which retitle themselves `ray::…`)."""
    roots = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            with contextlib.suppress(OSError):
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    roots.append(int(entry))
    tree, found = _children(), set[int]()
    while roots:
        pid = roots.pop()
        if pid not in found:
            found.add(pid)
            roots.extend(tree.get(pid, []))
    return found


class RayNode:
    """`ray start` of one host: its temp dir, free ports, and its host's environment."""

    def __init__(self, name: str, root: Path, env: dict[str, str], head: str = "") -> None:
        self.name = name
        self.temp_dir = root / name
        # Ray's cluster switch on: the suite's process may hold it off (the benchmarks
        # package keeps its local Ray on loopback), and `ray start --address` then refuses.
        self.env = {**os.environ, **env, **RAY_CLUSTER_SWITCH}
        self.head = head
        self.port = 0 if head else _free_port()
        self.log_path = root / f"{name}.ray-start.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return self.head or f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        command = [RAY, "start", "--node-ip-address", "127.0.0.1", "--temp-dir"]
        command += [str(self.temp_dir), "--num-cpus", "1", "--disable-usage-stats"]
        for flag in (
            "--node-manager-port",
            "--object-manager-port",
            "--dashboard-agent-listen-port",
            "--dashboard-agent-grpc-port",
            "--runtime-env-agent-port",
            "--metrics-export-port",
        ):
            command += [flag, str(_free_port())]
        command += ["--min-worker-port", "0", "--max-worker-port", "0"]
        if self.head:
            return [*command, "--address", self.head]
        return [*command, "--head", "--port", str(self.port), "--include-dashboard", "false"]

    def launch(self) -> RayNode:
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                env=self.env,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    def start(self) -> RayNode:
        """Launch and wait for `ray start` to finish; it leaves the node running."""
        self.launch()
        assert self.process is not None
        try:
            code = self.process.wait(timeout=RAY_START_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"ray start of {self.name} hangs:\n{self.log_tail()}") from None
        if code != 0:
            raise AssertionError(f"ray start of {self.name} failed:\n{self.log_tail()}")
        return self

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        """SIGKILL `ray start` and every process of this node, each by its id, until none
        is left: a raylet may start a worker between one look and the kill."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait(timeout=RAY_START_S)
        deadline = time.monotonic() + RAY_START_S
        while pids := _alive(_processes_of(f"{self.temp_dir}{os.sep}")):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise AssertionError(f"processes of {self.name} outlived SIGKILL: {pids}")
            time.sleep(0.1)


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text(errors="replace")
            if stat[stat.rfind(")") + 2 :].split()[0] != "Z":
                alive.add(pid)
    return alive


class Front(NodeProcess):
    """`coopnode serve --ray-address ADDRESS` on a host of the cluster."""

    def __init__(self, data_dir: Path, ray_address: str, **options: Any) -> None:
        super().__init__(data_dir, **options)
        self.ray_address = ray_address

    def _command(self, subcommand: str) -> list[str]:
        return [*super()._command(subcommand), "--ray-address", self.ray_address]


def _alive_nodes(address: str, env: dict[str, str]) -> int:
    """How many nodes the cluster's GCS counts alive, asked by a driver of host `a`."""
    script = (
        f"import ray; ray.init(address={address!r}, logging_level='ERROR'); "
        "print(sum(1 for node in ray.nodes() if node['Alive']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **env, **RAY_CLUSTER_SWITCH},
        capture_output=True,
        timeout=RAY_START_S,
        check=True,
    )
    return int(result.stdout.split()[-1])


@pytest.fixture
def root() -> Iterator[Path]:
    path = short_tmpdir("cnraytls")  # Ray's sockets live under it: a short path.
    try:
        yield path
    finally:
        remove_tree(path)


def test_a_cluster_with_ray_tls_serves_payments_and_refuses_hosts_without_a_valid_certificate(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address = _node_address()
    ca = root / "ca"
    assert main(["cluster", "dev-ca", str(ca), "--hosts", f"head={address},a={address}"]) == 0
    assert main(["cluster", "dev-ca", str(root / "other"), "--hosts", f"x={address}"]) == 0
    capsys.readouterr()
    token = root / "ray-token"  # Ray's token authentication, this cluster's own token.
    token.write_text(secrets.token_hex(32))
    ray_auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    head_env = {**_cluster_env(capsys, _host_config(root, "head", ca)), **ray_auth}
    a_env = {**_cluster_env(capsys, _host_config(root, "a", ca)), **ray_auth}
    with contextlib.ExitStack() as stack:
        # Each node's cleanup is set before it starts: a start that fails or hangs leaves
        # its GCS or raylet running otherwise.
        head = RayNode("head", root, head_env)
        stack.callback(head.stop)
        head.start()
        host_a = RayNode("a", root, a_env, head=head.address)
        stack.callback(host_a.stop)
        host_a.start()
        _front_pays(root, head.address, ray_auth, address)
        assert _gcs_refusals(head) == 0  # The cluster's own hosts and front pass.
        # A host whose certificate another CA signed, and a host with no TLS at all.
        intruders = {"x": {**_intruder_env(root), **ray_auth}, "plain": ray_auth}
        for name, env in intruders.items():
            refused_before = _gcs_refusals(head)
            intruder = RayNode(name, root, env, head=head.address).launch()
            stack.callback(intruder.stop)
            _wait_for_refusal(head, intruder, refused_before)
            intruder.stop()
            assert b"Ray runtime started" not in intruder.log_path.read_bytes()
        assert _alive_nodes(head.address, a_env) == 2


def _intruder_env(root: Path) -> dict[str, str]:
    """Ray's TLS for a host that trusts the cluster's CA but whose own certificate another
    CA signed (`coopnode cluster env` would refuse these files, so they are set by hand)."""
    return {
        "RAY_USE_TLS": "1",
        "RAY_TLS_CA_CERT": str(root / "ca" / "ca.pem"),
        "RAY_TLS_SERVER_CERT": str(root / "other" / "x" / "cert.pem"),
        "RAY_TLS_SERVER_KEY": str(root / "other" / "x" / "key.pem"),
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def _front_pays(root: Path, ray_address: str, ray_auth: dict[str, str], node: str) -> None:
    """A front on host `a` (its files in `[cluster.tls]`) takes a payment; the shards'
    links listen on their host's Ray address (`node`), as between hosts, and the front
    checks that the shard's certificate names it."""
    host_files = {"CA_FILE": "ca.pem", "CERT_FILE": "cert.pem", "KEY_FILE": "key.pem"}
    settings = {
        f"COOPNODE_CLUSTER__TLS__{name}": json.dumps(str(root / "ca" / "a" / file))
        for name, file in host_files.items()
    }
    settings["COOPNODE_WALLET__LINK_HOST"] = '"node"'
    front = Front(root / "a-data", ray_address, demo=True, env={**settings, **ray_auth})
    try:
        front.start()
        member = "202600000017"
        payment = {"key": "tls-1", "amount_yen": 430, "till_kind": "cafeteria", "store": "c"}
        status, paid = front.request("POST", f"/api/v1/wallets/{member}/payments", payment)
        assert status == 200, paid
        status, again = front.request("POST", f"/api/v1/wallets/{member}/payments", payment)
        assert (status, again) == (200, paid)  # Answered from the wallet's records.
        listening = _links_listening(front, shards=2)  # config/test.toml: two shards.
        for entry in listening:
            assert entry["tls"] is True and entry["address"].startswith(f"{node}:"), entry
    finally:
        assert front.stop() == 0, front.log_tail()


def _links_listening(front: Front, shards: int) -> list[dict[str, Any]]:
    """The shards' "wallet link listening" lines, which Ray forwards to the front's output
    (behind a prefix) when its log monitor next looks: waited for, with patience."""
    deadline = time.monotonic() + RAY_START_S
    while True:
        log = front.log_path.read_text(errors="replace")
        listening = [
            json.loads(line[line.index("{") :])
            for line in log.splitlines()
            if "wallet link listening" in line
        ]
        if len(listening) >= shards or time.monotonic() > deadline:
            assert len(listening) == shards, listening
            return listening
        time.sleep(0.2)


def _gcs_refusals(head: RayNode) -> int:
    """How many handshakes the head's GCS has refused so far."""
    gcs_log = head.temp_dir / "session_latest" / "logs" / "gcs_server.err"
    return gcs_log.read_bytes().count(b"Handshake failed")


def _wait_for_refusal(head: RayNode, intruder: RayNode, refused_before: int) -> None:
    """The intruder's `ray start` retries for ever: wait until the head's GCS has refused
    a handshake more and the intruder has given up a first connection (its log says so)."""
    deadline = time.monotonic() + REFUSAL_PATIENCE_S
    while not (
        _gcs_refusals(head) > refused_before
        and b"Failed to connect to GCS" in intruder.log_path.read_bytes()
    ):
        if time.monotonic() > deadline:
            raise AssertionError(f"no refused handshake in the logs:\n{intruder.log_tail()}")
        time.sleep(0.5)
