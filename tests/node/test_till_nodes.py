"""A till given several node URLs (issue 15 §2): it connects to the first that takes it,
stays on a working link, and tries the list from the top at its next reconnection; the
command line and the settings name the list, one URL still being one. (A front lost
with SIGKILL, and the till moving to another front of a cluster: tests/fronts.)"""

from __future__ import annotations

import argparse
import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from coopnode.domain.money import TillKind
from coopnode.node.kiosks import Kiosks
from coopnode.reader.till_agent import TillAgent
from coopnode.reader.till_cli import node_urls
from coopnode.reader.till_key import TillKeyFile
from coopnode.reader.till_state import TillState
from coopnode.settings import Settings, TillSettings
from tests.nodeproc import NodeProcess
from tests.tillclient import NoReader, RawTill, add_till, enrol_with_card, tap_keys, wait_for
from tests.tillrelay import AnswerHold

# Patience for what happens at once.
PATIENCE_S = 60.0
# Patient for decisions: a sale here is meant to be decided online.
SETTINGS = msgspec.structs.replace(
    TillSettings(),
    agent_reconnect_backoff_ms=100,
    agent_reconnect_backoff_max_ms=400,
    agent_decision_timeout_s=PATIENCE_S,
)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def with_urls(*urls: str) -> Settings:
    till = msgspec.convert({"agent_node_urls": list(urls)}, TillSettings)
    return msgspec.structs.replace(Settings(), till=till)


def test_the_command_line_names_one_node_or_several_else_the_settings_do() -> None:
    settings = with_urls("http://10.0.0.1:8080", "http://10.0.0.2:8080")
    one = argparse.Namespace(node=["http://127.0.0.1:8080"])
    assert node_urls(one, settings) == ["http://127.0.0.1:8080"]
    several = argparse.Namespace(node=["http://a.example:1", "https://b.example:2"])
    assert node_urls(several, settings) == ["http://a.example:1", "https://b.example:2"]
    none = argparse.Namespace(node=None)
    assert node_urls(none, settings) == ["http://10.0.0.1:8080", "http://10.0.0.2:8080"]
    with pytest.raises(ValueError, match="name the node"):
        node_urls(none, Settings())
    with pytest.raises(ValueError, match="not a node URL"):
        node_urls(argparse.Namespace(node=["ftp://x.example"]), settings)


def test_the_settings_refuse_a_node_url_that_is_not_one() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"agent_node_urls": ["http://a.example/till/ws"]}, TillSettings)


def test_a_kiosk_sells_to_its_own_front_first_then_to_the_others() -> None:
    settings = with_urls("http://10.0.0.1:8080", "http://10.0.0.2:8080/")
    kiosks = Kiosks(settings, "http://10.0.0.2:8080", [])
    assert kiosks.node_urls == ["http://10.0.0.2:8080", "http://10.0.0.1:8080"]


class Till:
    """A shop till of the suite's node, and its agent's files."""

    def __init__(self, node: NodeProcess, state_dir: Path) -> None:
        till_id, key = add_till(node, "shop-16")
        self.till_id = till_id
        self.key = key
        self.key_file = TillKeyFile(
            till_id=till_id, store="shop-16", kind=TillKind.SHOP, signing_key_hex=bytes(key).hex()
        )
        self.state = TillState(state_dir, 8 << 20)
        self.agent: TillAgent | None = None

    async def start(self, urls: list[str]) -> TillAgent:
        self.agent = TillAgent(self.key_file, urls, SETTINGS, self.state, NoReader(), print)
        await self.agent.start()
        return self.agent


@pytest.fixture
async def till(node: NodeProcess, tmp_path: Path) -> AsyncIterator[Till]:
    till = Till(node, tmp_path / "till")
    try:
        yield till
    finally:
        if till.agent is not None:
            await till.agent.stop()
        till.state.close()


@pytest.mark.slow
async def test_a_till_sells_through_the_first_node_that_takes_it(
    node: NodeProcess, till: Till
) -> None:
    member, card = "202616000019", "1600000000000019"
    enrol_with_card(node, member, card, base=2_000)
    agent = await till.start([f"http://127.0.0.1:{closed_port()}", node.url])
    await wait_for(lambda: agent.link.node_url == node.url, PATIENCE_S)
    sale = await agent.charge(card, 300)
    assert sale.approved and not sale.offline, sale
    assert tap_keys(node, member) == [f"tap:{till.till_id}:{sale.seq}"]


@pytest.mark.slow
async def test_a_till_stays_on_a_working_link_and_goes_back_first_at_its_next_reconnection(
    node: NodeProcess, till: Till
) -> None:
    member, card = "202616000027", "1600000000000027"
    enrol_with_card(node, member, card, base=2_000)
    first_port = closed_port()
    agent = await till.start([f"http://127.0.0.1:{first_port}", node.url])
    await wait_for(lambda: agent.link.node_url == node.url, PATIENCE_S)
    # The first node comes up (a relay to the same node, on the first URL's port).
    async with AnswerHold(node.url, port=first_port) as first:
        sale = await agent.charge(card, 200)
        assert sale.approved and not sale.offline
        assert agent.link.node_url == node.url, "a working link was dropped"
        # The link drops (the node closes it: the same till connected again elsewhere);
        # the next round starts from the top of the list.
        other = await RawTill(node.url, till.till_id, till.key).open()
        try:
            await wait_for(lambda: agent.link.node_url == first.url, PATIENCE_S)
        finally:
            await other.close()
        sale = await agent.charge(card, 200)
        assert sale.approved and not sale.offline, sale
    assert sorted(tap_keys(node, member)) == [f"tap:{till.till_id}:{seq}" for seq in (1, 2)]


@pytest.mark.slow
async def test_a_node_that_takes_the_connection_and_never_answers_is_passed_over(
    node: NodeProcess, till: Till
) -> None:
    """A front whose host hangs: the TCP connection opens, the WebSocket upgrade is never
    answered. The till gives up on it after its connect and auth bounds, by construction
    (nothing ever answers), and sells through the next node."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # Read nothing, answer nothing.

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    bounded = msgspec.structs.replace(SETTINGS, agent_connect_timeout_s=1.0, auth_timeout_s=1.0)
    urls = [f"http://127.0.0.1:{port}", node.url]
    till.agent = TillAgent(till.key_file, urls, bounded, till.state, NoReader(), print)
    try:
        await till.agent.start()
        agent = till.agent
        await wait_for(lambda: agent.link.node_url == node.url, PATIENCE_S)
        assert held, "the silent node was never tried"
    finally:
        for writer in held:
            writer.close()
        silent.close()
        await silent.wait_closed()
