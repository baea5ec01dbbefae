"""nfcpy's UDP transport stays on loopback: the emulated card and the reader polling it."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from coopnode.reader.emulator import emulate_card
from coopnode.reader.felica import CardReader, ReaderUnavailable
from coopnode.reader.udp_transport import UdpTransportError, parse_udp_path
from coopnode.settings import ReaderSettings
from tests.proc_sockets import bound_sockets
from tests.reader.test_card_reader import CARD_A, free_udp_port, reader_settings

# Long enough that the card is still on the reader, its socket bound, when it is looked at;
# the stop event ends the presence early.
PRESENT_S = 60.0
TAP_WAIT_S = 10.0


@pytest.fixture
def card_on_reader() -> Iterator[CardReader]:
    """A card emulated in this process, on a reader polling it in this process, tapped."""
    port = free_udp_port()
    stop = threading.Event()
    card = threading.Thread(
        target=emulate_card,
        args=(f"127.0.0.1:{port}", CARD_A, 1, PRESENT_S, 0.0),
        kwargs={"stop": stop},
        daemon=True,
    )
    card.start()
    reader = CardReader(reader_settings(port))
    reader.start()
    try:
        tap = reader.next_tap(TAP_WAIT_S)
        assert tap is not None and tap.idm == CARD_A
        yield reader
    finally:
        reader.stop()
        stop.set()
        card.join(TAP_WAIT_S)


def test_the_card_and_the_reader_bind_loopback_only(card_on_reader: CardReader) -> None:
    sockets = bound_sockets([os.getpid()], "udp")
    # The card listens on its port and the reader sends from one of its own.
    assert len(sockets) >= 2, sockets
    assert {address for address, _, _ in sockets} == {"127.0.0.1"}, sockets


@pytest.mark.parametrize(
    "path", ["udp:0.0.0.0:5000", "udp:192.0.2.7:5000", "udp:localhost:5000", "udp:::1:5000"]
)
def test_a_path_naming_no_loopback_address_is_refused(path: str) -> None:
    with pytest.raises(UdpTransportError, match="loopback"):
        parse_udp_path(path)
    with pytest.raises(ReaderUnavailable, match="loopback"):
        CardReader(ReaderSettings(device_path=path)).start()


def test_a_loopback_path_is_taken() -> None:
    assert parse_udp_path("udp:127.0.0.1:5000") == ("127.0.0.1", 5000)
    assert parse_udp_path("udp:127.0.1.1:5000") == ("127.0.1.1", 5000)
