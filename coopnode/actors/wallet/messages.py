"""The wallet room's own messages, beside the domain's operations and results
(`domain.messages`): what the front and the staff API read from a shard without
importing its store."""

from __future__ import annotations

import msgspec

from coopnode.domain.books import DaySums
from coopnode.domain.money import Purses


class AuditReport(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A full recount of a shard's books from its journal."""

    shard_index: int
    entries: int
    members: int
    members_total_yen: int
    counters_total_yen: int
    balanced: bool
    problems: list[str]


class SealRefused(Exception):
    """A day that cannot be sealed yet (it is not over) or without a key."""


class SealRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A sealed day of one shard: the root link at the day's last entry, signed."""

    shard_index: int
    day: str  # ISO date, JST.
    last_seq: int  # 0 when the shard had no entry before the day's end.
    root_hex: str
    public_key_hex: str
    signature_hex: str


class ChainProblem(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Where a shard's chain or seals break."""

    shard_index: int
    seq: int  # 0 when the problem is not one entry's.
    day: str  # The entry's or the seal's day, "" when unknown.
    problem: str


class ChainReport(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    shard_index: int
    entries: int
    seals: int
    problems: list[ChainProblem]


class ShardClosing(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A shard's part of a closed day (締め): the figures as they were when it closed,
    who closed it and when, and the journal's last sequence at that moment."""

    shard_index: int
    sums: DaySums
    closed_by: str
    closed_at_ms: int
    last_seq: int


class ClosingReply(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A shard's answer to a closing: the closing it keeps (this one when `created`), or
    why it closed nothing (`refused`: `day_not_over`, or the figures' problems)."""

    closing: ShardClosing | None
    created: bool
    refused: str = ""
    problems: list[str] = []


class PurseTotalsReply(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What a shard's members held in each purse at an instant, from its journal."""

    shard_index: int
    totals: Purses
    entries: int


class ShardDay(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A shard's figures of a day: as closed when it is (`closing`), else as they are."""

    closing: ShardClosing | None
    sums: DaySums


class ReplicaRole(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Where a replica stands, for the fronts and for tests."""

    shard: int
    replica: int
    pid: int
    # The Ray node (host) it runs on.
    node_id: str
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
    # Silent: its disk flushed nothing for `replication.flush_stuck_ms`, and it takes no
    # part until it does.
    silent: bool = False
