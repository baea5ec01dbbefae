"""`coopnode admin backup` and `coopnode admin restore`.

    coopnode admin backup DIR [--node URL] [--token-file FILE] [--data-dir DIR]
        a backup of every store while the node serves, into DIR under `backup.dir` (a
        name there, or an absolute path inside it; new or empty). The command asks the
        node (`POST /api/v1/admin/backups` with an API token granted node.operate), which
        has the stores' owners copy their files on their own hosts, and waits for the
        backup to finish
        (`GET /api/v1/admin/backups/{id}`); it prints what the manifest holds.
    coopnode admin restore BACKUP DATA_DIR
        a new data directory from a backup, checked whole first (`node/restore.py`); no
        node needs to run. Then `coopnode serve --data-dir DATA_DIR`.

Why the backup goes through the node's HTTP API and not straight to Ray: the stores'
owners are Ray actors on the cluster's hosts, and only a process joined to the cluster
can call them. The front is joined already and checks the caller's token; the command
then needs only what the other staff commands need (the node's URL and an API token),
from any machine, with no Ray of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from coopnode.actors.backup.manifest import BackupDamaged
from coopnode.actors.backup.messages import BackupManifest, BackupState, BackupStatus
from coopnode.node.member_cli import REQUEST_TIMEOUT_S, RowError, staff_target
from coopnode.settings import Settings

# How often the command asks after a running backup.
POLL_INTERVAL_S = 0.5
_status_decoder = msgspec.json.Decoder(BackupStatus)


def add_backup_commands(admin: Any) -> None:
    backup = admin.add_parser("backup", help="back up every store while the node serves")
    backup.add_argument("dir", help="a name under backup.dir, or an absolute path inside it")
    backup.add_argument("--node", help="the node's URL (default: <data_dir>/node.url)")
    backup.add_argument("--token-file", help="an API token file (default: api-token)")
    backup.add_argument("--data-dir", help="the node's data directory (its node.url and token)")
    backup.set_defaults(run=_backup)
    restore_command = admin.add_parser("restore", help="build a new data directory from a backup")
    restore_command.add_argument("backup", type=Path, help="the backup's directory")
    restore_command.add_argument(
        "target", type=Path, metavar="DATA_DIR", help="the new data directory (new or empty)"
    )
    restore_command.set_defaults(run=_restore)


async def _ask(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> tuple[int, Any]:
    data = None if body is None else msgspec.json.encode(body)
    async with session.request(method, url, data=data) as response:
        raw = await response.read()
        status = response.status
    try:
        return status, msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return status, {"message": raw.decode(errors="replace")[:200]}


async def _take(node: str, token: str, directory: str, patience_s: float) -> tuple[int, Any]:
    """Begin the backup, then ask after it until it is no longer running."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        code, answer = await _ask(
            session, "POST", f"{node}/api/v1/admin/backups", {"dir": directory}
        )
        if code != 202:
            return code, answer
        status = msgspec.convert(answer, BackupStatus)
        print(f"backup {status.backup_id} begun into {status.dir}")
        deadline = time.monotonic() + patience_s
        while status.state is BackupState.RUNNING:
            if time.monotonic() > deadline:
                return 504, {
                    "message": f"backup {status.backup_id} still runs after {patience_s} s"
                }
            await asyncio.sleep(POLL_INTERVAL_S)
            url = f"{node}/api/v1/admin/backups/{status.backup_id}"
            code, answer = await _ask(session, "GET", url)
            if code != 200:
                return code, answer
            status = msgspec.convert(answer, BackupStatus)
        return 200, status


def _backup(args: argparse.Namespace, settings: Settings) -> int:
    # Each store's copy is bounded by copy_timeout_s, and the copies go in two groups.
    patience_s = 2 * settings.backup.copy_timeout_s + 60
    try:
        node, token = staff_target(args, settings)
        code, answer = asyncio.run(_take(node, token, args.dir, patience_s))
    except (OSError, RowError, aiohttp.ClientError) as error:
        print(f"coopnode admin: {error}", file=sys.stderr)
        return 2
    if not isinstance(answer, BackupStatus):
        print(f"refused ({code}): {answer.get('message', '')}", file=sys.stderr)
        return 1
    if answer.state is BackupState.FAILED or answer.manifest is None:
        print(f"backup {answer.backup_id} failed: {answer.message}", file=sys.stderr)
        return 1
    print(f"backup {answer.backup_id} complete in {answer.dir}")
    for line in describe(answer.manifest):
        print(f"  {line}")
    return 0


def describe(manifest: BackupManifest) -> list[str]:
    """What a backup holds, one line a store."""
    lines = [
        f"taken from {manifest.started_at} by CoopNode {manifest.node_version}, "
        f"{manifest.shard_count} wallet shard(s)"
    ]
    for copy in manifest.stores:
        size = sum(file.size_bytes for file in copy.files)
        where = f"{copy.store} ({copy.layout.store} layout {copy.layout.version}, {size:,} bytes"
        if copy.journal is not None:
            where += f"; journal entry {copy.journal.last_seq}, operation {copy.journal.last_op}"
        lines.append(where + f", copied on {copy.host})")
        secrets = [file.place for file in copy.files if "/keys/" in file.path]
        if secrets:
            lines.append(f"  with {', '.join(secrets)}")
        lines += [f"  not in the backup: {note}" for note in copy.outside]
    return lines


def _restore(args: argparse.Namespace, settings: Settings) -> int:
    # Imported only here: the stores' modules import Ray, which `coopnode serve` must
    # import only after keeping the local Ray on loopback (`cli.main`).
    from coopnode.node.restore import NOT_IN_BACKUPS, RestoreRefused, restore

    try:
        manifest = restore(args.backup, args.target, settings)
    except (BackupDamaged, RestoreRefused) as error:
        print(f"coopnode admin restore: {error}; nothing restored", file=sys.stderr)
        return 1
    except (OSError, ValueError) as error:
        print(f"coopnode admin restore: {error}", file=sys.stderr)
        return 2
    print(f"restored backup {manifest.backup_id} into {args.target}:")
    for line in describe(manifest):
        print(f"  {line}")
    print("made anew at the first start, not restored:")
    for line in NOT_IN_BACKUPS:
        print(f"  {line}")
    print(f"start it with: coopnode serve --data-dir {args.target}")
    return 0
