"""The front's reader of the books: asks every shard and adds their answers up.

Each call goes to every shard at once (`WalletClient.batchers`); a shard answers its own
part from its journal (`shard.py`, `books.py`), and the domain adds the parts
(`domain.books.merge_days`). A day is closed for the node once every shard has closed its
part; a closing interrupted half way (a shard that did not answer) is finished by the
next, since a shard that closed before answers the closing it keeps.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import msgspec

from coopnode.actors.wallet.client import WalletClient
from coopnode.actors.wallet.messages import ClosingReply, PurseTotalsReply, ShardClosing, ShardDay
from coopnode.domain.books import DaySums, merge_days
from coopnode.domain.money import Purses
from coopnode.domain.reconciliation import ClearingCredit


class NodeDay(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A day's figures for the whole node, and its closing when every shard closed it."""

    sums: DaySums
    closed: bool
    # Who closed the day and when (the first shard's closing; every shard's is kept).
    closed_by: str = ""
    closed_at_ms: int = 0
    shard_closings: list[ShardClosing] = []


class ClosingRefused(Exception):
    """A shard closed nothing: `reason` is `day_not_over` or `figures` (with problems)."""

    def __init__(self, reason: str, problems: list[str]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.problems = problems


class BooksUnavailable(Exception):
    """The shards do not serve the books: a replicated shard's replicas do not yet (their
    journals are the same, but a closing kept by one replica alone would be lost with it)."""


async def _ask(method: Any, *args: Any) -> bytes:
    raw: bytes = await asyncio.wrap_future(method.remote(*args).future())
    return raw


class BooksReader:
    def __init__(self, wallet: WalletClient) -> None:
        self._wallet = wallet

    def served(self) -> bool:
        """Whether the shards serve the books (replicated shards do not yet)."""
        return all(batcher.replicas is None for batcher in self._wallet.batchers)

    def _actors(self) -> list[Any]:
        if not self.served():
            raise BooksUnavailable("replicated wallet shards do not serve the books yet")
        return [batcher.actor for batcher in self._wallet.batchers]

    async def day(self, day: date) -> NodeDay:
        answers = await asyncio.gather(
            *(_ask(actor.books_day, day.isoformat()) for actor in self._actors())
        )
        parts = [msgspec.msgpack.decode(raw, type=ShardDay) for raw in answers]
        closings = [part.closing for part in parts if part.closing is not None]
        return _node_day([part.sums for part in parts], closings, len(parts))

    async def close(self, day: date, closed_by: str) -> tuple[NodeDay, bool]:
        """Close the day on every shard; the day as closed, and whether this call closed it
        (False: it was closed before)."""
        answers = await asyncio.gather(
            *(_ask(actor.close_day, day.isoformat(), closed_by) for actor in self._actors())
        )
        replies = [msgspec.msgpack.decode(raw, type=ClosingReply) for raw in answers]
        refused = next((reply for reply in replies if reply.refused), None)
        if refused is not None:
            raise ClosingRefused(refused.refused, refused.problems)
        closings = [reply.closing for reply in replies if reply.closing is not None]
        node_day = _node_day([closing.sums for closing in closings], closings, len(replies))
        return node_day, any(reply.created for reply in replies)

    async def closings(self, first: date, last: date) -> dict[str, NodeDay]:
        """The days closed on every shard from `first` to `last`, by ISO date."""
        answers = await asyncio.gather(
            *(_ask(a.closings, first.isoformat(), last.isoformat()) for a in self._actors())
        )
        by_day: dict[str, list[ShardClosing]] = {}
        for raw in answers:
            for closing in msgspec.msgpack.decode(raw, type=list[ShardClosing]):
                by_day.setdefault(closing.sums.day, []).append(closing)
        shards = len(answers)
        return {
            day: _node_day([c.sums for c in found], found, shards)
            for day, found in sorted(by_day.items())
            if len(found) == shards
        }

    async def purse_totals(self, end_ms: int) -> tuple[Purses, int]:
        """What all members held in each purse at `end_ms`, and the entries counted."""
        answers = await asyncio.gather(*(_ask(a.purse_totals, end_ms) for a in self._actors()))
        totals = Purses()
        entries = 0
        for raw in answers:
            reply = msgspec.msgpack.decode(raw, type=PurseTotalsReply)
            totals = totals.add(reply.totals)
            entries += reply.entries
        return totals, entries

    async def clearing_credits(self, start_ms: int, end_ms: int) -> list[ClearingCredit]:
        answers = await asyncio.gather(
            *(_ask(a.clearing_credits, start_ms, end_ms) for a in self._actors())
        )
        return [
            credit
            for raw in answers
            for credit in msgspec.msgpack.decode(raw, type=list[ClearingCredit])
        ]


def _node_day(parts: list[DaySums], closings: list[ShardClosing], shards: int) -> NodeDay:
    closed = len(closings) == shards
    first = min(closings, key=lambda closing: closing.closed_at_ms) if closed else None
    return NodeDay(
        sums=merge_days(parts),
        closed=closed,
        closed_by=first.closed_by if first is not None else "",
        closed_at_ms=first.closed_at_ms if first is not None else 0,
        shard_closings=sorted(closings, key=lambda closing: closing.shard_index),
    )
