"""Errors of the replication room, drawn as a tree.

    ReplicationError
    └── ReplicationInvariantViolation   a programmer error: the protocol's own rules are
                                        broken (two entries claim one op in one view, a
                                        commit number goes backwards). The replica that
                                        sees it stops; its host restarts it from disk.

The room imports only the standard library and msgspec, so it keeps its own tree rather
than the domain's; the shards will map `ReplicationInvariantViolation` onto the domain's
`InvariantViolation` when they run it. Lost, late, doubled or corrupt messages and entries
are not errors: they are the weather the protocol is built for, and it answers them.
"""

from __future__ import annotations


class ReplicationError(Exception):
    """The root of every error the replication room raises on purpose."""


class ReplicationInvariantViolation(ReplicationError):
    """A rule of the protocol that must always hold does not: stop this replica."""


def require(condition: bool, message: str) -> None:
    """Raise `ReplicationInvariantViolation` unless `condition` holds (never `assert`,
    which `python -O` strips)."""
    if not condition:
        raise ReplicationInvariantViolation(message)
