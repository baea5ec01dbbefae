"""What crosses the backup actor's boundary, and the manifest a backup holds."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec

from coopnode.actors.kernel.copies import StoreCopy
from coopnode.domain.bounds import EpochMs

# The manifest's own format; a restore refuses one it does not know.
MANIFEST_FORMAT = 1
# A backup's path as staff give it: a name under `backup.dir`, or an absolute path there.
BackupPath = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
BackupId = Annotated[str, msgspec.Meta(pattern="^[0-9]{8}T[0-9]{9}Z-[0-9a-f]{6}$")]


class BackupKind(StrEnum):
    STAFF = "staff"
    SCHEDULED = "scheduled"


class BackupState(StrEnum):
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


class BackupManifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A complete backup: written last, so a directory without one is unfinished."""

    format: int
    backup_id: BackupId
    kind: BackupKind
    # When the backup started: everything acknowledged before it is in every copy.
    started_at: str  # RFC 3339, UTC, for people
    started_at_ms: EpochMs
    finished_at_ms: EpochMs
    node_version: str
    shard_count: Annotated[int, msgspec.Meta(ge=1, le=64)]
    # Every store, those that record what another did first, the wallet's shards last.
    stores: list[StoreCopy]


class StartBackup(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Staff ask for a backup into `dir`: a name (or a path) under `backup.dir`."""

    dir: BackupPath


class BackupStatus(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Where a backup stands; with its manifest once complete."""

    backup_id: BackupId
    kind: BackupKind
    dir: str
    state: BackupState
    started_at_ms: EpochMs
    finished_at_ms: EpochMs = 0
    # Why a failed backup failed.
    message: str = ""
    manifest: BackupManifest | None = None


class RefusalReason(StrEnum):
    BACKUPS_OFF = "backups_off"
    BACKUP_RUNNING = "backup_running"
    TARGET_REFUSED = "backup_target_refused"
    UNKNOWN_BACKUP = "unknown_backup"


class BackupRefused(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    reason: RefusalReason
    message: str


class BackupAnswer(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The backup actor's answer: a backup's status, or why it refused."""

    status: BackupStatus | None = None
    refused: BackupRefused | None = None


class BackupPlan(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The store owners' actor names, in the order their copies are made.

    `first` are stores that record what another store did (a charge credited, a member
    enrolled), `then` the wallet's shards. Copied in this order, a record that says
    "credited" is never in a backup without the credit it names; the other way round
    (a credit whose record says "paid, not credited yet") heals itself after a restore,
    since the credit is asked again under its idempotency key and answered from the
    wallet's records."""

    first: list[str]
    then: list[str]
