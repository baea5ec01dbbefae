"""A CoopNode cluster of several hosts on this machine, started as an operator would.

    redis-server            the head's cluster state (GCS fault tolerance)
    host "head"             `ray start --head`: Ray's GCS, nothing of the node's
    host "a", "b", …        `ray start --address … --resources '{"disk:a": 1}'`, its data
                            directory and its front (`coopnode serve --ray-address`); the
                            wallet shards are spread over the hosts' disks in turn, and the
                            registry, identity, payments and notifier stores live on "a"

Every host has its own Ray temp directory and data directory; the fronts share only the
secrets an operator gives every host (`secrets/`), and find the node's actors by name.
The suite's cluster tests (tests/cluster), the capacity harness (`coopnode loadtest
--fronts N`) and the fronts benchmark (benchmarks/fronts.py) start their clusters here.
"""

from __future__ import annotations

import contextlib
import json
import string
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from coopnode.loadtest.node_process import NodeProcess, remove_tree, short_tmpdir
from coopnode.loadtest.ray_hosts import (
    LOOPBACK,
    RAY_CLUSTER_SWITCH,
    RayHost,
    RedisServer,
    ray_auth_environment,
    write_ray_auth_token,
)

# Each host is a Ray node (raylet, agents, about 300 MiB) and a front (about 300 MiB) on
# the one machine: past eight, a run measures the machine's memory, not the fronts.
HOSTS_MAX = 8
# Ray restarts an actor whose host came back within seconds; two minutes is a failure.
PATIENCE_S = 120.0
# How often `wait_healthy` asks a front again while its shards come up.
HEALTH_POLL_S = 0.5

FrontT = TypeVar("FrontT", bound=NodeProcess)


class ClusterError(RuntimeError):
    """A cluster that cannot be laid out as asked, or a front that never became healthy."""


def host_names(count: int) -> tuple[str, ...]:
    """The hosts' names, "a", "b", …: one per front."""
    if not 1 <= count <= HOSTS_MAX:
        raise ClusterError(f"a cluster on one machine has 1 to {HOSTS_MAX} hosts, not {count}")
    return tuple(string.ascii_lowercase[:count])


def shard_disks(hosts: Sequence[str], shard_count: int) -> list[str]:
    """The disk of each wallet shard: the hosts' disks in turn, shard 0 on the first."""
    if shard_count < 1:
        raise ClusterError(f"a cluster needs at least one wallet shard, not {shard_count}")
    return [hosts[index % len(hosts)] for index in range(shard_count)]


def replica_disks(hosts: Sequence[str], shard_count: int, replica_count: int) -> list[list[str]]:
    """The disks of each shard's replicas (none for shards of one replica): `hosts` in
    turn from a different one for each shard, so that primaries spread."""
    if replica_count == 1:
        return []
    if replica_count > len(hosts):
        raise ClusterError(f"{replica_count} replicas need as many hosts, not {len(hosts)}")
    return [
        [hosts[(shard + replica) % len(hosts)] for replica in range(replica_count)]
        for shard in range(shard_count)
    ]


