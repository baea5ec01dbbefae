"""`make run` shows a newcomer a tap going through end to end: the demo till, a reader
actor on the local Ray reading an emulated FeliCa card over nfcpy's UDP transport, sells
the set lunch to each demo member in turn, and each sale is booked in the member's
wallet. Killed, the reader actor is restarted by Ray and sells on from where it was."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator

import pytest

from tests.nodeproc import NodeProcess, remove_tree, short_tmpdir

pytestmark = pytest.mark.slow

HANAKO = "202600000017"  # The first demo member (coopnode/node/demo.toml); her card is …c4d5.
RECEIPT = re.compile(r"(till-[0-9]+) #([0-9]+) tap ¥430 card …c4d5 APPROVED paid \[meal 430\]")
# Ray prefixes what an actor prints with the actor's class and process.
ACTOR_RECEIPT = re.compile(
    r"\(ReaderActor pid=([0-9]+)\)\S* (till-[0-9]+) #([0-9]+) tap ¥430 card …[0-9a-f]{4} APPROVED"
)
WAIT_S = 60.0


@pytest.fixture
def demo_node() -> Iterator[NodeProcess]:
    data_dir = short_tmpdir("cndemo")
    env = {"COOPNODE_TILL__DEMO_TILL": "true", "COOPNODE_TILL__DEMO_TAP_GAP_S": "0.5"}
    process = NodeProcess(data_dir, demo=True, env=env).start()
    try:
        yield process
    finally:
        process.stop()
        remove_tree(data_dir)


def wait_for_match(node: NodeProcess, pattern: re.Pattern[str], after: int = 0) -> re.Match[str]:
    deadline = time.monotonic() + WAIT_S
    while True:
        found = pattern.search(node.log_path.read_text(errors="replace"), after)
        if found is not None:
            return found
        assert time.monotonic() < deadline, node.log_tail()
        time.sleep(0.2)


def test_the_demo_till_sells_lunch_to_the_demo_members(demo_node: NodeProcess) -> None:
    receipt = wait_for_match(demo_node, RECEIPT)
    till_id, seq = receipt.group(1), int(receipt.group(2))
    status, history = demo_node.request("GET", f"/api/v1/wallets/{HANAKO}/history?limit=50")
    assert status == 200, history
    sales = [line for line in history["lines"] if line["key"] == f"tap:{till_id}:{seq}"]
    assert len(sales) == 1 and sales[0]["kind"] == "pay", history
    assert sales[0]["amount_yen"] == 430 and sales[0]["changes"]["meal"] == -430

    # The sale was made by the reader actor; killed, it is restarted by Ray and sells on,
    # numbering its taps on from its own files (a number used again would be refused).
    first = wait_for_match(demo_node, ACTOR_RECEIPT)
    os.kill(int(first.group(1)), signal.SIGKILL)
    other_process = re.compile(
        rf"\(ReaderActor pid=(?!{first.group(1)}\))([0-9]+)\)\S* (till-[0-9]+) #([0-9]+) "
        r"tap ¥430 card …[0-9a-f]{4} APPROVED"
    )
    later = wait_for_match(demo_node, other_process, first.end())
    assert later.group(2) == till_id and int(later.group(3)) > int(first.group(3))
    status, audit = demo_node.request("GET", "/api/v1/audit")
    assert status == 200 and audit["balanced"], audit
