"""Secrets the node reads from files: created at first start in development only."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from coopnode.settings import Environment, Settings


class MissingSecret(Exception):
    """A secret the node needs in production is not there."""


def read_or_create_secret(path: Path, settings: Settings, nbytes: int = 32) -> str:
    """Read a secret file; in development create it (mode 0600) when it is missing."""
    if path.exists():
        value = path.read_text(encoding="ascii").strip()
        if len(value) < 16:
            raise MissingSecret(f"{path} holds a secret shorter than 16 characters")
        return value
    if settings.node.environment is Environment.PRODUCTION:
        raise MissingSecret(f"{path} is missing; production secrets are never generated")
    return _create_secret(path, nbytes)


def read_or_create_internal_secret(path: Path, nbytes: int = 32) -> str:
    """A secret only the node's own processes share (never typed by a person): made on need."""
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    return _create_secret(path, nbytes)


def _create_secret(path: Path, nbytes: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(nbytes)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(value + "\n")
    return value