def toml_value(value: object) -> str:
    """A value in TOML syntax for a COOPNODE_ variable (JSON's strings and lists are TOML)."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        tables = [
            "{" + ", ".join(f"{key} = {json.dumps(item)}" for key, item in table.items()) + "}"
            for table in value
        ]
        return "[" + ", ".join(tables) + "]"
    return json.dumps(value)


class LocalCluster(Generic[FrontT]):
    """A head, `hosts` each with a disk and a front, and the Redis the head keeps state in.

    `front` builds each front's NodeProcess (the suite's lays its test settings over the
    defaults); `env` is laid over every front's environment, under the cluster's own
    settings; `shard_count` wallet shards are spread over the hosts' disks.

    With `replica_count` > 1 each shard is that many replicas, on the disks of
    `replica_hosts` (all hosts unless named) in turn, each on a host of its own; then
    `front_hosts` may leave the replicas' hosts without fronts (a test that kills them
    keeps its clients on a front that stays), and `stores_host` says where the registry,
    identity, payments and notifier live.
    """

    def __init__(
        self,
        root: Path,
        front: Callable[..., FrontT],
        *,
        hosts: Sequence[str] = ("a", "b"),
        shard_count: int | None = None,
        env: dict[str, str] | None = None,
        replica_count: int = 1,
        replica_hosts: Sequence[str] | None = None,
        front_hosts: Sequence[str] | None = None,
        stores_host: str | None = None,
    ) -> None:
        self.root = root
        self.host_names = tuple(hosts)
        self.shard_disks = shard_disks(self.host_names, shard_count or len(self.host_names))
        self.replica_count = replica_count
        self.replica_disks = replica_disks(
            tuple(replica_hosts or self.host_names), len(self.shard_disks), replica_count
        )
        self.stores_host = stores_host or self.host_names[0]
        self.extra_env = env or {}
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
            for name in self.host_names
        }
        self.fronts: dict[str, FrontT] = {
            name: front(
                self.data_dir(name),
                env=self.front_env(name),
                staff_token_file=self.secrets / "staff-token",
            )
            for name in (front_hosts or self.host_names)
        }

    def data_dir(self, host: str) -> Path:
        return self.root / f"{host}-data"

    def front_env(self, host: str) -> dict[str, str]:
        settings: dict[str, object] = {
            "NODE__RAY_ADDRESS": self.head.address,
            "NODE__RAY_TMP_DIR": str(self.hosts[host].temp_dir),
            "NODE__RAY_NODE_IP_ADDRESS": LOOPBACK,
            "NODE__STAFF_TOKEN_FILE": str(self.secrets / "staff-token"),
            "WALLET__SHARD_COUNT": len(self.shard_disks),
            "CLUSTER__DISKS": [
                {"name": name, "data_dir": str(self.data_dir(name))} for name in self.host_names
            ],
            "CLUSTER__WALLET_SHARD_DISKS": [] if self.replica_count > 1 else self.shard_disks,
            "CLUSTER__WALLET_REPLICA_DISKS": self.replica_disks,
            "REPLICATION__REPLICA_COUNT": self.replica_count,
            "CLUSTER__STORES_DISK": self.stores_host,
            "CLUSTER__LINK_TOKEN_FILE": str(self.secrets / "link-token"),
            "PAYMENTS__KONBINI_WEBHOOK_KEY_FILE": str(self.secrets / "konbini-webhook-key"),
            "VERIFICATION__PASSCODE_KEY_FILE": str(self.secrets / "passcode-key"),
            "IDENTITY__IDENTITY_KEY_FILE": str(self.secrets / "identity-key"),
        }
        return {
            **self.extra_env,
            **{f"COOPNODE_{key}": toml_value(value) for key, value in settings.items()},
            **ray_auth_environment(self.ray_token),
            **RAY_CLUSTER_SWITCH,
        }

    @property
    def urls(self) -> list[str]:
        """The fronts' URLs, host by host (known once the cluster has started)."""
        return [front.url for front in self.fronts.values()]

    def start(self) -> LocalCluster[FrontT]:
        write_ray_auth_token(self.ray_token)
        self.redis.start()
        self.head.start()
        for host in self.hosts.values():
            host.start()
        # The first front creates the node's actors; the others find them by name.
        for front in self.fronts.values():
            front.start()
        return self

    def kill_host(self, name: str) -> None:
        """Every process of host `name` with SIGKILL: its front and its Ray node."""
        if name in self.fronts:
            self.fronts[name].kill9()
        self.hosts[name].kill()

    def restart_host(self, name: str) -> None:
        """Start host `name` again, as an operator would after a crash: its Ray node
        (which Ray places its actors on again) and its front, if it has one."""
        self.hosts[name].start()
        if name in self.fronts:
            self.fronts[name].start()

    def stop(self) -> None:
        for front in self.fronts.values():
            with contextlib.suppress(Exception):
                front.stop()
        for host in [*self.hosts.values(), self.head]:
            with contextlib.suppress(Exception):
                host.kill()
        self.redis.stop()


@contextlib.contextmanager
def running_cluster(
    front: Callable[..., FrontT], prefix: str = "cncl", **options: Any
) -> Iterator[LocalCluster[FrontT]]:
    """A cluster started in a fresh short directory, stopped and removed afterwards."""
    root = short_tmpdir(prefix)
    cluster = LocalCluster(root, front, **options)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        remove_tree(root)


def wait_healthy(front: NodeProcess, patience_s: float = PATIENCE_S) -> dict[str, object]:
    """`/healthz` of `front` once every shard answers (patience, not a bet)."""
    deadline = time.monotonic() + patience_s
    while True:
        status, health = front.request("GET", "/healthz")
        if status == 200 and isinstance(health, dict):
            return health
        if time.monotonic() > deadline:
            raise ClusterError(f"the node did not become healthy: {health}")
        time.sleep(HEALTH_POLL_S)
