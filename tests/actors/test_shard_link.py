"""The wallet's data plane on a real loopback socket, without Ray."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import pytest

from coopnode.actors.wallet.link import BatchReply, ShardLink, serve_link
from coopnode.domain.messages import GetWallet, Operation, decline
from coopnode.domain.money import Reason

TOKEN = "a-link-token-for-tests"


def op(member_suffix: int) -> msgspec.Raw:
    """An operation as the front sends it: encoded on its own."""
    return msgspec.Raw(
        msgspec.msgpack.encode(GetWallet(member_no=f"2026000000{member_suffix:02d}"))
    )


class Shard:
    """A stand-in shard. The batch for member 01 is answered only once another batch has
    arrived: it can be answered at all only if the link carries batches in flight at once,
    and its answer comes back after the later batch's."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self._another_arrived = asyncio.Event()

    async def submit(self, raws: list[msgspec.Raw]) -> BatchReply:
        ops = [msgspec.msgpack.decode(raw, type=Operation) for raw in raws]
        suffix = int(ops[0].member_no[-2:])
        self.seen.append(suffix)
        if suffix == 1:
            await self._another_arrived.wait()
        else:
            self._another_arrived.set()
        results = [decline(Reason.UNKNOWN_MEMBER, op.member_no) for op in ops]
        return BatchReply(results=list(results), commit_ops=len(ops), commit_s=0.0)


@asynccontextmanager
async def shard_server(shard: Shard, frame_max_bytes: int = 65_536) -> AsyncIterator[str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_link(
            reader, writer, token=TOKEN, submit=shard.submit, frame_max_bytes=frame_max_bytes
        )

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    try:
        yield f"{host}:{port}"
    finally:
        server.close()


async def test_batches_are_pipelined_and_answered_by_id() -> None:
    shard = Shard()
    async with shard_server(shard) as endpoint:

        async def lookup() -> str:
            return endpoint

        link = ShardLink(lookup, TOKEN, 65_536)
        first, second = await asyncio.wait_for(
            asyncio.gather(link.call([op(1)]), link.call([op(2)])), 10
        )
        assert [r.message for r in first.results] == ["202600000001"]  # type: ignore[union-attr]
        assert [r.message for r in second.results] == ["202600000002"]  # type: ignore[union-attr]
        assert shard.seen == [1, 2]  # Both were in flight at once on one connection.
        await link.close()


async def test_a_wrong_token_is_refused() -> None:
    async with shard_server(Shard()) as endpoint:

        async def lookup() -> str:
            return endpoint

        link = ShardLink(lookup, "not-the-token", 65_536)
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(link.call([op(2)]), 5)
        await link.close()


async def test_an_oversized_answer_breaks_the_link_and_the_next_call_reconnects() -> None:
    shard = Shard()
    async with shard_server(shard) as endpoint:
        lookups = 0

        async def lookup() -> str:
            nonlocal lookups
            lookups += 1
            return endpoint

        tiny = ShardLink(lookup, TOKEN, frame_max_bytes=16)  # Every answer is larger.
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(tiny.call([op(2)]), 5)
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(tiny.call([op(3)]), 5)
        assert lookups == 2  # A broken link is opened again, asking for the address anew.
        await tiny.close()


async def test_an_oversized_request_is_dropped_by_the_shard() -> None:
    shard = Shard()
    async with shard_server(shard, frame_max_bytes=64) as endpoint:

        async def lookup() -> str:
            return endpoint

        link = ShardLink(lookup, TOKEN, 65_536)
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(link.call([op(index) for index in range(40)]), 5)
        assert shard.seen == []
        await link.close()
