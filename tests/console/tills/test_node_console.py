"""The console's tills, live and journal API on a real node (Ray, LMDB, HTTP): a till
registered with a key made by the node and downloaded once connects with that key, taps,
forwards an offline tap; the live stream counts the taps; a finished day is sealed in
every shard and `coopnode audit verify` finds the running node's files intact."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from nacl.signing import SigningKey

from coopnode.node.cli import main
from tests.nodeproc import NodeProcess
from tests.tillclient import TIMEOUT_S, RawTill, enrol_with_card

pytestmark = pytest.mark.slow

MEMBER, CARD = "202677000017", "7700000000000017"


def register_and_download(node: NodeProcess, store: str) -> tuple[str, SigningKey]:
    status, registered = node.request(
        "POST", "/api/v1/console/tills", {"store": store, "kind": "shop"}
    )
    assert status == 201, registered
    status, key_file = node.request("POST", registered["key_path"])
    assert status == 200, key_file
    status, again = node.request("POST", registered["key_path"])
    assert (status, again["reason"]) == (410, "key_gone")
    return key_file["till_id"], SigningKey(bytes.fromhex(key_file["signing_key_hex"]))


async def store_figures(node: NodeProcess, store: str, taps: int) -> dict:  # type: ignore[type-arg]
    """Read the live stream until a store's figures count `taps` taps in the window."""
    headers = {"Authorization": f"Bearer {node.token}", "Accept": "text/event-stream"}
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(node.url + "/api/v1/console/live/events", headers=headers) as response,
    ):
        assert response.status == 200
        async for line in response.content:
            if line.startswith(b"data: "):
                figures = json.loads(line[len(b"data: ") :])
                for found in figures["stores"]:
                    if found["store"] == store and found["taps_in_window"] >= taps:
                        return found  # type: ignore[no-any-return]
    raise AssertionError("the stream ended")


async def test_a_till_registered_in_the_console_taps_and_forwards(node: NodeProcess) -> None:
    enrol_with_card(node, MEMBER, CARD, base=1_000)
    till_id, key = register_and_download(node, "console-north")
    till = await RawTill(node.url, till_id, key).open()
    try:
        assert till.welcome is not None
        online = await till.decide(till.tap(CARD, 430))
        assert online.approved
        offline = till.tap(CARD, 800, offline=True)
        forwarded = await till.decide(offline, till.signed(offline))
        # 570 yen and the first tap's points left: the rest is owed.
        assert forwarded.approved and forwarded.overdraft_yen > 0
        status, listed = node.request("GET", "/api/v1/console/tills")
        assert status == 200
        mine = next(t for t in listed["tills"] if t["till_id"] == till_id)
        assert mine["connected"] and mine["taps"] == 2 and mine["last_tap_approved"]
        status, queue = node.request("GET", f"/api/v1/console/tills/{till_id}/forwarded")
        assert [
            (tap["seq"], tap["outcome"], tap["overdraft_yen"]) for tap in queue["forwarded"]
        ] == [(offline.seq, "overdraft", forwarded.overdraft_yen)]
        north = await store_figures(node, "console-north", taps=2)
        assert north["tills_connected"] == 1
    finally:
        await till.close()


def test_a_finished_day_is_sealed_once_and_the_files_verify(node: NodeProcess) -> None:
    today = datetime.now(ZoneInfo("Asia/Tokyo")).date()
    # Two days back: over, and past the clock-step grace the shards wait after a day's end.
    over = (today - timedelta(days=2)).isoformat()
    status, sealed = node.request("POST", f"/api/v1/console/journal/days/{over}/seal")
    assert status == 200, sealed
    assert sorted(seal["shard_index"] for seal in sealed["seals"]) == [0, 1]
    status, again = node.request("POST", f"/api/v1/console/journal/days/{over}/seal")
    assert (status, again) == (200, sealed)
    status, refused = node.request("POST", f"/api/v1/console/journal/days/{today}/seal")
    assert (status, refused["reason"]) == (409, "seal_refused")
    status, check = node.request("GET", "/api/v1/console/journal/verify")
    assert status == 200 and check["intact"], check
    assert main(["audit", "verify", "--data-dir", str(node.data_dir)]) == 0


def test_closing_a_day_in_the_books_seals_it(node: NodeProcess) -> None:
    three_days_ago = (datetime.now(ZoneInfo("Asia/Tokyo")).date() - timedelta(days=3)).isoformat()
    status, closed = node.request("POST", f"/api/v1/books/days/{three_days_ago}/close")
    assert status == 200, closed
    status, listed = node.request("GET", "/api/v1/console/journal/seals")
    assert status == 200
    assert sorted(s["shard_index"] for s in listed["seals"] if s["day"] == three_days_ago) == [0, 1]
