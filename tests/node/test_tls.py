"""TLS (issue 11, item 7): a node that names a certificate and key serves HTTPS and WSS
only, and a till verifies it (a CA file, or a pin) before it sends a single frame.

The certificates are made by the test (`tests/tls_certs.py`): a CA, the node's certificate
for 127.0.0.1 signed by it, and a CA that signed nothing the node serves.
"""

from __future__ import annotations

import asyncio
import http.client
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from coopnode.domain.money import TillKind
from coopnode.reader.till_agent import TillAgent
from coopnode.reader.till_key import TillKeyFile, write_key_file
from coopnode.reader.till_state import TillState
from coopnode.settings import TillSettings
from tests.node.test_kiosks import kiosks_toml, wait_for_log
from tests.nodeproc import NodeProcess, remove_tree, short_tmpdir
from tests.reader.test_card_reader import free_udp_port
from tests.tillclient import NoReader, add_till, enrol_with_card, tap_keys, wait_for
from tests.tls_certs import Pki, make_pki

pytestmark = pytest.mark.slow

CONNECT_WAIT_S = 20.0
ONLINE_SETTINGS = msgspec.structs.replace(
    TillSettings(),
    agent_reconnect_backoff_ms=100,
    agent_reconnect_backoff_max_ms=400,
    agent_decision_timeout_s=10.0,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_node(pki: Pki) -> Iterator[NodeProcess]:
    data_dir = short_tmpdir("cntls")
    env = {
        "COOPNODE_NODE__TLS_CERT_FILE": f'"{pki.cert_file}"',
        "COOPNODE_NODE__TLS_KEY_FILE": f'"{pki.key_file}"',
    }
    node = NodeProcess(data_dir, env=env)
    node.ssl_context = ssl.create_default_context(cafile=str(pki.ca_file))
    try:
        yield node.start()
    finally:
        node.stop()
        remove_tree(data_dir)


def test_the_node_serves_https_with_its_certificate(tls_node: NodeProcess) -> None:
    assert tls_node.url.startswith("https://127.0.0.1:")
    status, health = tls_node.request("GET", "/healthz")
    assert status == 200 and health["ready"], health


def test_plain_http_to_the_tls_port_gets_no_answer(tls_node: NodeProcess) -> None:
    plain = tls_node.url.replace("https://", "http://") + "/healthz"
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        urllib.request.urlopen(plain, timeout=30)


def _till(tls_node: NodeProcess, store: str) -> TillKeyFile:
    till_id, key = add_till(tls_node, store)
    return TillKeyFile(
        till_id=till_id, store=store, kind=TillKind.SHOP, signing_key_hex=bytes(key).hex()
    )


@pytest.mark.parametrize("trust", ["ca_file", "pin"])
async def test_a_till_that_verifies_the_node_connects_and_sells_online(
    tls_node: NodeProcess, pki: Pki, tmp_path: Path, trust: str
) -> None:
    member_no, card = ("202645000014", "4500000000000014")
    if trust == "pin":
        member_no, card = ("202645000022", "4500000000000022")
    enrol_with_card(tls_node, member_no, card, base=5_000)
    key_file = _till(tls_node, f"tls-{trust}")
    # The pin as `openssl x509 -fingerprint -sha256` prints it: upper case, colons.
    pin = ":".join(f"{byte:02X}" for byte in bytes.fromhex(pki.cert_sha256))
    settings = msgspec.structs.replace(
        ONLINE_SETTINGS,
        agent_tls_ca_file=str(pki.ca_file) if trust == "ca_file" else "",
        agent_tls_pin_sha256=pin if trust == "pin" else "",
    )
    state = TillState(tmp_path / "till", 8 << 20)
    agent = TillAgent(key_file, tls_node.url, settings, state, NoReader(), out=lambda _: None)
    await agent.start()
    try:
        await asyncio.wait_for(agent.link.connected.wait(), CONNECT_WAIT_S)
        outcome = await agent.charge(card, 480)
    finally:
        await agent.stop()
        state.close()
    assert outcome.approved and not outcome.offline, outcome
    assert tap_keys(tls_node, member_no) == [f"tap:{key_file.till_id}:1"]


async def _welcomed_once(
    tls_node: NodeProcess, pki: Pki, key_file: TillKeyFile, state: TillState
) -> None:
    """Connect once with the right CA, so that the till holds the node's offline limits
    (a till that never met its node sells nothing offline)."""
    settings = msgspec.structs.replace(ONLINE_SETTINGS, agent_tls_ca_file=str(pki.ca_file))
    agent = TillAgent(key_file, tls_node.url, settings, state, NoReader(), out=lambda _: None)
    await agent.start()
    try:
        await asyncio.wait_for(agent.link.connected.wait(), CONNECT_WAIT_S)
    finally:
        await agent.stop()


@pytest.mark.parametrize("trust", ["other_ca", "wrong_pin", "system_store"])
async def test_a_till_that_cannot_verify_the_node_never_connects_and_sells_offline(
    tls_node: NodeProcess, pki: Pki, tmp_path: Path, trust: str
) -> None:
    # The till met its node; now the certificate it is shown is not one it trusts (a
    # machine in the middle, or a till set up with the wrong CA or pin).
    member_no = {"other_ca": "202645000030", "wrong_pin": "202645000048"}.get(trust, "202645000056")
    card = "4500" + member_no
    enrol_with_card(tls_node, member_no, card, base=5_000)
    key_file = _till(tls_node, f"tls-{trust.replace('_', '-')}")
    state = TillState(tmp_path / "till", 8 << 20)
    settings = msgspec.structs.replace(
        ONLINE_SETTINGS,
        agent_tls_ca_file=str(pki.other_ca_file) if trust == "other_ca" else "",
        # The pin of another certificate: one digit off.
        agent_tls_pin_sha256=(
            ("0" if pki.cert_sha256[0] != "0" else "1") + pki.cert_sha256[1:]
            if trust == "wrong_pin"
            else ""
        ),
    )
    agent = TillAgent(key_file, tls_node.url, settings, state, NoReader(), out=lambda _: None)
    try:
        await _welcomed_once(tls_node, pki, key_file, state)
        await agent.start()
        await wait_for(lambda: "certificate" in agent.link.last_refusal, CONNECT_WAIT_S)
        outcome = await agent.charge(card, 480)
        assert not agent.link.online
        assert state.queued_count() == 1
    finally:
        await agent.stop()
        state.close()
    assert outcome.approved and outcome.offline, outcome
    # The node heard nothing of the sale: it waits in the till's queue.
    assert tap_keys(tls_node, member_no) == []


def test_a_kiosk_of_a_tls_node_is_pinned_to_its_certificate(pki: Pki, tmp_path: Path) -> None:
    # No CA file and no pin in the settings, and the test CA is in no system store: the
    # kiosk's link opens only because the node pinned its kiosks to its own certificate.
    data_dir = short_tmpdir("cntlskiosk")
    env = {
        "COOPNODE_NODE__TLS_CERT_FILE": f'"{pki.cert_file}"',
        "COOPNODE_NODE__TLS_KEY_FILE": f'"{pki.key_file}"',
    }
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    try:
        first = NodeProcess(data_dir, env=env)
        first.ssl_context = context
        try:
            till_id, key = add_till(first.start(), "kiosk-tls", kind="shop")
        finally:
            first.stop()
        key_path = tmp_path / "kiosk-1.key"
        write_key_file(
            key_path,
            TillKeyFile(till_id=till_id, store="kiosk-tls", kind=TillKind.SHOP,
                        signing_key_hex=bytes(key).hex()),
        )  # fmt: skip
        kiosks = {"COOPNODE_TILL__KIOSKS": kiosks_toml(free_udp_port(), key_path)}
        node = NodeProcess(data_dir, env={**env, **kiosks})
        node.ssl_context = context
        try:
            wait_for_log(
                node.start(),
                f'"till_id": "{till_id}", "store": "kiosk-tls", "event": "till connected"',
            )
        finally:
            node.stop()
    finally:
        remove_tree(data_dir)
