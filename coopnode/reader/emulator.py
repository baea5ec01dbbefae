"""A FeliCa card emulated over nfcpy's UDP transport, for tests and demos without hardware.

    python -m coopnode.reader.emulator --udp 127.0.0.1:54321 --idm 0123456789abcdef \\
        [--taps N] [--present-s 1.5] [--gap-s 0.5]

The card is "presented" by listening on the UDP port (on HOST, a loopback address: see
`coopnode.reader.udp_transport`; the reader sends to HOST:PORT), kept present for `present_s`, and
"removed" by closing the port, then presented again after `gap_s`, `taps` times (0 is
forever). A reader that finds no card on the UDP transport waits 1 s for an answer, so a
card must stay present a little over 1 s to be sure to be seen.

Each presence is one `ContactlessFrontend.connect(card=...)` call: `on-startup` sets the
card's SENSF_RES (IDm, PMm, system code), nfcpy answers polling by itself, and when a
reader sends a command beyond polling, `on-connect` returns False so that this module runs
the command loop of nfcpy's `Type3TagEmulation` with a timeout on every `send_response`:
a reader that dies mid-session then sends the card back to listening instead of wedging it.
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import sys
import threading
import time
from types import FrameType
from typing import Any

import nfc
import nfc.clf
import nfc.tag
import structlog

from coopnode.logs import configure_logging
from coopnode.reader.udp_transport import UDP_PREFIX, open_frontend, parse_udp_path
from coopnode.settings import LogSettings

log = structlog.stdlib.get_logger(__name__)

# A FeliCa Standard card (IC type 0x20, RC-S962), as the co-op's member cards are.
DEFAULT_PMM = "0120220427674eff"
# The FeliCa common area, which every FeliCa Standard card has.
DEFAULT_SYSTEM_CODE = "fe00"
# A real reader sends its next command within milliseconds, so half a second of silence
# means it has gone away and the card goes back to listening. It must stay below the 1 s a
# reader on the UDP transport waits for an answer to polling: a card still serving a dead
# reader answers to that reader's address, and only this timeout frees it for a new one.
DEFAULT_COMMAND_TIMEOUT_S = 0.5
_RESPONSE_CODE_SENSF = "01"
_HEX_16 = re.compile(r"^[0-9a-fA-F]{16}$")
_HEX_4 = re.compile(r"^[0-9a-fA-F]{4}$")


def build_sensf_response(idm: str, pmm: str, system_code: str) -> bytes:
    """The SENSF_RES a card answers polling with: 01, IDm, PMm, system code."""
    if not _HEX_16.match(idm):
        raise ValueError(f"IDm must be 16 hex digits, got {idm!r}")
    if not _HEX_16.match(pmm):
        raise ValueError(f"PMm must be 16 hex digits, got {pmm!r}")
    if not _HEX_4.match(system_code):
        raise ValueError(f"system code must be 4 hex digits, got {system_code!r}")
    return bytes.fromhex(_RESPONSE_CODE_SENSF + idm + pmm + system_code)


def emulate_card(
    udp_address: str,
    idm: str,
    taps: int = 1,
    present_s: float = 1.5,
    gap_s: float = 0.5,
    *,
    pmm: str = DEFAULT_PMM,
    system_code: str = DEFAULT_SYSTEM_CODE,
    command_timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
    stop: threading.Event | None = None,
) -> int:
    """Present a card `taps` times (0: until `stop` is set); return how many were presented.

    `stop` is checked between presences and between listens, so a stop takes effect within
    one `present_s` at most.
    """
    if taps < 0 or present_s <= 0 or gap_s < 0 or command_timeout_s <= 0:
        raise ValueError("taps must be >= 0, present_s and command_timeout_s > 0, gap_s >= 0")
    sensf_res = build_sensf_response(idm, pmm, system_code)
    host, port = parse_udp_path(UDP_PREFIX + udp_address)
    _ensure_port_free(host, port)
    stop = stop if stop is not None else threading.Event()
    presented = 0
    while (taps == 0 or presented < taps) and not stop.is_set():
        if presented > 0 and stop.wait(gap_s):
            break
        _present(f"udp:{host}:{port}", sensf_res, present_s, command_timeout_s, stop)
        presented += 1
        log.info("card removed", idm_suffix=idm[-4:].lower(), taps_presented=presented)
    return presented


def _ensure_port_free(host: str, port: int) -> None:
    # nfcpy's listen returns at once when the port is taken, and connect() would then spin
    # until the presence ends; refusing to start says what is wrong instead.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise OSError(error.errno, f"UDP port {port} is not free: {error.strerror}") from error


def _present(
    path: str,
    sensf_res: bytes,
    present_s: float,
    command_timeout_s: float,
    stop: threading.Event,
) -> None:
    """Keep the card present on `path` for `present_s`; closing the frontend removes it."""
    deadline = time.monotonic() + present_s

    def on_startup(target: Any) -> Any:
        target.brty = "212F"
        target.sensf_res = bytearray(sensf_res)
        return target

    def terminate() -> bool:
        return stop.is_set() or time.monotonic() >= deadline

    with open_frontend(path) as frontend:
        while not terminate():
            remaining_s = deadline - time.monotonic()
            card = frontend.connect(
                card={
                    "on-startup": on_startup,
                    "on-connect": lambda card: False,
                    "timeout": max(remaining_s, 0.001),
                },
                terminate=terminate,
            )
            if isinstance(card, nfc.tag.TagEmulation):
                _serve_commands(card, deadline, command_timeout_s)


def _serve_commands(card: Any, deadline: float, command_timeout_s: float) -> None:
    """Answer a reader's commands until it leaves, goes quiet, or the card is removed."""
    response = _respond(card, card.cmd)
    while (remaining_s := deadline - time.monotonic()) > 0:
        try:
            command = card.send_response(response, min(command_timeout_s, remaining_s))
        except nfc.clf.BrokenLinkError:
            return  # The reader switched its field off, as it does before polling again.
        except nfc.clf.TimeoutError:
            return  # The reader went quiet or died: listen again rather than wedge.
        except nfc.clf.CommunicationError:
            response = None  # A garbled frame: stay silent, as a real card does.
            continue
        response = _respond(card, command) if command else None


