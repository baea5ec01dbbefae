"""The reader actor's core: FeliCa cards read with nfcpy, one tap at a time, debounced.

`CardReader` polls an nfcpy device (`usb` for a Sony RC-S380, `udp:HOST:PORT` for a card
emulated by `coopnode.reader.emulator`) for FeliCa at 212 kbps only, since polling the A and
B types as well costs every tap seconds. A card left on the reader is one tap: the same IDm
seen again within `ReaderSettings.debounce_s` of when it was last seen is not a new tap; a
different card is a new tap at once.

nfcpy blocks in select(), so polling runs in its own thread and hands taps over a bounded
queue: a full queue drops the newest tap with a warning. `next_tap` takes taps from a
thread; `taps()` takes them from asyncio without blocking the event loop.

Errors, drawn as a tree:

    CoopNodeError
    └── OperatingError
        ├── ReaderUnavailable      the nfcpy device could not be opened at start
        └── MalformedCardResponse  a card answered polling with a short or odd response
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Protocol

import msgspec
import nfc
import nfc.clf
import structlog

from coopnode.actors.kernel.clock import system_ms
from coopnode.domain.errors import OperatingError
from coopnode.reader.udp_transport import open_frontend
from coopnode.settings import ReaderSettings

log = structlog.stdlib.get_logger(__name__)

# FeliCa at 212 kbps: the only technology the tills accept.
FELICA_BIT_RATE = "212F"
# SENSF_REQ: any system code (FFFF), request code 01 (answer with the system code), one
# time slot.
SENSF_REQUEST = bytes.fromhex("00FFFF0100")
# SENSF_RES: response code 01, IDm (8 bytes), PMm (8 bytes), system code (2 bytes).
SENSF_RESPONSE_LENGTH = 19
_RESPONSE_CODE_SENSF = 0x01

HexId = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{16}$")]
SystemCode = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF)]
EpochMs = Annotated[int, msgspec.Meta(ge=0)]


class Tap(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One card presented to the reader."""

    idm: HexId  # The card's manufacture ID, 16 lowercase hex digits.
    pmm: HexId  # The card's manufacture parameters (IC type, timings).
    system_code: SystemCode
    read_at_ms: EpochMs  # Wall-clock time of the read, milliseconds since the epoch.


class ReaderUnavailable(OperatingError):
    """The nfcpy device could not be opened."""

    def __init__(self, device_path: str, detail: str) -> None:
        super().__init__("reader_unavailable", f"cannot open card reader {device_path!r}: {detail}")


class MalformedCardResponse(OperatingError):
    """A card's answer to polling is not a SENSF_RES with a system code."""

    def __init__(self, detail: str) -> None:
        super().__init__("malformed_card_response", f"malformed card response: {detail}")


def tap_from_sensf_response(sensf_res: bytes, read_at_ms: int) -> Tap:
    """Build a Tap from a SENSF_RES; raise MalformedCardResponse if it is not one."""
    if len(sensf_res) != SENSF_RESPONSE_LENGTH:
        raise MalformedCardResponse(
            f"{len(sensf_res)} bytes, expected {SENSF_RESPONSE_LENGTH} with a system code"
        )
    if sensf_res[0] != _RESPONSE_CODE_SENSF:
        raise MalformedCardResponse(f"response code {sensf_res[0]:#04x}, expected 0x01")
    return Tap(
        idm=sensf_res[1:9].hex(),
        pmm=sensf_res[9:17].hex(),
        system_code=int.from_bytes(sensf_res[17:19], "big"),
        read_at_ms=read_at_ms,
    )


class Debouncer:
    """Tells a new tap from a card that is still lying on the reader."""

    def __init__(self, window_s: float) -> None:
        if window_s <= 0:
            raise ValueError(f"debounce window must be positive, got {window_s}")
        self._window_s = window_s
        self._last_idm: str | None = None
        self._last_seen_s = 0.0

    def is_new_tap(self, idm: str, now_s: float) -> bool:
        """Record that `idm` was seen at monotonic time `now_s`; True if it is a new tap."""
        same_card = idm == self._last_idm and now_s - self._last_seen_s <= self._window_s
        self._last_idm = idm
        self._last_seen_s = now_s
        return not same_card


class Frontend(Protocol):
    """The part of `nfc.ContactlessFrontend` the reader uses."""

    def sense(self, *targets: Any, **options: Any) -> Any: ...

    def close(self) -> None: ...


def open_contactless_frontend(device_path: str) -> Frontend:
    """Open an nfcpy device; nfcpy raises OSError (ENODEV) when none is found."""
    frontend: Frontend = open_frontend(device_path)
    return frontend


