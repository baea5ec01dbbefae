"""argon2id password hashing (pynacl) in a bounded pool.

One hash at libsodium's INTERACTIVE cost takes 64 MiB and about a tenth of a second of a
core. A login storm must therefore queue, not run every hash at once: at most
`password_hash_workers` hashes run at a time (so memory is bounded by workers × cost), at
most `password_queue_max` wait for a worker, and one more is refused at once with
`HasherBusy` so the caller can answer "busy, try again" instead of holding the request.

libsodium runs without Python's GIL (cffi releases it around C calls), so a thread per
worker uses a core each.

Unknown accounts are verified against a dummy hash made at the same cost, so a sign-in
for an address that does not exist takes as long as one with a wrong password.
"""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id

from coopnode.settings import IdentitySettings


class HasherBusy(Exception):
    """Every worker is busy and the queue is full; the caller should retry shortly."""


class PasswordHasher:
    def __init__(self, settings: IdentitySettings) -> None:
        self._opslimit = settings.argon2_opslimit
        self._memlimit_bytes = settings.argon2_memlimit_kib * 1024
        self._workers = settings.password_hash_workers
        self._queue_max = settings.password_queue_max
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="argon2")
        self._slots = asyncio.Semaphore(self._workers)
        self._waiting = 0
        # Made once, with a random password nobody knows, at the configured cost.
        self._dummy = argon2id.str(
            secrets.token_bytes(16), opslimit=self._opslimit, memlimit=self._memlimit_bytes
        )

    @property
    def waiting(self) -> int:
        return self._waiting

    def _hash_now(self, password: bytes) -> bytes:
        hashed: bytes = argon2id.str(
            password, opslimit=self._opslimit, memlimit=self._memlimit_bytes
        )
        return hashed

    @staticmethod
    def _verify_now(hashed: bytes, password: bytes) -> bool:
        try:
            return bool(argon2id.verify(hashed, password))
        except (nacl.exceptions.InvalidkeyError, nacl.exceptions.RuntimeError):
            return False

    async def _run(self, function: object, *args: bytes) -> object:
        if self._waiting >= self._queue_max + self._workers:
            raise HasherBusy("every password worker is busy")
        self._waiting += 1
        try:
            async with self._slots:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._pool, function, *args)  # type: ignore[arg-type]
        finally:
            self._waiting -= 1

    async def hash(self, password: bytes) -> bytes:
        result = await self._run(self._hash_now, password)
        if not isinstance(result, bytes):
            raise TypeError("argon2id returned no hash")
        return result

    async def verify(self, hashed: bytes | None, password: bytes) -> bool:
        """Check a password; None (an unknown account) checks the dummy and answers False."""
        if hashed is None or not hashed:
            await self._run(self._verify_now, self._dummy, password)
            return False
        return bool(await self._run(self._verify_now, hashed, password))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
