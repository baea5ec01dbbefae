"""A three-host CoopNode cluster on this machine, started as an operator would.

    redis-server            the head's cluster state (GCS fault tolerance)
    host "head"             `ray start --head`: Ray's GCS, nothing of the node's
    host "a"                `ray start --address … --resources '{"disk:a": 1}'`, its data
                            directory, front A (`coopnode serve --ray-address`); wallet
                            shard 0 and the registry, identity, payments, notifier stores
    host "b"                the same with disk "b": front B, wallet shard 1

Every host has its own Ray temp directory and data directory; the fronts share only the
secrets an operator gives every host (`secrets/`), and find the node's actors by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from coopnode.loadtest.ray_hosts import (
    LOOPBACK,
    RayHost,
    RedisServer,
    ray_auth_environment,
    write_ray_auth_token,
)
from tests.nodeproc import REPO, TEST_CONFIG, NodeProcess, remove_tree, short_tmpdir

HOSTS = ("a", "b")
# Ray restarts an actor whose host came back within seconds; a minute is a failure.
PATIENCE_S = 120.0
# An admin command joins the cluster and may copy a shard: minutes mean a failure.
ADMIN_TIMEOUT_S = 600.0


def _toml(value: object) -> str:
    """A value in TOML syntax for a COOPNODE_ variable (JSON's strings and lists are TOML)."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        tables = [
            "{" + ", ".join(f"{key} = {json.dumps(item)}" for key, item in table.items()) + "}"
            for table in value
        ]
        return "[" + ", ".join(tables) + "]"
    return json.dumps(value)


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.secrets = root / "secrets"
        self.ray_token = self.secrets / "ray-token"
        self.redis = RedisServer(root / "redis")
        self.head = RayHost(
            "head",
            root,
            resources={},
            redis_address=self.redis.address,
            auth_token_file=self.ray_token,
        )
        self.hosts = {
            name: RayHost(
                name,
                root,
                resources={f"disk:{name}": 1},
                head_address=self.head.address,
                auth_token_file=self.ray_token,
            )
            for name in HOSTS
        }
        self.fronts = {
            name: NodeProcess(
                self.data_dir(name),
                env=self.front_env(name),
                staff_token_file=self.secrets / "staff-token",
            )
            for name in HOSTS
        }

    def data_dir(self, host: str) -> Path:
        return self.root / f"{host}-data"

    def front_env(self, host: str) -> dict[str, str]:
        settings: dict[str, object] = {
            "NODE__RAY_ADDRESS": self.head.address,
            "NODE__RAY_TMP_DIR": str(self.hosts[host].temp_dir),
            "NODE__RAY_NODE_IP_ADDRESS": LOOPBACK,
            "NODE__STAFF_TOKEN_FILE": str(self.secrets / "staff-token"),
            "CLUSTER__DISKS": [
                {"name": name, "data_dir": str(self.data_dir(name))} for name in HOSTS
            ],
            "CLUSTER__WALLET_SHARD_DISKS": list(HOSTS),
            "CLUSTER__STORES_DISK": "a",
            "CLUSTER__LINK_TOKEN_FILE": str(self.secrets / "link-token"),
            "PAYMENTS__KONBINI_WEBHOOK_KEY_FILE": str(self.secrets / "konbini-webhook-key"),
            "VERIFICATION__PASSCODE_KEY_FILE": str(self.secrets / "passcode-key"),
            "IDENTITY__IDENTITY_KEY_FILE": str(self.secrets / "identity-key"),
        }
        return {
            **{f"COOPNODE_{key}": _toml(value) for key, value in settings.items()},
            **ray_auth_environment(self.ray_token),
        }

    def start(self) -> Cluster:
        write_ray_auth_token(self.ray_token)
        self.redis.start()
        self.head.start()
        for host in self.hosts.values():
            host.start()
        for front in self.fronts.values():
            front.start()
        return self

    def admin(self, *args: str, host: str = "a") -> str:
        """`coopnode admin ARGS` on `host`, as an operator runs it there; its output."""
        command = [sys.executable, "-m", "coopnode.node.cli", "--config", str(TEST_CONFIG)]
        result = subprocess.run(
            [*command, "admin", *args],
            cwd=REPO,
            env={**os.environ, **self.front_env(host)},
            capture_output=True,
            timeout=ADMIN_TIMEOUT_S,
            check=False,
        )
        output = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
        assert result.returncode == 0, output
        return output

    def kill_host(self, name: str) -> None:
        """Every process of host `name` with SIGKILL: its front and its Ray node."""
        self.fronts[name].kill9()
        self.hosts[name].kill()

    def stop(self) -> None:
        for front in self.fronts.values():
            with contextlib.suppress(Exception):
                front.stop()
        for host in [*self.hosts.values(), self.head]:
            with contextlib.suppress(Exception):
                host.kill()
        self.redis.stop()


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    root = short_tmpdir("cncl")
    cluster = Cluster(root)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        remove_tree(root)


def wait_healthy(front: NodeProcess) -> dict[str, object]:
    """`/healthz` of `front` once every shard answers (patience, not a bet)."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        status, health = front.request("GET", "/healthz")
        if status == 200:
            assert isinstance(health, dict)
            return health
        if time.monotonic() > deadline:
            raise AssertionError(f"the node did not become healthy: {health}")
        time.sleep(0.5)