class CardReader:
    """Polls one nfcpy device in a thread and queues debounced taps."""

    def __init__(
        self,
        settings: ReaderSettings,
        open_frontend: Callable[[str], Frontend] = open_contactless_frontend,
    ) -> None:
        self._settings = settings
        self._open_frontend = open_frontend
        self._queue: queue.Queue[Tap] = queue.Queue(maxsize=settings.tap_queue_max)
        self._debouncer = Debouncer(settings.debounce_s)
        self._stop_requested = threading.Event()
        self._thread: threading.Thread | None = None
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._waiters_lock = threading.Lock()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stop_requested.is_set()

    def start(self, *, wait_for_device: bool = False) -> None:
        """Open the device and start polling; raise ReaderUnavailable if it cannot open.

        With `wait_for_device`, a device that cannot open yet is tried again every
        `error_backoff_ms` by the polling thread instead (a kiosk whose reader is plugged
        in after the node started, or unplugged while it restarted).
        """
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the card reader is already running")
        frontend: Frontend | None
        try:
            frontend = self._open(self._settings.device_path)
        except ReaderUnavailable as error:
            if not wait_for_device:
                raise
            log.warning("card reader unavailable; waiting for it", reason=error.message)
            frontend = None
        self._stop_requested.clear()
        self._thread = threading.Thread(
            target=self._run, args=(frontend,), name="coopnode-card-reader", daemon=True
        )
        self._thread.start()
        log.info("card reader started", device_path=self._settings.device_path)

    def stop(self) -> None:
        """Stop polling and close the device; waits at most `stop_timeout_s`."""
        self._stop_requested.set()
        thread = self._thread
        if thread is not None:
            thread.join(self._settings.stop_timeout_s)
            if thread.is_alive():
                log.error(
                    "card reader thread did not stop in time; left behind as a daemon",
                    stop_timeout_s=self._settings.stop_timeout_s,
                )
        self._wake_waiters()

    def next_tap(self, timeout_s: float) -> Tap | None:
        """The next tap, waiting at most `timeout_s`; None if no card was tapped."""
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None

    async def taps(self) -> AsyncIterator[Tap]:
        """Yield taps in asyncio; ends when the reader has stopped and no tap is left.

        The reader thread only wakes the loop; taps leave the queue on the loop's own
        thread, at the moment they are yielded, so cancelling a consumer loses no tap (an
        executor thread blocked in `next_tap` would take one and could drop it).
        """
        wakeup = asyncio.Event()
        waiter = (asyncio.get_running_loop(), wakeup)
        with self._waiters_lock:
            self._waiters.append(waiter)
        try:
            while True:
                # Cleared before looking, so a tap queued after the look sets it again.
                wakeup.clear()
                try:
                    tap = self._queue.get_nowait()
                except queue.Empty:
                    if not self.running:
                        return
                    await wakeup.wait()
                    continue
                yield tap
        finally:
            with self._waiters_lock:
                self._waiters.remove(waiter)

    def _open(self, device_path: str) -> Frontend:
        try:
            return self._open_frontend(device_path)
        except (OSError, ValueError, ImportError) as error:
            raise ReaderUnavailable(device_path, str(error) or type(error).__name__) from error

    def _run(self, frontend: Frontend | None) -> None:
        poll_interval_s = self._settings.poll_interval_ms / 1000
        if frontend is None:
            frontend = self._open_when_available()
        try:
            while frontend is not None and not self._stop_requested.is_set():
                try:
                    self._poll_once(frontend)
                except Exception:
                    # nfcpy raised something it does not handle itself (a device gone,
                    # a driver in a bad state): start again from a freshly opened device.
                    log.exception("card reader poll failed; reopening the device")
                    frontend = self._reopen(frontend)
                else:
                    self._stop_requested.wait(poll_interval_s)
        finally:
            if frontend is not None:
                _close_quietly(frontend)

    def _reopen(self, frontend: Frontend) -> Frontend | None:
        """Close the device and open it again, retrying until it opens or stop is asked."""
        _close_quietly(frontend)
        return self._open_when_available()

    def _open_when_available(self) -> Frontend | None:
        """Open the device, retrying at a steady pace; None when stop is asked first."""
        backoff_s = self._settings.error_backoff_ms / 1000
        while not self._stop_requested.wait(backoff_s):
            try:
                return self._open(self._settings.device_path)
            except ReaderUnavailable as error:
                log.warning("card reader still unavailable", reason=error.message)
        return None

    def _poll_once(self, frontend: Frontend) -> None:
        target = frontend.sense(
            nfc.clf.RemoteTarget(FELICA_BIT_RATE, sensf_req=bytearray(SENSF_REQUEST)),
            iterations=1,
        )
        if target is None or target.sensf_res is None:
            return
        seen_at_s = time.monotonic()
        try:
            tap = tap_from_sensf_response(bytes(target.sensf_res), system_ms())
        except MalformedCardResponse as error:
            log.warning("card ignored", reason=error.message)
            return
        if self._debouncer.is_new_tap(tap.idm, seen_at_s):
            self._deliver(tap)

    def _deliver(self, tap: Tap) -> None:
        try:
            self._queue.put_nowait(tap)
        except queue.Full:
            # Only the last four hex digits: an IDm identifies a member's card.
            log.warning(
                "tap dropped: the tap queue is full",
                idm_suffix=tap.idm[-4:],
                tap_queue_max=self._settings.tap_queue_max,
            )
            return
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        with self._waiters_lock:
            waiters = list(self._waiters)
        for loop, wakeup in waiters:
            try:
                loop.call_soon_threadsafe(wakeup.set)
            except RuntimeError:
                # The loop has closed; its iterator went with it.
                continue


def _close_quietly(frontend: Frontend) -> None:
    try:
        frontend.close()
    except Exception:
        # Closing is best effort: a device that fails to close is reopened or dropped.
        log.warning("closing the card reader failed", exc_info=True)
