"""A kiosk whose front is lost (issue 15 §2): its reader actor, placed on the host that
holds its reader and owned by the cluster rather than by its front, outlives the front's
SIGKILL, moves to the other front of `till.agent_node_urls`, and sells on there; each
tap is charged once.

Front B starts first, registers the kiosk's till and the member; front A starts with
the kiosk in its settings and front B as the kiosk's next front. The card is an emulated
one over nfcpy's UDP transport, as in tests/node/test_kiosks.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from coopnode.domain.money import TillKind
from coopnode.reader.reader_actor import reader_resource
from coopnode.reader.till_key import TillKeyFile, write_key_file
from tests.fronts.cluster import Front, RayHead, free_ports
from tests.fronts.conftest import FRONT_ENV
from tests.fronts.test_push import balanced
from tests.node.test_kiosks import wait_for_log
from tests.nodeproc import NodeProcess, remove_tree, short_tmpdir
from tests.reader.test_card_reader import emulated_card, free_udp_port
from tests.tillclient import add_till, enrol_with_card

pytestmark = pytest.mark.slow

MEMBER, CARD = "202615000079", "1500000000000079"
KIOSK = "kiosk-15"
SALE_YEN = 250
# Patience for what happens at once.
PATIENCE_S = 60.0


def kiosk_env(udp_port: int, key_path: Path, other_front: str) -> dict[str, str]:
    kiosks = (
        f'[{{name = "{KIOSK}", device_path = "udp:127.0.0.1:{udp_port}", '
        f'key_path = "{key_path}", fixed_amount_yen = {SALE_YEN}}}]'
    )
    return {
        **FRONT_ENV,
        "COOPNODE_TILL__KIOSKS": kiosks,
        "COOPNODE_TILL__AGENT_NODE_URLS": f'["{other_front}"]',
    }


def tap_lines(front: NodeProcess) -> list[tuple[str, int]]:
    status, page = front.request("GET", f"/api/v1/wallets/{MEMBER}/history?limit=20")
    assert status == 200, page
    lines = page["lines"]
    return sorted((line["key"], line["amount_yen"]) for line in lines if line["kind"] == "pay")


# The reader takes the same card again as a new tap only once it has been away longer
# than its debounce window (1.5 s): the card is kept away this long between two taps.
CARD_AWAY_S = 2.0


def tap_once(front: NodeProcess, udp_port: int, taps_before: int) -> float:
    """Present the card once, and wait until the front has booked one tap more; return
    when the card was taken away (`time.monotonic()`)."""
    with emulated_card(udp_port, CARD):
        wait_until(lambda: len(tap_lines(front)) > taps_before, front)
    return time.monotonic()


def wait_until(condition: Callable[[], bool], front: NodeProcess) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        assert time.monotonic() < deadline, front.log_tail()
        time.sleep(0.2)


@pytest.fixture
def root() -> Iterator[Path]:
    path = short_tmpdir("cnfronts")
    try:
        yield path
    finally:
        remove_tree(path)


def test_a_kiosk_whose_front_is_killed_moves_to_the_other_and_sells_once_per_tap(
    root: Path,
) -> None:
    head = RayHead(root / "ray", resources={reader_resource(KIOSK): 1})
    fronts: list[Front] = []
    try:
        head.start()
        [port_b] = free_ports(1)
        front_b = Front(root / "b", head, env=FRONT_ENV, port=port_b)
        fronts.append(front_b)
        front_b.start()
        enrol_with_card(front_b, MEMBER, CARD, base=2_000)
        # A cafeteria till: it earns no points, so each tap takes its price from base money.
        till_id, key = add_till(front_b, "kiosk-15", kind="cafeteria")
        key_path = root / "kiosk.key"
        write_key_file(
            key_path,
            TillKeyFile(till_id=till_id, store="kiosk-15", kind=TillKind.CAFETERIA,
                        signing_key_hex=bytes(key).hex()),
        )  # fmt: skip
        udp_port = free_udp_port()
        env = kiosk_env(udp_port, key_path, front_b.url)
        front_a = Front(root / "a", head, env=env).share_secrets_of(front_b)
        fronts.append(front_a)
        front_a.start()
        connected = f'"till_id": "{till_id}", "store": "kiosk-15", "event": "till connected"'
        wait_for_log(front_a, connected)

        card_away_s = tap_once(front_b, udp_port, 0)
        front_a.kill9()
        wait_for_log(front_b, connected)
        time.sleep(max(0.0, card_away_s + CARD_AWAY_S - time.monotonic()))
        tap_once(front_b, udp_port, 1)

        assert tap_lines(front_b) == [(f"tap:{till_id}:{seq}", SALE_YEN) for seq in (1, 2)]
        status, wallet = front_b.request("GET", f"/api/v1/wallets/{MEMBER}")
        assert status == 200 and wallet["balances"]["base"] == 2_000 - 2 * SALE_YEN, wallet
        assert balanced(front_b)
    finally:
        for front in fronts:
            front.stop()
        head.stop()
