"""The front's batcher when its shard never answers: a change is `outcome_unknown`."""

from __future__ import annotations

import asyncio

from coopnode.actors.wallet.client import ShardBatcher
from coopnode.domain.messages import Declined, GetWallet, Pay
from coopnode.domain.money import TRY_AGAIN_REASONS, Reason, TillKind
from coopnode.metrics import Metrics
from coopnode.settings import WalletSettings

MEMBER = "202600000017"


async def test_a_batch_the_shard_never_answers_is_outcome_unknown_for_a_change() -> None:
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # Reads nothing back, answers nothing: the link is held.

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]

    async def endpoint() -> str:
        return f"{host}:{port}"

    settings = WalletSettings(call_timeout_s=0.2, call_retry_max=0)
    batcher = ShardBatcher(0, None, settings, Metrics(), "token", endpoint=endpoint)
    pay = Pay(key="k", member_no=MEMBER, amount_yen=100, till_kind=TillKind.SHOP, store="s")
    changed, read = await asyncio.gather(
        batcher.submit(pay), batcher.submit(GetWallet(member_no=MEMBER))
    )
    assert isinstance(changed, Declined) and changed.reason is Reason.OUTCOME_UNKNOWN
    assert changed.reason in TRY_AGAIN_REASONS  # The till sends the same frame again.
    assert isinstance(read, Declined) and read.reason is Reason.UNAVAILABLE
    await batcher.close()
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()
