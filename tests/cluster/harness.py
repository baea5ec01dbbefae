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
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from coopnode.loadtest.cluster import PATIENCE_S, LocalCluster, wait_healthy
from tests.nodeproc import REPO, TEST_CONFIG, NodeProcess, remove_tree, short_tmpdir

__all__ = ["HOSTS", "PATIENCE_S", "Cluster", "running_cluster", "wait_healthy"]

HOSTS = ("a", "b")
# An admin command joins the cluster and may copy a shard: minutes mean a failure.
ADMIN_TIMEOUT_S = 600.0


class Cluster(LocalCluster[NodeProcess]):
    """Hosts a and b, a front and a wallet shard each, every front on config/test.toml."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, NodeProcess, hosts=HOSTS, shard_count=len(HOSTS))

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
