"""A till's key file: its id, store and kind, and its Ed25519 private key.

`coopnode admin till add` writes it (mode 0600, never overwriting a file) on the machine
that will run the till; only the public key is sent to the node. The till agent refuses
a key file that others can read, as ssh does, because whoever reads it can take money.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Annotated

import msgspec
from nacl.signing import SigningKey

from coopnode.domain.messages import Label
from coopnode.domain.money import TillKind
from coopnode.domain.till_frames import TillId

SeedHex = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]


class TillKeyFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    till_id: TillId
    store: Label
    kind: TillKind
    # The 32-byte Ed25519 seed, hex. Never logged: the logs' redaction masks any field
    # named like `signing_key*`, `session_key*` or `*seed*` (coopnode/logs.py).
    signing_key_hex: SeedHex

    def signing_key(self) -> SigningKey:
        return SigningKey(bytes.fromhex(self.signing_key_hex))


class KeyFileError(Exception):
    """The key file is missing, unreadable, malformed or readable by others."""


def write_key_file(path: Path, key_file: TillKeyFile) -> None:
    """Create the file with mode 0600; refuse to overwrite an existing key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} exists; a till key is never overwritten") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(msgspec.json.format(msgspec.json.encode(key_file)) + b"\n")


def read_key_file(path: Path) -> TillKeyFile:
    try:
        mode = path.stat().st_mode
        raw = path.read_bytes()
    except OSError as error:
        raise KeyFileError(f"cannot read till key {path}: {error.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path} is readable by others; chmod 600 it")
    try:
        return msgspec.json.decode(raw, type=TillKeyFile)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise KeyFileError(f"{path} is not a till key file: {error}") from None
