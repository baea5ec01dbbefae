"""A card laid on the counter's reader reaches the clerk's page: the counter reader (the
tills' nfcpy code, over the UDP transport to an emulated card) posts the tap, and the
page's event stream names the card's member."""

from __future__ import annotations

import json

import pytest

from tests.console.counter.conftest import bind_card, enrolled, sign_in_clerk
from tests.console.counter.readerproc import counter_reader, emulated_card, free_udp_port
from tests.identity.nodeclient import call, session
from tests.nodeproc import NodeProcess

pytestmark = pytest.mark.slow


async def test_a_card_laid_on_the_reader_names_its_member_on_the_stream(
    counter_node: NodeProcess,
) -> None:
    node = counter_node
    async with session() as client:
        await sign_in_clerk(client, node)
        member = await enrolled(client, node, "cardtap")
        idm = await bind_card(client, node, member)
        port = free_udp_port()
        events = "/api/v1/counter/readers/desk-t1/events"
        headers = {"Accept": "text/event-stream"}
        with counter_reader(node, "desk-t1", port):
            async with client.get(node.url + events, headers=headers) as stream:
                assert stream.status == 200
                assert stream.content_type == "text/event-stream"
                # Listening before the card is laid, so its tap cannot pass unheard.
                assert await stream.content.readline() == b": listening\n"
                with emulated_card(port, idm):
                    lines: list[bytes] = []
                    while not lines or not lines[-1].startswith(b"data: "):
                        line = (await stream.content.readline()).strip()
                        if line.startswith((b"event:", b"data:")):
                            lines.append(line)
        assert lines[0] == b"event: card"
        event = json.loads(lines[1].removeprefix(b"data: "))
        assert event == {
            "reader": "desk-t1",
            "idm_last4": idm[-4:],
            "member_no": member.member_no,
            "status": "active",
        }


async def test_taps_and_streams_refuse_bad_input_and_strangers(counter_node: NodeProcess) -> None:
    node = counter_node
    async with session() as client:
        path = "/api/v1/counter/readers/desk-t2/taps"
        status, _ = await call(client, node, "POST", path, {"idm": "0" * 16})
        assert status == 401  # neither the staff token nor a session
        for bad_path, body in (
            (path, {"idm": "XYZ"}),
            (path, {"idm": "0" * 16, "more": 1}),
            ("/api/v1/counter/readers/Desk 1/taps", {"idm": "0" * 16}),
        ):
            status, refused = await call(client, node, "POST", bad_path, body, token=node.token)
            assert status == 400 and refused["reason"] == "invalid_input", (bad_path, refused)
        status, delivered = await call(
            client, node, "POST", path, {"idm": "0" * 16}, token=node.token
        )
        assert status == 200 and delivered["listeners"] == 0
        assert delivered["event"]["status"] == "unknown" and delivered["event"]["member_no"] == ""
