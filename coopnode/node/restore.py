"""`coopnode admin restore BACKUP DATA_DIR`: a new data directory from a backup.

Nothing is written until the whole backup has been checked: the manifest reads, names
every store this node keeps (each wallet shard, the registry, identity, payments) in the
layout this version reads, and every file it names is there with its size and SHA-256.
A damaged backup is refused with a sentence naming the file, and so is a DATA_DIR that
exists and is not empty. The files are then copied into `DATA_DIR/.restore-partial/`,
hashed again as they are copied, flushed, and moved into place, where `coopnode serve`
looks for each store (`wallet/shard-NNN/`, `registry/`, `identity/`, `payments/`, and
`wallet/layout.json` with the backup's shard count). A node refuses to start on a data
directory that still holds `.restore-partial` (a restore cut off half way).

Secrets: the backup holds the identity and passcode keys when they live in the data
directory, since the identity store's sealed records (TOTP secrets) do not open without
them. It holds no credential of anyone who reaches the node: the staff token, the store
network's webhook key and the shards' link token are made anew at first start in
development (and must be provided in production, as at any first start).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import msgspec

from coopnode.actors.backup.manifest import BackupDamaged, check_backup, flush_tree
from coopnode.actors.backup.messages import BackupManifest
from coopnode.actors.identity.actor import identity_path
from coopnode.actors.identity.store import LAYOUT_VERSION as IDENTITY_LAYOUT
from coopnode.actors.kernel.copies import (
    DIRECTORY_MODE,
    FILE_MODE,
    FileSum,
    flush_directory,
    safe_relative,
)
from coopnode.actors.kernel.files import Layout
from coopnode.actors.payments.actor import payments_path
from coopnode.actors.payments.store import LAYOUT_VERSION as PAYMENTS_LAYOUT
from coopnode.actors.registry.actor import registry_path
from coopnode.actors.registry.store import LAYOUT_VERSION as REGISTRY_LAYOUT
from coopnode.actors.wallet.shard import shard_path
from coopnode.actors.wallet.store import LAYOUT_VERSION as WALLET_LAYOUT
from coopnode.settings import Settings, SettingsError

RESTORE_PARTIAL = ".restore-partial"
# Copied this much at a time while hashed again.
_COPY_CHUNK_BYTES = 1 << 20
# What a new data directory makes for itself, said once a restore is done.
NOT_IN_BACKUPS = (
    "staff-token: made at first start in development; in production put it there first",
    "konbini-webhook-key: the store network's; made in development, provided in production",
    "wallet/link-token: made anew at first start (the node's own processes share it)",
)


class RestoreRefused(Exception):
    """The restore did nothing; the message says why."""


def refuse_unfinished_restore(data_dir: Path) -> None:
    """Stop a node from starting on a restore that was cut off half way."""
    if (data_dir / RESTORE_PARTIAL).exists():
        raise SettingsError(
            f"{data_dir} holds {RESTORE_PARTIAL}: a restore into it did not finish; empty "
            "the directory and run `coopnode admin restore` again"
        )


def expected_stores(settings: Settings, data_dir: Path, shard_count: int) -> dict[str, Layout]:
    """Every store a data directory holds, by where the node looks for it, and its layout."""
    node = msgspec.structs.replace(settings.node, data_dir=str(data_dir))
    at = msgspec.structs.replace(settings, node=node)
    root = data_dir.resolve()
    stores = {
        registry_path(at): Layout(store="registry", version=REGISTRY_LAYOUT),
        identity_path(at): Layout(store="identity", version=IDENTITY_LAYOUT),
        payments_path(at): Layout(store="payments", version=PAYMENTS_LAYOUT),
    }
    for index in range(shard_count):
        stores[shard_path(at, index)] = Layout(store="wallet", version=WALLET_LAYOUT)
    return {path.relative_to(root).as_posix(): layout for path, layout in stores.items()}


def check_stores(manifest: BackupManifest, expected: dict[str, Layout]) -> None:
    found = {copy.store: copy.layout for copy in manifest.stores}
    missing = sorted(set(expected) - set(found))
    if missing:
        raise RestoreRefused(f"the backup lacks the store {missing[0]}; nothing restored")
    extra = sorted(set(found) - set(expected))
    if extra:
        raise RestoreRefused(f"the backup holds a store this node does not keep: {extra[0]}")
    for store, layout in expected.items():
        if found[store] != layout:
            raise RestoreRefused(
                f"the backup's {store} is {found[store].store} layout {found[store].version}; "
                f"this node reads {layout.store} layout {layout.version}"
            )


def restore(backup_dir: Path, data_dir: Path, settings: Settings) -> BackupManifest:
    """Check the backup whole, then build `data_dir` from it; RestoreRefused or
    BackupDamaged (nothing written) otherwise."""
    manifest = check_backup(backup_dir)
    check_stores(manifest, expected_stores(settings, data_dir, manifest.shard_count))
    backup, target = backup_dir.resolve(), data_dir.resolve()
    if target.is_relative_to(backup) or backup.is_relative_to(target):
        raise RestoreRefused(f"{data_dir} and the backup {backup_dir} must be apart")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise RestoreRefused(f"{data_dir} exists and is not empty; a restore writes over nothing")
    target.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    staging = target / RESTORE_PARTIAL
    staging.mkdir(mode=DIRECTORY_MODE)
    try:
        for copy in manifest.stores:
            for file in copy.files:
                _copy_checked(backup, file, staging)
        _write_wallet_layout(staging, manifest.shard_count)
        flush_tree(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for entry in sorted(staging.iterdir()):
        entry.replace(target / entry.name)
    staging.rmdir()
    flush_directory(target)
    return manifest


def _copy_checked(backup: Path, file: FileSum, staging: Path) -> None:
    """Copy one file to its place, hashing what was read: a file that changed since it
    was checked is refused too."""
    source = backup / safe_relative(file.path)
    destination = staging / safe_relative(file.place)
    destination.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    digest = hashlib.sha256()
    descriptor = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with source.open("rb") as reading, os.fdopen(descriptor, "wb") as writing:
        while chunk := reading.read(_COPY_CHUNK_BYTES):
            digest.update(chunk)
            writing.write(chunk)
    if digest.hexdigest() != file.sha256:
        raise BackupDamaged(f"{source} changed while it was restored: its SHA-256 differs")


def _write_wallet_layout(staging: Path, shard_count: int) -> None:
    """`wallet/layout.json`, as `coopnode serve` checks it (`service.check_layout`)."""
    # Imported here: the service imports this module for `refuse_unfinished_restore`.
    from coopnode.node.service import Layout as DataLayout

    path = staging / "wallet" / "layout.json"
    path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    layout = DataLayout(shard_count=shard_count, wallet_layout=WALLET_LAYOUT)
    path.write_bytes(msgspec.json.encode(layout))
