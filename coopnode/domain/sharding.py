"""Which wallet shard owns a member: a stable hash of the member number."""

from __future__ import annotations

import zlib


def shard_of(member_no: str, shard_count: int) -> int:
    """The shard index of a member. Stable across processes and restarts (not `hash()`)."""
    return zlib.crc32(member_no.encode("ascii")) % shard_count
