"""The wallet room's own messages, beside the domain's operations and results
(`domain.messages`): what the front and the staff API read from a shard without
importing its store."""

from __future__ import annotations

import msgspec


class AuditReport(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A full recount of a shard's books from its journal."""

    shard_index: int
    entries: int
    members: int
    members_total_yen: int
    counters_total_yen: int
    balanced: bool
    problems: list[str]


class ReplicaRole(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Where a replica stands, for the fronts and for tests."""

    shard: int
    replica: int
    pid: int
    formatted: bool
    status: str
    view: int
    primary: int
    op: int
    commit: int
    applied: int
    # The link a front sends batches on; "" unless this replica is the primary now.
    endpoint: str
    # Entries of its log that failed their checksum when it last started (repaired from
    # its peers since).
    corrupt_entries_found: int = 0
