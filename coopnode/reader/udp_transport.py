"""nfcpy's UDP transport, kept on loopback: the emulated card and the reader that polls it.

nfcpy's `udp:HOST:PORT` device emulates the radio link between a reader and a card over
UDP datagrams. Its card side binds `0.0.0.0:PORT` and its reader side sends from a socket
the kernel binds to every address, so on a machine with a network address anyone who can
reach it could present a forged card to the demo's reader (or poll the emulated cards).
The emulator is for one machine only: this device binds both sides to the loopback
address the path names, and refuses a path that names any other host.

`open_frontend(path)` opens an `nfc.ContactlessFrontend` on `path`, with this device for
`udp:` paths and nfcpy's own search for every other (`usb` for a Sony RC-S380).
"""

from __future__ import annotations

import errno
import ipaddress
import time
from typing import Any

import nfc
import nfc.clf
import nfc.clf.udp

UDP_PREFIX = "udp:"


class UdpTransportError(ValueError):
    """A `udp:` device path that names no loopback address."""


def parse_udp_path(path: str) -> tuple[str, int]:
    """`udp:HOST:PORT` → (HOST, PORT), HOST a loopback address; raise UdpTransportError."""
    host, separator, port_text = path.removeprefix(UDP_PREFIX).rpartition(":")
    if not separator or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise UdpTransportError(f"expected udp:HOST:PORT with a port 1..65535, got {path!r}")
    try:
        # nfcpy's transport speaks IPv4 only.
        loopback = ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UdpTransportError(
            f"{path!r}: the UDP transport is for an emulated card on this machine; "
            "name an IPv4 loopback address, e.g. udp:127.0.0.1:PORT"
        )
    return host, int(port_text)


class LoopbackUdpDevice(nfc.clf.udp.Device):  # type: ignore[misc]  # nfcpy has no types.
    """nfcpy's UDP device with both of its sides bound to the loopback address."""

    def _bind_socket(self, time_to_return: float) -> bool:
        # nfcpy's card side listens on the path's port: here on loopback only. As nfcpy's
        # own, a port in use means no card this time, and any other error is raised.
        if time.time() >= time_to_return:
            return False
        try:
            self.socket.bind(self.addr)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise
        return True

    def _send_data(self, brty: str, data: Any, addr: Any) -> Any:
        # nfcpy's reader side sends from a socket it never binds, which the kernel then
        # binds to every address: bind it to loopback first.
        if self.socket.getsockname()[1] == 0:
            self.socket.bind((self.addr[0], 0))
        return super()._send_data(brty, data, addr)


def open_frontend(path: str) -> Any:
    """An `nfc.ContactlessFrontend` on `path`; raises OSError when no device is found."""
    if not path.startswith(UDP_PREFIX):
        return nfc.ContactlessFrontend(path)
    host, port = parse_udp_path(path)
    device = LoopbackUdpDevice(host, port)
    device._path = f"udp:{host}:{port}"
    device._vendor_name, device._device_name, device._chipset_name = ("Linux", "IP-Stack", "UDP")
    frontend = nfc.ContactlessFrontend()
    with frontend.lock:
        frontend.device = device
    return frontend
