"""`make run` shows a newcomer a tap going through end to end: the demo till, reading an
emulated FeliCa card over nfcpy's UDP transport, sells the set lunch to each demo member
in turn, and each sale is booked in the member's wallet."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from tests.nodeproc import NodeProcess, remove_tree, short_tmpdir

pytestmark = pytest.mark.slow

HANAKO = "202600000017"  # The first demo member (coopnode/node/demo.toml); her card is …c4d5.
RECEIPT = re.compile(r"(till-[0-9]+) #([0-9]+) tap ¥430 card …c4d5 APPROVED paid \[meal 430\]")
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


def test_the_demo_till_sells_lunch_to_the_demo_members(demo_node: NodeProcess) -> None:
    deadline = time.monotonic() + WAIT_S
    receipt = None
    while receipt is None:
        assert time.monotonic() < deadline, demo_node.log_tail()
        receipt = RECEIPT.search(demo_node.log_path.read_text(errors="replace"))
        time.sleep(0.2)
    till_id, seq = receipt.group(1), int(receipt.group(2))
    status, history = demo_node.request("GET", f"/api/v1/wallets/{HANAKO}/history?limit=50")
    assert status == 200, history
    sales = [line for line in history["lines"] if line["key"] == f"tap:{till_id}:{seq}"]
    assert len(sales) == 1 and sales[0]["kind"] == "pay", history
    assert sales[0]["amount_yen"] == 430 and sales[0]["changes"]["meal"] == -430
    status, audit = demo_node.request("GET", "/api/v1/audit")
    assert status == 200 and audit["balanced"], audit
