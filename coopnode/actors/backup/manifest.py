"""The manifest of a backup: written last and atomically, read back and checked.

`write_manifest` writes `manifest.json` beside the stores' directories only once every
copy is on the disk, through a partial file that is flushed and renamed into place, so a
directory holds either no manifest (an unfinished backup) or a whole one. `check_backup`
is what a restore runs before it touches anything: the manifest reads, is of a format
this node knows, names only plain relative paths, and every file it names is there with
its size and SHA-256; the first problem is told as a sentence naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from coopnode.actors.backup.messages import MANIFEST_FORMAT, BackupManifest
from coopnode.actors.kernel.copies import (
    FILE_MODE,
    flush_directory,
    flush_file,
    safe_relative,
    sha256_of,
)

MANIFEST_FILE = "manifest.json"
_PARTIAL_SUFFIX = ".partial"
# A manifest names a few files per store; a far larger file is not one.
MANIFEST_MAX_BYTES = 4 * 1024 * 1024
_decoder = msgspec.json.Decoder(BackupManifest)


class BackupDamaged(Exception):
    """The backup cannot be restored; the message names what is wrong."""


def write_manifest(backup_dir: Path, manifest: BackupManifest) -> Path:
    path = backup_dir / MANIFEST_FILE
    partial = path.with_name(MANIFEST_FILE + _PARTIAL_SUFFIX)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(descriptor, "wb") as file:
        file.write(msgspec.json.format(msgspec.json.encode(manifest)))
        file.flush()
        os.fsync(file.fileno())
    partial.replace(path)
    flush_directory(backup_dir)
    return path


def has_manifest(backup_dir: Path) -> bool:
    return (backup_dir / MANIFEST_FILE).is_file()


def read_manifest(backup_dir: Path) -> BackupManifest:
    path = backup_dir / MANIFEST_FILE
    if not backup_dir.is_dir():
        raise BackupDamaged(f"{backup_dir} is not a directory")
    if not path.is_file():
        raise BackupDamaged(
            f"{backup_dir} has no {MANIFEST_FILE}: the backup never finished (or this is "
            "not a backup)"
        )
    if path.stat().st_size > MANIFEST_MAX_BYTES:
        raise BackupDamaged(f"{path} is larger than any manifest ({MANIFEST_MAX_BYTES} bytes)")
    try:
        manifest = _decoder.decode(path.read_bytes())
    except msgspec.DecodeError as error:
        raise BackupDamaged(f"{path} is not a manifest this node reads: {error}") from None
    if manifest.format != MANIFEST_FORMAT:
        raise BackupDamaged(
            f"{path} is of manifest format {manifest.format}; this node reads format "
            f"{MANIFEST_FORMAT}"
        )
    return manifest


def check_backup(backup_dir: Path) -> BackupManifest:
    """The manifest, once every file it names is there, whole; or BackupDamaged."""
    manifest = read_manifest(backup_dir)
    places: set[str] = set()
    for copy in manifest.stores:
        for file in copy.files:
            try:
                relative = safe_relative(file.path)
                place = safe_relative(file.place).as_posix()
            except ValueError as error:
                raise BackupDamaged(f"the manifest names a bad path: {error}") from None
            if place in places:
                raise BackupDamaged(f"the manifest puts two files at {place}")
            places.add(place)
            _check_file(backup_dir / relative, file.size_bytes, file.sha256)
    return manifest


def _check_file(path: Path, size_bytes: int, sha256: str) -> None:
    if not path.is_file():
        raise BackupDamaged(f"{path} is missing from the backup")
    found = path.stat().st_size
    if found != size_bytes:
        raise BackupDamaged(f"{path} holds {found} bytes; the manifest says {size_bytes}")
    if sha256_of(path) != sha256:
        raise BackupDamaged(f"{path} is damaged: its SHA-256 is not the manifest's")


def flush_tree(root: Path) -> None:
    """Flush every file and directory under `root` (a restored data directory)."""
    for directory, _, files in os.walk(root):
        for name in files:
            flush_file(Path(directory) / name)
        flush_directory(Path(directory))
