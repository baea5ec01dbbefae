"""Scheduled backups: their names, when the next is due, and which old ones go.

Scheduled backups live side by side under `backup.dir`, named `scheduled-<backup id>`,
whose id begins with the UTC time it started, so that their names sort by age. The next
is due `backup.interval_s` after the newest complete one finished (read from its
manifest, so a restarted scheduler keeps the pace) or after the last attempt that
failed. Only once a new backup is complete are old ones removed: the complete ones past
the newest `backup.keep`, and unfinished ones (an attempt that failed or was cut off).
A removal first renames the directory out of the schedule's names (`.removing-…`), so
nobody ever reads a half-removed backup as one. Backups staff named themselves are
never removed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from coopnode.actors.backup.manifest import BackupDamaged, has_manifest, read_manifest

SCHEDULED_PREFIX = "scheduled-"
REMOVING_PREFIX = ".removing-"


def scheduled_dir(root: Path, backup_id: str) -> Path:
    return root / f"{SCHEDULED_PREFIX}{backup_id}"


def scheduled_backups(root: Path) -> list[Path]:
    """Every scheduled backup's directory under `root`, complete or not, oldest first."""
    if not root.is_dir():
        return []
    found = [
        path for path in root.iterdir() if path.name.startswith(SCHEDULED_PREFIX) and path.is_dir()
    ]
    return sorted(found, key=lambda path: path.name)


def complete_backups(root: Path) -> list[Path]:
    return [path for path in scheduled_backups(root) if has_manifest(path)]


def newest_finished_ms(root: Path) -> int | None:
    """When the newest complete scheduled backup finished, by its manifest."""
    for path in reversed(complete_backups(root)):
        try:
            return read_manifest(path).finished_at_ms
        except BackupDamaged:
            continue
    return None


def next_due_ms(root: Path, interval_s: float, last_attempt_ms: int | None) -> int:
    """When the next scheduled backup is due (0: now)."""
    marks = [mark for mark in (newest_finished_ms(root), last_attempt_ms) if mark is not None]
    if not marks:
        return 0
    return max(marks) + round(interval_s * 1000)


def prune(root: Path, keep: int, newest: Path) -> list[Path]:
    """Remove what the schedule no longer keeps, once `newest` is complete; answer what
    went. Raises ValueError when `newest` is not a complete backup: nothing is removed
    then."""
    if not has_manifest(newest):
        raise ValueError(f"{newest} is not a complete backup; nothing is removed")
    backups = scheduled_backups(root)
    complete = [path for path in backups if has_manifest(path)]
    going = [path for path in backups if path not in complete and path != newest]
    going += complete[: max(0, len(complete) - keep)]
    for path in going:
        removing = path.with_name(REMOVING_PREFIX + path.name)
        path.replace(removing)
        shutil.rmtree(removing)
    for leftover in root.glob(REMOVING_PREFIX + "*"):
        # A removal cut off by a crash.
        shutil.rmtree(leftover, ignore_errors=True)
    return going
