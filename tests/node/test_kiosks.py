"""A kiosk of `till.kiosks`: a reader the node runs as a reader actor on its local Ray.

Staff register the kiosk's till while the node runs and put its key file in place; the
node, started again with the kiosk in its settings, sells the kiosk's set amount on every
card tapped on its reader (here an emulated card over nfcpy's UDP transport). A kiosk
whose key file is missing is left out with an error in the log; the node runs on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from coopnode.domain.money import TillKind
from coopnode.reader.till_key import TillKeyFile, write_key_file
from tests.nodeproc import NodeProcess, remove_tree, short_tmpdir
from tests.reader.test_card_reader import emulated_card, free_udp_port
from tests.tillclient import add_till, enrol_with_card

pytestmark = pytest.mark.slow

MEMBER, CARD = "202646000015", "4600000000000015"
WAIT_S = 60.0


def kiosks_toml(port: int, key_path: Path) -> str:
    return (
        f'[{{name = "kiosk-1", device_path = "udp:127.0.0.1:{port}", '
        f'key_path = "{key_path}", fixed_amount_yen = 350}}, '
        f'{{name = "kiosk-2", device_path = "udp:127.0.0.1:{port + 1}", '
        f'key_path = "{key_path}.missing", fixed_amount_yen = 350}}]'
    )


def test_a_kiosk_reader_sells_its_set_amount_on_every_tap(tmp_path: Path) -> None:
    data_dir = short_tmpdir("cnkiosk")
    try:
        first = NodeProcess(data_dir).start()
        try:
            enrol_with_card(first, MEMBER, CARD, base=2_000)
            till_id, key = add_till(first, "kiosk-46", kind="shop")
        finally:
            first.stop()
        key_path = tmp_path / "kiosk-1.key"
        write_key_file(
            key_path,
            TillKeyFile(till_id=till_id, store="kiosk-46", kind=TillKind.SHOP,
                        signing_key_hex=bytes(key).hex()),
        )  # fmt: skip
        port = free_udp_port()
        env = {"COOPNODE_TILL__KIOSKS": kiosks_toml(port, key_path)}
        node = NodeProcess(data_dir, env=env).start()
        try:
            # A till that never reached the node sells nothing offline: wait for its link.
            wait_for_log(
                node, f'"till_id": "{till_id}", "store": "kiosk-46", "event": "till connected"'
            )
            with emulated_card(port, CARD):
                deadline = time.monotonic() + WAIT_S
                while not (lines := history(node)):
                    assert time.monotonic() < deadline, node.log_tail()
                    time.sleep(0.2)
            [sale] = lines
            assert sale["key"] == f"tap:{till_id}:1" and sale["amount_yen"] == 350
            assert sale["changes"]["base"] == -350
            wait_for_log(node, '"kiosk": "kiosk-2", "error": "cannot read till key')
            status, audit = node.request("GET", "/api/v1/audit")
            assert status == 200 and audit["balanced"], audit
        finally:
            node.stop()
    finally:
        remove_tree(data_dir)


def wait_for_log(node: NodeProcess, text: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while text not in node.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, node.log_tail()
        time.sleep(0.1)


def history(node: NodeProcess) -> list[dict[str, Any]]:
    status, page = node.request("GET", f"/api/v1/wallets/{MEMBER}/history?limit=10")
    assert status == 200, page
    return [line for line in page["lines"] if line["kind"] == "pay"]