def _respond(card: Any, command: bytearray) -> bytearray | None:
    try:
        response: bytearray | None = card.process_command(command)
    except (IndexError, KeyError, ValueError):
        # nfcpy's Type3TagEmulation indexes into the command without checking its length;
        # a real card stays silent on a malformed command, so this one does too.
        # Its length only: a FeliCa command carries the card's IDm.
        log.warning("malformed command ignored", command_bytes=len(command))
        return None
    return response


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m coopnode.reader.emulator",
        description="Emulate a FeliCa card over nfcpy's UDP transport.",
    )
    parser.add_argument("--udp", required=True, metavar="HOST:PORT", help="reader's address")
    parser.add_argument("--idm", required=True, help="16 hex digits")
    parser.add_argument("--pmm", default=DEFAULT_PMM, help="16 hex digits")
    parser.add_argument("--system-code", default=DEFAULT_SYSTEM_CODE, help="4 hex digits")
    parser.add_argument("--taps", type=int, default=1, help="times to present; 0: forever")
    parser.add_argument("--present-s", type=float, default=1.5, help="seconds on the reader")
    parser.add_argument("--gap-s", type=float, default=0.5, help="seconds between taps")
    parser.add_argument(
        "--command-timeout-s", type=float, default=DEFAULT_COMMAND_TIMEOUT_S,
        help="silence after which a reader is taken to be gone",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = _parse_args(argv)
    configure_logging(LogSettings())
    stop = threading.Event()

    def on_signal(_signal_number: int, _frame: FrameType | None) -> None:
        stop.set()

    # nfcpy's connect() swallows KeyboardInterrupt, so a signal sets an event instead.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        emulate_card(
            arguments.udp,
            arguments.idm,
            taps=arguments.taps,
            present_s=arguments.present_s,
            gap_s=arguments.gap_s,
            pmm=arguments.pmm,
            system_code=arguments.system_code,
            command_timeout_s=arguments.command_timeout_s,
            stop=stop,
        )
    except (ValueError, OSError) as error:
        print(f"emulator: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
