"""A newly registered till's key file, held in the front's memory for one download.

The console makes the till's Ed25519 key pair, registers the public key, and keeps the
key file (`reader.till_key.TillKeyFile`, the file `coopnode till run --key` reads) until
the first download takes it, `live.key_download_ttl_s` passes, or the till is retired;
then it is gone, and the node has no copy (it never wrote one to disk). A lost download
is mended by retiring the till and registering a new one.

The key is held by the front that registered the till: behind a load balancer the
download must reach the same front (the page downloads it right after registering).
At most `live.key_downloads_pending_max` keys wait at once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from coopnode.reader.till_key import TillKeyFile


class KeysPendingFull(Exception):
    """As many keys wait for their download as the bound allows."""


class PendingKeys:
    def __init__(self, ttl_s: float, pending_max: int, clock_s: Callable[[], float]) -> None:
        self._ttl_s = ttl_s
        self._pending_max = pending_max
        self._clock_s = clock_s
        # Till id → (expires at, key file), oldest first.
        self._keys: OrderedDict[str, tuple[float, TillKeyFile]] = OrderedDict()

    def _expire(self) -> None:
        now_s = self._clock_s()
        while self._keys:
            till_id, (expires_s, _) = next(iter(self._keys.items()))
            if expires_s > now_s:
                return
            del self._keys[till_id]

    def check_room(self) -> None:
        """Raise KeysPendingFull before a till is registered whose key could not be held."""
        self._expire()
        if len(self._keys) >= self._pending_max:
            raise KeysPendingFull(
                f"{len(self._keys)} till keys wait for their download; download or let expire"
            )

    def hold(self, key_file: TillKeyFile) -> None:
        self._keys[key_file.till_id] = (self._clock_s() + self._ttl_s, key_file)

    def waiting(self, till_id: str) -> bool:
        self._expire()
        return till_id in self._keys

    def take(self, till_id: str) -> TillKeyFile | None:
        """The key file, once; None when it was taken, expired or never held here."""
        self._expire()
        held = self._keys.pop(till_id, None)
        return None if held is None else held[1]

    def drop(self, till_id: str) -> None:
        self._keys.pop(till_id, None)
