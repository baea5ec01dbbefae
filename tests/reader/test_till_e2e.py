"""End to end without hardware: a FeliCa card emulated in a second process over nfcpy's UDP
transport, read by the reader in `coopnode till run` (a third process, set up with
`coopnode admin till add`), carried over the till channel to a real node (Ray, LMDB)."""

from __future__ import annotations

import json
import queue
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tests.nodeproc import REPO, NodeProcess
from tests.reader.test_card_reader import emulated_card, free_udp_port
from tests.tillclient import enrol_with_card

pytestmark = pytest.mark.slow

MEMBER, CARD = "202655000015", "5500000000000015"
START_TIMEOUT_S = 30.0


def coopnode(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "coopnode.node.cli", *arguments]


def _pump(stream: IO[bytes], lines: queue.Queue[str]) -> None:
    for raw in stream:
        lines.put(raw.decode(errors="replace").rstrip())


def wait_line(lines: queue.Queue[str], needle: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        if needle in line:
            return line
    raise AssertionError(f"no line with {needle!r} within {timeout_s} s")


def get_json(
    url: str, body: Any = None, timeout_s: float = 30.0, headers: dict[str, str] | None = None
) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    for name, value in (headers or {"Content-Type": "application/json"}).items():
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return json.loads(response.read())


def refused_status(url: str, body: Any, headers: dict[str, str]) -> int:
    with pytest.raises(urllib.error.HTTPError) as refused:
        get_json(url, body, headers=headers)
    return refused.value.code


@pytest.fixture
def till_key(node: NodeProcess, tmp_path: Path) -> Path:
    key_path = tmp_path / "till.key"
    added = subprocess.run(
        coopnode("admin", "till", "add", "--node", node.url, "--token-file",
                 str(node.machine_token_file), "--store", "cafe-55", "--kind", "cafeteria",
                 "--key-out", str(key_path)),
        cwd=REPO, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr.decode()
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    return key_path


@pytest.fixture
def till(node: NodeProcess, till_key: Path, tmp_path: Path) -> Iterator[tuple[str, int, Any]]:
    port = free_udp_port()
    process = subprocess.Popen(
        coopnode("till", "run", "--node", node.url, "--key", str(till_key),
                 "--reader", f"udp:127.0.0.1:{port}", "--http-port", "0", "--no-prompt",
                 "--state-dir", str(tmp_path / "state")),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    try:
        pos = wait_line(lines, "POS endpoint", START_TIMEOUT_S).split()[-1].removesuffix("/sale")
        deadline = time.monotonic() + START_TIMEOUT_S
        while not get_json(pos + "/status")["online"]:
            assert time.monotonic() < deadline, "the till did not connect"
            time.sleep(0.1)
        yield pos, port, lines
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_a_card_tapped_on_the_reader_pays_at_the_node(
    node: NodeProcess, till: tuple[str, int, Any]
) -> None:
    pos, port, lines = till
    enrol_with_card(node, MEMBER, CARD, base=2_000, cafeteria=300)
    answers: queue.Queue[Any] = queue.Queue()
    # The POS software asks for 450 yen; the sale waits for the card.
    sale = threading.Thread(
        target=lambda: answers.put(get_json(pos + "/sale", {"amount_yen": 450}))
    )
    sale.start()
    # A card laid on the reader before the sale waits for one is not the sale's.
    deadline = time.monotonic() + START_TIMEOUT_S
    while get_json(pos + "/status")["awaiting_card_yen"] != 450:
        assert time.monotonic() < deadline, "the sale did not start"
        time.sleep(0.05)
    with emulated_card(port, CARD):
        sale.join(timeout=20)
    outcome = answers.get(timeout=1)
    assert outcome["approved"] and not outcome["offline"]
    assert outcome["paid"]["cafeteria"] == 300 and outcome["paid"]["base"] == 150
    assert outcome["balances"]["base"] == 1_850
    receipt = wait_line(lines, f"#{outcome['seq']} tap ¥450", 5)
    assert "APPROVED" in receipt and "card …0015" in receipt
    status, history = node.request("GET", f"/api/v1/wallets/{MEMBER}/history")
    assert status == 200
    assert [line["kind"] for line in history["lines"]] == ["pay", "open"]
    assert history["lines"][0]["till_id"] == receipt.split()[0]
    # A web page open on the till's machine cannot void it: a form post, or a request a
    # browser marks with its page's origin, is refused before it reaches the till.
    void = {"tap_seq": outcome["seq"]}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert refused_status(pos + "/void", void, form) == 415
    page = {"Content-Type": "application/json", "Origin": "http://example.test"}
    assert refused_status(pos + "/void", void, page) == 403
    status, wallet = node.request("GET", f"/api/v1/wallets/{MEMBER}")
    assert wallet["balances"]["base"] == 1_850
    # The cashier voids the sale from the POS; the money goes back.
    voided = get_json(pos + "/void", {"tap_seq": outcome["seq"]})
    assert voided["approved"] and voided["paid"]["base"] == 150
    status, wallet = node.request("GET", f"/api/v1/wallets/{MEMBER}")
    assert status == 200
    assert wallet["balances"]["base"] == 2_000 and wallet["balances"]["cafeteria"] == 300
