"""CardReader against FeliCa cards emulated in a second process over nfcpy's UDP transport.

On the UDP transport a reader that finds no card waits 1 s for an answer, so a card that
arrives while the reader is already polling is seen within about 1.1 s; every emulated
card here stays present for 1.5 s so that it is always seen.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import nfc
import nfc.clf
import nfc.tag
import pytest

from coopnode.reader.emulator import emulate_card
from coopnode.reader.felica import (
    SENSF_REQUEST,
    CardReader,
    Debouncer,
    MalformedCardResponse,
    ReaderUnavailable,
    Tap,
    tap_from_sensf_response,
)
from coopnode.reader.udp_transport import open_frontend
from coopnode.settings import ReaderSettings

CARD_A = "0123456789abcdef"
CARD_B = "fedcba9876543210"
PMM = "0120220427674eff"
PRESENT_S = 1.5
PROCESS_TIMEOUT_S = 15.0


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def reader_settings(port: int, **overrides: Any) -> ReaderSettings:
    # The default 1.5 s debounce window: a poll lost on a loaded machine costs 1 s on UDP.
    base = ReaderSettings(device_path=f"udp:127.0.0.1:{port}", poll_interval_ms=50)
    return msgspec.structs.replace(base, **overrides)


@contextmanager
def emulated_card(
    port: int, idm: str, *, taps: int = 1, present_s: float = PRESENT_S, gap_s: float = 0.5
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `python -m coopnode.reader.emulator` and make sure it is gone afterwards."""
    command = [
        sys.executable, "-m", "coopnode.reader.emulator", "--udp", f"127.0.0.1:{port}",
        "--idm", idm, "--pmm", PMM, "--taps", str(taps),
        "--present-s", str(present_s), "--gap-s", str(gap_s),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        _, errors = process.communicate(timeout=PROCESS_TIMEOUT_S)
        if process.returncode not in (0, -9):
            pytest.fail(f"emulator failed ({process.returncode}): {errors.decode()}")


def collect_taps(reader: CardReader, until: subprocess.Popen[bytes], settle_s: float) -> list[Tap]:
    """Every tap read until the emulator exits, and for `settle_s` after that."""
    taps: list[Tap] = []
    deadline = time.monotonic() + PROCESS_TIMEOUT_S
    while until.poll() is None and time.monotonic() < deadline:
        tap = reader.next_tap(0.1)
        if tap is not None:
            taps.append(tap)
    settle_deadline = time.monotonic() + settle_s
    while (remaining_s := settle_deadline - time.monotonic()) > 0:
        tap = reader.next_tap(remaining_s)
        if tap is not None:
            taps.append(tap)
    return taps


@pytest.fixture
def port() -> int:
    return free_udp_port()


@pytest.fixture
def reader(port: int) -> Iterator[CardReader]:
    card_reader = CardReader(reader_settings(port))
    card_reader.start()
    yield card_reader
    card_reader.stop()


# Against emulated cards ---------------------------------------------------------------


def test_one_tap_reads_the_cards_idm_and_pmm(port: int, reader: CardReader) -> None:
    before_ms = time.time_ns() // 1_000_000
    with emulated_card(port, CARD_A):
        tap = reader.next_tap(5.0)
    assert tap is not None
    assert tap.idm == CARD_A
    assert tap.pmm == PMM
    assert tap.system_code == 0xFE00
    assert before_ms <= tap.read_at_ms <= time.time_ns() // 1_000_000


def test_a_card_left_on_the_reader_is_one_tap(port: int, reader: CardReader) -> None:
    # Twice the 1.5 s debounce window, polled every 50 ms all along.
    with emulated_card(port, CARD_A, present_s=3.0) as card:
        taps = collect_taps(reader, until=card, settle_s=0.3)
    assert [tap.idm for tap in taps] == [CARD_A]


def test_two_cards_one_after_the_other_are_two_taps_in_order(port: int, reader: CardReader) -> None:
    taps: list[Tap] = []
    for idm in (CARD_A, CARD_B):
        with emulated_card(port, idm) as card:
            taps += collect_taps(reader, until=card, settle_s=0.0)
    taps += collect_taps(reader, until=card, settle_s=0.3)
    assert [tap.idm for tap in taps] == [CARD_A, CARD_B]
    assert taps[0].read_at_ms < taps[1].read_at_ms


def test_a_card_presented_again_after_the_debounce_window_is_a_second_tap(
    port: int, reader: CardReader
) -> None:
    # The card is away 2 s, longer than the 1.5 s window that starts when it was last seen.
    with emulated_card(port, CARD_A, taps=2, gap_s=2.0) as card:
        taps = collect_taps(reader, until=card, settle_s=0.3)
    assert [tap.idm for tap in taps] == [CARD_A, CARD_A]
    assert taps[1].read_at_ms - taps[0].read_at_ms >= 2_000


def test_stop_while_polling_ends_the_poll_and_closes_the_device(port: int) -> None:
    opened: list[Any] = []

    def open_and_remember(device_path: str) -> Any:
        frontend = open_frontend(device_path)
        opened.append(frontend)
        return frontend

    card_reader = CardReader(reader_settings(port), open_frontend=open_and_remember)
    card_reader.start()
    # No card: the reader is inside a poll that waits up to 1 s, or about to start one;
    # stop ends it either way (a hung stop fails the test by its timeout).
    card_reader.stop()
    assert not card_reader.running
    assert len(opened) == 1
    assert opened[0].device is None


def test_a_reader_that_dies_mid_session_does_not_wedge_the_card(port: int) -> None:
    context = multiprocessing.get_context("spawn")
    # The card stays on the reader long enough for a spawned process that starts slowly
    # on a busy machine, a reader that dies, its command timeout and a second reader.
    present_s = 12.0
    card = context.Process(
        target=emulate_card, args=(f"127.0.0.1:{port}", CARD_A, 1, present_s, 0.0)
    )
    card.start()
    dead_reader = open_frontend(f"udp:127.0.0.1:{port}")
    try:
        target = None
        deadline = time.monotonic() + present_s
        while target is None:
            assert time.monotonic() < deadline, "the card never answered a poll"
            target = dead_reader.sense(nfc.clf.RemoteTarget("212F"), iterations=1)
        # A command beyond polling puts the card into its command loop; the reader then
        # falls silent without switching its field off, as a crashed process would.
        assert nfc.tag.activate(dead_reader, target).is_present
        card_reader = CardReader(reader_settings(port))
        card_reader.start()
        try:
            tap = card_reader.next_tap(present_s)
        finally:
            card_reader.stop()
        assert tap is not None
        assert tap.idm == CARD_A
    finally:
        card.join(present_s + PROCESS_TIMEOUT_S)
        if card.is_alive():
            card.kill()
        dead_reader.close()
    assert card.exitcode == 0


# Against a scripted frontend ----------------------------------------------------------


# A scripted poll: a card's IDm, no card (None), or an error nfcpy raises.
Step = str | Exception | None


class ScriptedFrontend:
    """Answers each poll with the next step of its script, then with no card."""

    def __init__(self, script: list[Step]) -> None:
        self.script = script
        self.closed = False
        self.polls = 0

    def sense(self, *targets: Any, **options: Any) -> Any:
        if targets[0].sensf_req != SENSF_REQUEST or options != {"iterations": 1}:
            raise AssertionError(f"unexpected poll {targets} {options}")
        self.polls += 1
        step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            raise step
        if step is None:
            time.sleep(0.01)
            return None
        sensf_res = bytes.fromhex("01" + step + PMM + "fe00")
        return nfc.clf.RemoteTarget("212F", sensf_res=bytearray(sensf_res))

    def close(self) -> None:
        self.closed = True


def scripted_reader(
    frontends: list[ScriptedFrontend], **overrides: Any
) -> tuple[CardReader, list[ScriptedFrontend]]:
    opened: list[ScriptedFrontend] = []

    def open_next(_device_path: str) -> ScriptedFrontend:
        opened.append(frontends.pop(0))
        return opened[-1]

    settings = reader_settings(1, poll_interval_ms=1, error_backoff_ms=10, **overrides)
    return CardReader(settings, open_frontend=open_next), opened


def test_a_poll_that_raises_reopens_the_device_and_keeps_polling() -> None:
    first = ScriptedFrontend([None, OSError(19, "No such device")])
    second = ScriptedFrontend([None, CARD_A])
    card_reader, opened = scripted_reader([first, second])
    card_reader.start()
    try:
        tap = card_reader.next_tap(2.0)
    finally:
        card_reader.stop()
    assert tap is not None
    assert tap.idm == CARD_A
    assert opened == [first, second]
    assert first.closed
    assert second.closed


def test_a_full_queue_drops_the_newest_taps() -> None:
    cards: list[Step] = [CARD_A, CARD_B, "1111111111111111", "2222222222222222"]
    frontend = ScriptedFrontend(list(cards))
    card_reader, _ = scripted_reader([frontend], tap_queue_max=2)
    card_reader.start()
    deadline = time.monotonic() + 30.0
    while frontend.polls <= len(cards):
        assert time.monotonic() < deadline, "the reader stopped polling"
        time.sleep(0.01)
    card_reader.stop()
    kept = [card_reader.next_tap(0.01) for _ in range(3)]
    assert [tap.idm if tap else None for tap in kept] == [CARD_A, CARD_B, None]


def test_opening_a_missing_device_raises_reader_unavailable() -> None:
    card_reader = CardReader(ReaderSettings(device_path="udp:127.0.0.1:notaport"))
    with pytest.raises(ReaderUnavailable):
        card_reader.start()
    assert not card_reader.running


async def test_taps_bridges_to_asyncio_and_ends_when_the_reader_stops() -> None:
    frontend = ScriptedFrontend([None, None, CARD_A, CARD_A, None, CARD_B])
    card_reader, _ = scripted_reader([frontend])
    card_reader.start()
    received: list[str] = []
    ticks = 0

    async def tick() -> None:
        # Proves the loop keeps running while the iterator waits for a card.
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    ticker = asyncio.create_task(tick())
    try:
        async with asyncio.timeout(30.0):
            async for tap in card_reader.taps():
                received.append(tap.idm)
                if len(received) == 2:
                    card_reader.stop()
    finally:
        ticker.cancel()
    assert received == [CARD_A, CARD_B]
    assert ticks > 1


# Pure parts ---------------------------------------------------------------------------


def test_debounce_window_runs_from_when_the_card_was_last_seen() -> None:
    debouncer = Debouncer(window_s=1.0)
    assert debouncer.is_new_tap(CARD_A, now_s=10.0)
    # Seen every 0.9 s for a long time: still the same tap.
    assert not any(debouncer.is_new_tap(CARD_A, now_s=10.0 + 0.9 * i) for i in range(1, 10))
    # Away for longer than the window: a new tap.
    assert debouncer.is_new_tap(CARD_A, now_s=10.0 + 0.9 * 9 + 1.01)


def test_a_different_card_is_a_new_tap_at_once() -> None:
    debouncer = Debouncer(window_s=1.0)
    assert debouncer.is_new_tap(CARD_A, now_s=0.0)
    assert debouncer.is_new_tap(CARD_B, now_s=0.01)
    assert debouncer.is_new_tap(CARD_A, now_s=0.02)


def test_a_sensf_response_without_a_system_code_is_malformed() -> None:
    with pytest.raises(MalformedCardResponse):
        tap_from_sensf_response(bytes.fromhex("01" + CARD_A + PMM), read_at_ms=0)
    with pytest.raises(MalformedCardResponse):
        tap_from_sensf_response(bytes.fromhex("02" + CARD_A + PMM + "fe00"), read_at_ms=0)


def test_the_emulator_refuses_a_bad_idm_and_a_taken_port(port: int) -> None:
    with pytest.raises(ValueError, match="IDm"):
        emulate_card(f"127.0.0.1:{port}", "not-an-idm")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("0.0.0.0", port))
        with pytest.raises(OSError, match="not free"):
            emulate_card(f"127.0.0.1:{port}", CARD_A)


def test_a_reader_told_to_wait_for_its_device_reads_once_it_is_plugged_in() -> None:
    plugged = ScriptedFrontend([None, CARD_A])
    attempts: list[str] = []

    def open_when_plugged(device_path: str) -> ScriptedFrontend:
        attempts.append(device_path)
        if len(attempts) < 3:
            raise OSError(19, "No such device")
        return plugged

    settings = reader_settings(1, poll_interval_ms=1, error_backoff_ms=10)
    card_reader = CardReader(settings, open_frontend=open_when_plugged)
    with pytest.raises(ReaderUnavailable):
        card_reader.start()  # Not told to wait: a missing device is an error at once.
    card_reader.start(wait_for_device=True)
    try:
        assert card_reader.running
        tap = card_reader.next_tap(2.0)
    finally:
        card_reader.stop()
    assert tap is not None and tap.idm == CARD_A
    # Refused once by `start()`, then not yet there once, then opened by the thread.
    assert len(attempts) == 3 and plugged.closed
