"""Where an actor that owns files runs: on the host that holds them.

On one host (no `cluster.disks`) every store lives under the front's data directory and
Ray may run its actor anywhere, which is that host. On a cluster each host that holds
stores declares its disk to Ray as a custom resource (`ray start --resources
'{"disk:a": 1}'`), and each owning actor asks for a sliver of its disk's resource, so Ray
places it on that host, and places it there again when it restarts the actor after a
crash: the actor finds its files where it left them. The actor's settings carry the
disk's data directory in `node.data_dir`, so its paths are the same as on one host.
"""

from __future__ import annotations

import msgspec

from coopnode.settings import Settings

DISK_RESOURCE_PREFIX = "disk:"
# A host declares one unit of its disk; each store placed on it takes this much, so that
# any number of stores (up to a thousand) share one disk without Ray counting them out.
STORE_SHARE_OF_DISK = 0.001


class Home(msgspec.Struct, frozen=True):
    """An owning actor's settings (its data directory that of its disk) and the Ray
    resources that place it on the disk's host."""

    settings: Settings
    resources: dict[str, float]


def disk_resource(name: str) -> str:
    """The Ray resource a host declares for its disk `name`."""
    return f"{DISK_RESOURCE_PREFIX}{name}"


def _home_on(settings: Settings, disk_name: str) -> Home:
    if not settings.cluster.placed:
        return Home(settings=settings, resources={})
    disk = settings.cluster.disk(disk_name)
    node = msgspec.structs.replace(settings.node, data_dir=disk.data_dir)
    return Home(
        settings=msgspec.structs.replace(settings, node=node),
        resources={disk_resource(disk.name): STORE_SHARE_OF_DISK},
    )


def shard_home(settings: Settings, index: int) -> Home:
    """Where wallet shard `index` runs and keeps its files."""
    disks = settings.cluster.wallet_shard_disks
    return _home_on(settings, disks[index] if disks else "")


def replica_homes(settings: Settings, index: int) -> list[Home]:
    """Where each replica of wallet shard `index` runs and keeps its files: on one host,
    side by side under the data directory; on a cluster, each on its own disk
    (`cluster.wallet_replica_disks[index]`), which the settings require to be on
    different hosts."""
    disks = settings.cluster.wallet_replica_disks
    if not disks:
        return [_home_on(settings, "") for _ in range(settings.replication.replica_count)]
    return [_home_on(settings, disk) for disk in disks[index]]


def stores_home(settings: Settings) -> Home:
    """Where the registry, identity, payments and notifier actors run and keep files."""
    return _home_on(settings, settings.cluster.stores_disk)
