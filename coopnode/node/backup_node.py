"""Backups in the node process: the one backup actor of the cluster, found or created.

The node names the stores' owners for the backup actor (`BackupPlan`), since the backup
room imports no other room: the payments, identity and registry actors first (their
records say what the wallet did), the wallet's shards last.
"""

from __future__ import annotations

from coopnode.actors.backup.client import BackupClient
from coopnode.actors.backup.coordinator import create_backup_actor
from coopnode.actors.backup.messages import BackupPlan
from coopnode.actors.identity.actor import IDENTITY_ACTOR_NAME
from coopnode.actors.payments.actor import PAYMENTS_ACTOR_NAME
from coopnode.actors.registry.actor import REGISTRY_NAME
from coopnode.actors.wallet.shard import shard_name
from coopnode.settings import Settings


def backup_plan(settings: Settings) -> BackupPlan:
    return BackupPlan(
        first=[PAYMENTS_ACTOR_NAME, IDENTITY_ACTOR_NAME, REGISTRY_NAME],
        then=[shard_name(index) for index in range(settings.wallet.shard_count)],
    )


async def start_backups(settings: Settings, ready_timeout_s: float) -> BackupClient:
    """The backup actor (and with it the schedule, when the settings set one); none when
    backups are off."""
    if not settings.backup.dir:
        return BackupClient(None)
    client = BackupClient(create_backup_actor(settings, backup_plan(settings)))
    await client.wait_ready(ready_timeout_s)
    return client
