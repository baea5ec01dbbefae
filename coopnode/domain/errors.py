"""Errors of the domain, drawn as a tree.

    CoopNodeError
    ├── InvariantViolation   a programmer error: the books or a record are broken.
    │   │                    The actor that sees it crashes and restarts from disk,
    │   │                    except where one operation's own result broke the rule
    │   │                    before anything was written (the wallet shard refuses
    │   │                    that operation alone; see `StoreCorrupt`).
    │   └── StoreCorrupt     what a store holds is broken (a record that does not
    │                        decode or check, an index pointing nowhere, books that
    │                        do not balance): never survivable by refusing one request.
    └── OperatingError       an expected outcome with a clear message
        └── InvalidInput     a request that is malformed or out of bounds

A money operation refused for a business reason (insufficient funds, over the meal cap)
is not an error: it is a value, `domain.messages.Declined`, returned like any result.
"""

from __future__ import annotations


class CoopNodeError(Exception):
    """The root of every error CoopNode raises on purpose."""


class InvariantViolation(CoopNodeError):
    """A rule that must always hold does not: stop, do not continue with broken books."""


class StoreCorrupt(InvariantViolation):
    """A store's own records break a rule: stop; restarting re-checks the disk."""


class OperatingError(CoopNodeError):
    """An expected failure, reported to the caller with a reason code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class InvalidInput(OperatingError):
    """A request that is malformed or outside a bound."""
