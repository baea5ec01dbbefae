"""Two fronts on one real Ray cluster on this machine (see `tests.fronts.cluster`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.fronts.cluster import Front, RayHead
from tests.nodeproc import remove_tree, short_tmpdir

# Whatever reaches the other front must arrive by push: the repair reload waits an hour.
FRONT_ENV = {"COOPNODE_TILL__REGISTRY_REFRESH_S": "3600.0"}


@dataclass
class Cluster:
    head: RayHead
    front_a: Front
    front_b: Front


def start_cluster() -> Iterator[Cluster]:
    """A Ray head and two fronts on it; everything stopped and removed afterwards."""
    root = short_tmpdir("cnfronts")
    head = RayHead(root / "ray")
    fronts: list[Front] = []
    try:
        head.start()
        front_a = Front(root / "a", head, env=FRONT_ENV)
        fronts.append(front_a)
        front_a.start()
        front_b = Front(root / "b", head, env=FRONT_ENV).share_secrets_of(front_a)
        fronts.append(front_b)
        front_b.start()
        yield Cluster(head, front_a, front_b)
    finally:
        for front in fronts:
            front.stop()
        head.stop()
        remove_tree(root)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    yield from start_cluster()
