"""A store's files copied while its owner serves: LMDB's own copy, checksummed.

A copy is made by the process that owns the files, on the host that holds them, from
one read transaction (`Environment.copy(compact=True)` walks a snapshot and never takes
the writer's lock), so the owner goes on committing while it runs and the copy is the
store as one committed transaction left it. What a copy made is told back as a
`StoreCopy`: the store's name (its directory under the data directory, which is also its
directory in the backup), its layout, the host, and every file with its size and
SHA-256, so that whoever writes the backup's manifest never reads another host's disk.

Refusals (`CopyRefused`): a backup directory that is not absolute, that lies inside the
live data directory, or where the store's directory already exists. A copy never
writes beside or over anything.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import msgspec

from coopnode.actors.kernel.files import Layout, LmdbFiles

# Files are read this much at a time to be hashed: large enough for the disk, small
# enough that hashing a copy of many GiB holds little memory.
_HASH_CHUNK_BYTES = 1 << 20
# Backups hold every member's records and the keys that open them: owner only.
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
# LMDB's copy writes its data file under this name.
DATA_FILE = "data.mdb"
Sha256Hex = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
RelativePath = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class CopyRefused(Exception):
    """The backup directory cannot take this copy; the message says why."""


class FileSum(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One file of a backup: where it is in the backup, where a restore puts it (both
    relative, `/`-separated), its size and its SHA-256."""

    path: RelativePath
    place: RelativePath
    size_bytes: Annotated[int, msgspec.Meta(ge=0)]
    sha256: Sha256Hex


class JournalPosition(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Where a wallet shard's books stood in its copy: the last journal entry and the
    last operation record (0: none yet)."""

    last_seq: Annotated[int, msgspec.Meta(ge=0)]
    last_op: Annotated[int, msgspec.Meta(ge=0)]


class StoreCopy(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What one store's owner copied into a backup."""

    # The store's directory under the data directory, e.g. `wallet/shard-000`.
    store: RelativePath
    layout: Layout
    host: str
    files: list[FileSum]
    # A wallet shard's position in its copy; None for the other stores.
    journal: JournalPosition | None = None
    # Files the store needs that the backup does not hold (secrets configured outside
    # the data directory), named for whoever restores.
    outside: list[str] = []


def safe_relative(text: str) -> PurePosixPath:
    """`text` as a relative path that stays inside its root, or ValueError."""
    path = PurePosixPath(text)
    if path.is_absolute() or not path.parts or any(part in ("..", ".") for part in path.parts):
        raise ValueError(f"{text!r} is not a plain relative path")
    return path


def store_target(backup_dir: Path, store: str, data_dir: Path) -> Path:
    """Make the store's empty directory in the backup, after the refusals above."""
    if not backup_dir.is_absolute():
        raise CopyRefused(f"the backup directory {backup_dir} is not an absolute path")
    resolved = backup_dir.resolve()
    live = data_dir.resolve()
    if resolved == live or resolved.is_relative_to(live):
        raise CopyRefused(f"the backup directory {backup_dir} is inside the live data {live}")
    target = resolved / safe_relative(store)
    if target.exists():
        raise CopyRefused(f"{target} exists already; a backup never writes over anything")
    # Each directory made here is the owner's alone (`mkdir(parents=True)` would give
    # the ones between the umask's mode).
    resolved.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    made = resolved
    for part in safe_relative(store).parts[:-1]:
        made = made / part
        made.mkdir(mode=DIRECTORY_MODE, exist_ok=True)
    target.mkdir(mode=DIRECTORY_MODE)
    return target


def store_name(files: LmdbFiles, data_dir: Path) -> str:
    """The store's directory under the data directory (`wallet/shard-000`, `registry`)."""
    return files.path.resolve().relative_to(data_dir.resolve()).as_posix()


def copy_environment(
    files: LmdbFiles, backup_dir: Path, data_dir: Path, txn: Any = None
) -> tuple[str, list[FileSum]]:
    """Copy the environment into `<backup_dir>/<store>/`, compacted, from `txn` (a read
    transaction of the caller's, so that what it read matches the copy) or from a read
    transaction of its own; flushed to the disk, then checksummed. Answers the store's
    name and its files."""
    store = store_name(files, data_dir)
    target = store_target(backup_dir, store, data_dir)
    files.env.copy(str(target), compact=True, txn=txn)
    data = target / DATA_FILE
    os.chmod(data, FILE_MODE)
    flush_file(data)
    flush_directory(target)
    return store, [file_sum(data, backup_dir.resolve(), f"{store}/{DATA_FILE}")]


def copy_store(files: LmdbFiles, layout: Layout, backup_dir: Path, data_dir: Path) -> StoreCopy:
    """A store's whole copy, for a store that has nothing to say about its position."""
    store, sums = copy_environment(files, backup_dir, data_dir)
    return StoreCopy(store=store, layout=layout, host=host_name(), files=sums)


def copy_file(source: Path, backup_dir: Path, path: str, place: str) -> FileSum:
    """Copy one small file (a secret) into the backup at `path`, to be restored at `place`."""
    target = backup_dir.resolve() / safe_relative(path)
    target.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(descriptor, "wb") as file:
        file.write(source.read_bytes())
        file.flush()
        os.fsync(file.fileno())
    flush_directory(target.parent)
    return file_sum(target, backup_dir.resolve(), place)


def file_sum(path: Path, root: Path, place: str) -> FileSum:
    return FileSum(
        path=path.relative_to(root).as_posix(),
        place=safe_relative(place).as_posix(),
        size_bytes=path.stat().st_size,
        sha256=sha256_of(path),
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def flush_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def flush_directory(path: Path) -> None:
    """Make a directory's entries (a new file, a rename) durable."""
    flush_file(path)


def host_name() -> str:
    return socket.gethostname()
