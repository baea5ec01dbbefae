"""Ray: start a local cluster or join one, and create the wallet shards as named actors."""

from __future__ import annotations

import logging
import os
from typing import Any

import msgspec
import ray
from ray.util.placement_group import PlacementGroup, get_placement_group, placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from coopnode.actors.kernel.placement import replica_homes, shard_home, stores_home
from coopnode.actors.kernel.ray_calls import RAY_NAMESPACE, named_actor, settings_json
from coopnode.actors.registry.actor import REGISTRY_NAME, RegistryActor
from coopnode.actors.wallet.client import ReplicaSet
from coopnode.actors.wallet.messages import ReplicaRole
from coopnode.actors.wallet.replicas.actor import ReplicaShard, replica_name
from coopnode.actors.wallet.shard import WalletShard, shard_name
from coopnode.node.local_ray import LOOPBACK
from coopnode.settings import Settings


def start_ray(settings: Settings, resources: dict[str, float] | None = None) -> None:
    """Start a local Ray on loopback with its files under the data directory, or join a
    cluster.

    `resources` are custom resources of the local Ray's one host, such as the card readers
    plugged into it (`reader:<name>`); a joined cluster's hosts declare their own.
    """
    # Ray would otherwise try to report usage over the network, which this node must not.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if settings.node.ray_address:
        # On a host that runs several Ray nodes (a test cluster on one machine), the
        # front attaches to its own host's node: the one started with this temp dir.
        ray.init(
            address=settings.node.ray_address,
            namespace=RAY_NAMESPACE,
            logging_level=logging.WARNING,
            _temp_dir=settings.node.ray_tmp_dir or None,
            _node_ip_address=settings.node.ray_node_ip_address or None,
        )
        return
    temp_dir = settings.ray_tmp_path.resolve()
    temp_dir.mkdir(parents=True, exist_ok=True)
    # With `keep_local_ray_on_loopback` run before Ray was imported, Ray takes this
    # address as it is; without, it would put the machine's network address in its place.
    ray.init(
        num_cpus=settings.node.ray_num_cpus,
        include_dashboard=False,
        namespace=RAY_NAMESPACE,
        logging_level=logging.WARNING,
        resources=resources or {},
        _temp_dir=str(temp_dir),
        _node_ip_address=LOOPBACK,
    )
    node_ip: str = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
    if node_ip != LOOPBACK:
        ray.shutdown()
        raise RuntimeError(
            f"the local Ray took {node_ip}, not {LOOPBACK}: Ray was "
            "imported before keep_local_ray_on_loopback (coopnode.node.local_ray) ran"
        )


def create_shards(settings: Settings, link_token: str) -> list[Any]:
    """Create (or find, when joining a running cluster) every wallet shard actor. Shards
    wait on fsync more than they compute, and hold no CPU slot.

    `link_token` authenticates the front on each shard's data plane; it comes from a
    secret file in the data directory so that a joining front and restarted shards agree.
    A replicated shard (`replication.replica_count` > 1) is a `ReplicaSet` of its replicas.
    """
    if settings.replication.replica_count > 1:
        return [
            create_replicas(settings, index, link_token)
            for index in range(settings.wallet.shard_count)
        ]
    return [
        create_shard(settings, index, link_token) for index in range(settings.wallet.shard_count)
    ]


def create_replicas(settings: Settings, index: int, link_token: str) -> ReplicaSet:
    """Create (or find) every replica of wallet shard `index`, each on its own disk's
    host, and format the shard if none of its replicas holds anything yet (a new shard);
    a replica that lost its disk is not formatted, it recovers from its peers."""
    homes = replica_homes(settings, index)
    group = replica_group(settings, index, [home.resources for home in homes])
    replicas = [
        named_actor(
            ReplicaShard,
            replica_name(index, replica),
            settings,
            index,
            replica,
            settings_json(home.settings),
            link_token,
            resources=home.resources,
            scheduling_strategy=None
            if group is None
            else PlacementGroupSchedulingStrategy(
                placement_group=group, placement_group_bundle_index=replica
            ),
        )
        for replica, home in enumerate(homes)
    ]
    roles = [
        msgspec.msgpack.decode(raw, type=ReplicaRole)
        for raw in ray.get([actor.role.remote() for actor in replicas])
    ]
    if not any(role.formatted for role in roles):
        ray.get([actor.format.remote() for actor in replicas])
    return ReplicaSet(replicas, settings.replication.primary_lookup_s)


def create_shard(settings: Settings, index: int, link_token: str) -> Any:
    """Create (or find) wallet shard `index`, on its disk's host."""
    home = shard_home(settings, index)
    return named_actor(
        WalletShard,
        shard_name(index),
        settings,
        index,
        settings_json(home.settings),
        link_token,
        resources=home.resources,
    )


# How long a new shard's replicas may wait for hosts that satisfy their placement group.
PLACEMENT_READY_TIMEOUT_S = 120.0


def replica_group(
    settings: Settings, index: int, bundles: list[dict[str, float]]
) -> PlacementGroup | None:
    """On a cluster, the placement group that holds shard `index`'s replicas on different
    hosts (STRICT_SPREAD), each bundle asking for its replica's disk; created once (it
    outlives the front that made it), found by name by the others. None on one host,
    where every replica shares it."""
    if not settings.cluster.placed:
        return None
    name = f"wallet-shard-{index}-replicas"
    group: PlacementGroup
    try:
        group = get_placement_group(name)
    except ValueError:
        group = placement_group(bundles, strategy="STRICT_SPREAD", name=name, lifetime="detached")
    ray.get(group.ready(), timeout=PLACEMENT_READY_TIMEOUT_S)
    return group


def create_registry(settings: Settings) -> Any:
    """Create (or find, when joining a running cluster) the card and till registry actor;
    staff changes are rare and small, and it holds no CPU slot."""
    home = stores_home(settings)
    return named_actor(
        RegistryActor,
        REGISTRY_NAME,
        settings,
        settings_json(home.settings),
        resources=home.resources,
    )
