"""`coopnode admin move-shard INDEX --to DISK`: move a wallet shard to another host's disk.

The command joins the cluster as a Ray driver (`node.ray_address`), copies the shard's
files to the target disk while the node serves, then switches: the shard stops taking
batches and drains, the chunks that changed are copied, the copy is checked and put in
place, the old files are marked as moved, and the shard is created again on the target
disk under its name. How each step keeps every acknowledged operation is in
`coopnode/actors/wallet/move.py`.

The settings name each shard's disk (`cluster.wallet_shard_disks`); the command prints
the line to change on every host, which matters when the whole cluster starts afresh (a
running cluster finds the moved shard by name). Until it is changed, a start refuses the
files left on the old disk rather than serving them.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import msgspec

from coopnode.settings import Settings

# The first copy and the switch move the whole file through Ray in chunks; an hour is a
# broken move, not a large shard (a gigabyte takes well under a minute on a LAN).
MOVE_CALL_TIMEOUT_S = 3600.0
# A killed actor's name is free again within seconds; a minute means Ray is not well.
NAME_RELEASE_WAIT_S = 60.0
# A shard created on its new disk opens and checks its books; minutes mean a failure.
SHARD_START_WAIT_S = 300.0


class MoveError(Exception):
    """The move cannot be made; nothing was switched."""


def add_move_shard_command(admin: Any) -> None:
    move = admin.add_parser(
        "move-shard", help="move a wallet shard to another host's disk while serving"
    )
    move.add_argument("index", type=int, help="the shard's index")
    move.add_argument("--to", required=True, help="the disk to move it to (cluster.disks)")
    move.add_argument("--ray-address", help="the cluster (default: node.ray_address)")
    move.set_defaults(run=_run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.ray_address:
        node = msgspec.structs.replace(settings.node, ray_address=args.ray_address)
        settings = msgspec.structs.replace(settings, node=node)
    try:
        disks = move_shard(settings, args.index, args.to, print)
    except MoveError as error:
        print(f"coopnode: {error}")
        return 2
    print(f"done. Set on every host: [cluster] wallet_shard_disks = {disks}")
    return 0


def _check(settings: Settings, index: int, disk: str) -> None:
    cluster = settings.cluster
    if not cluster.placed or not settings.node.ray_address:
        raise MoveError("moving a shard needs a cluster: cluster.disks and node.ray_address")
    if not 0 <= index < settings.wallet.shard_count:
        raise MoveError(
            f"there is no shard {index} (wallet.shard_count is {settings.wallet.shard_count})"
        )
    if disk not in [known.name for known in cluster.disks]:
        raise MoveError(f"the disk {disk!r} is not in cluster.disks")


def move_shard(settings: Settings, index: int, disk: str, say: Any) -> list[str]:
    """Move shard `index` to `disk`; returns every shard's disk afterwards."""
    _check(settings, index, disk)
    # Ray is imported only here: the command's other checks run without it.
    import ray

    from coopnode.actors.kernel.placement import shard_home
    from coopnode.actors.kernel.ray_calls import RAY_NAMESPACE, settings_json
    from coopnode.actors.wallet.move import CopyInfo, ShardReceiver
    from coopnode.actors.wallet.shard import shard_name, shard_path
    from coopnode.node.cluster import create_shard, start_ray
    from coopnode.node.secrets_files import read_or_create_internal_secret
    from coopnode.node.service import link_token_path

    start_ray(settings)
    try:
        shard = ray.get_actor(shard_name(index), namespace=RAY_NAMESPACE)
        current = str(ray.get(shard.where.remote(), timeout=MOVE_CALL_TIMEOUT_S))
        disks = list(settings.cluster.wallet_shard_disks)
        disks[index] = disk
        if current == disk:
            say(f"shard {index} is on the disk {disk!r} already")
            return disks
        target = msgspec.structs.replace(
            settings, cluster=msgspec.structs.replace(settings.cluster, wallet_shard_disks=disks)
        )
        home = shard_home(target, index)
        receiver = (
            ray.remote(ShardReceiver)
            .options(
                name=f"{shard_name(index)}-receiver",
                namespace=RAY_NAMESPACE,
                max_restarts=0,
                num_cpus=0,
                resources=home.resources,
            )
            .remote(settings_json(home.settings), str(shard_path(home.settings, index)))
        )
        try:
            say(f"shard {index}: copying from {current!r} to {disk!r} while serving")
            sent = _copy(ray, shard, receiver, CopyInfo)
            say(f"shard {index}: {sent} chunks copied; switching")
            started = time.monotonic()
            ray.get(shard.fence.remote(), timeout=MOVE_CALL_TIMEOUT_S)
            sent = _copy(ray, shard, receiver, CopyInfo, install=True)
            ray.get(shard.retire.remote(disk), timeout=MOVE_CALL_TIMEOUT_S)
        finally:
            ray.kill(receiver, no_restart=True)
        ray.kill(shard, no_restart=True)
        _wait_name_free(ray, shard_name(index), RAY_NAMESPACE)
        link_token = read_or_create_internal_secret(link_token_path(settings))
        moved = create_shard(target, index, link_token)
        ray.get(moved.health.remote(), timeout=SHARD_START_WAIT_S)
        say(
            f"shard {index}: serving on {disk!r} after a switch of "
            f"{time.monotonic() - started:.1f} s ({sent} chunks in it)"
        )
        return disks
    finally:
        ray.shutdown()


def _copy(ray: Any, shard: Any, receiver: Any, info_type: Any, *, install: bool = False) -> int:
    """Copy the shard's files to the receiver, sending the chunks that differ."""
    info = msgspec.msgpack.decode(
        ray.get(shard.copy_out.remote(), timeout=MOVE_CALL_TIMEOUT_S), type=info_type
    )
    held = msgspec.msgpack.decode(
        ray.get(receiver.digests.remote(), timeout=MOVE_CALL_TIMEOUT_S), type=info_type
    )
    sent = 0
    for chunk, digest in enumerate(info.chunk_sha256):
        if chunk < len(held.chunk_sha256) and held.chunk_sha256[chunk] == digest:
            continue
        data = ray.get(shard.read_copy.remote(chunk), timeout=MOVE_CALL_TIMEOUT_S)
        ray.get(receiver.write.remote(chunk, data), timeout=MOVE_CALL_TIMEOUT_S)
        sent += 1
    if install:
        ray.get(receiver.install.remote(msgspec.msgpack.encode(info)), timeout=MOVE_CALL_TIMEOUT_S)
    return sent


def _wait_name_free(ray: Any, name: str, namespace: str) -> None:
    deadline = time.monotonic() + NAME_RELEASE_WAIT_S
    while True:
        try:
            ray.get_actor(name, namespace=namespace)
        except ValueError:
            return
        if time.monotonic() > deadline:
            raise MoveError(f"the actor {name} was killed but its name is still taken")
        time.sleep(0.1)
