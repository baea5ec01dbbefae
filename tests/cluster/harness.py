"""The suite's three-host cluster: the package's (coopnode/loadtest/cluster.py) with the
test settings laid over the defaults.

    redis-server            the head's cluster state (GCS fault tolerance)
    host "head"             `ray start --head`: Ray's GCS, nothing of the node's
    host "a"                its disk and data directory, front A; wallet shard 0 and the
                            registry, identity, payments and notifier stores
    host "b"                the same with disk "b": front B, wallet shard 1
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from coopnode.loadtest.cluster import LocalCluster, wait_healthy
from tests.nodeproc import NodeProcess, remove_tree, short_tmpdir

__all__ = ["HOSTS", "Cluster", "running_cluster", "wait_healthy"]

HOSTS = ("a", "b")


class Cluster(LocalCluster[NodeProcess]):
    """Hosts a and b, a front and a wallet shard each, every front on config/test.toml."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, NodeProcess, hosts=HOSTS, shard_count=len(HOSTS))


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    root = short_tmpdir("cncl")
    cluster = Cluster(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        remove_tree(root)
