"""Ed25519 signatures of till frames, checked on a thread of their own, in batches.

Verifying one signature costs about 55 µs here, two thirds of what the front spends on a
tap in Python. pynacl calls libsodium through cffi, which releases the GIL for the call,
so a worker thread verifies while the event loop reads, decides and answers other frames
on the other core. The thread takes every signature waiting at once and answers them
with one wake-up of the loop, so the hand-over costs little when taps are many.

The number waiting is bounded by the till channel itself: every frame holds one of its
connection's `in_flight_max` slots until it is answered.
"""

from __future__ import annotations

import asyncio
import threading

from nacl.signing import VerifyKey

from coopnode.domain.till_frames import Signed
from coopnode.till_keys import verify_signed

_Job = tuple[VerifyKey, Signed, asyncio.Future[bool]]


class SignatureVerifier:
    def __init__(self) -> None:
        self._pending: list[_Job] = []
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="till-signatures", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; frames still waiting are cancelled, not refused."""
        with self._lock:
            self._stopping = True
            self._wakeup.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            left, self._pending = self._pending, []
        for _, _, future in left:
            future.cancel()

    def check(self, key: VerifyKey, frame: Signed) -> asyncio.Future[bool]:
        """A future that says whether `frame` was signed with `key`."""
        if self._loop is None:
            raise RuntimeError("the signature verifier is not started")
        future: asyncio.Future[bool] = self._loop.create_future()
        with self._lock:
            if self._stopping:
                future.cancel()
                return future
            self._pending.append((key, frame, future))
            # Set under the lock: the worker clears it under the same lock when it takes
            # the batch, so a job added after that always wakes it again. Under load it is
            # mostly set already, and setting an Event costs more than asking.
            if not self._wakeup.is_set():
                self._wakeup.set()
        return future

    def _run(self) -> None:
        while True:
            self._wakeup.wait()
            with self._lock:
                batch, self._pending = self._pending, []
                self._wakeup.clear()
                stopping = self._stopping
            if batch and self._loop is not None:
                results = [verify_signed(key, frame) for key, frame, _ in batch]
                try:
                    self._loop.call_soon_threadsafe(_resolve, batch, results)
                except RuntimeError:
                    return  # The loop has closed: nobody waits for these answers.
            if stopping:
                return


def _resolve(batch: list[_Job], results: list[bool]) -> None:
    for (_, _, future), valid in zip(batch, results, strict=True):
        if not future.done():
            future.set_result(valid)
