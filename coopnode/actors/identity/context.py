"""What every identity part shares: the store, the clock, the settings, the keys, the
password hasher and the wallet.

One `IdentityContext` is made by the service and handed to each part, which keeps it and
reads what it needs; no part inherits from another. Every method that touches the store
runs on the identity actor's event loop without awaiting inside a transaction, so each
step reads and writes its records atomically without locks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from coopnode.actors.identity.keys import IdentityKeys
from coopnode.actors.identity.passwords import PasswordHasher
from coopnode.actors.identity.store import IdentityStore
from coopnode.domain.identity import Throttle, throttle_failed
from coopnode.domain.messages import Operation, Result
from coopnode.settings import Settings


class WalletPort(Protocol):
    """The wallet as identity uses it: `WalletClient`, or a store in tests."""

    async def submit(self, op: Operation) -> Result: ...


class IdentityContext:
    def __init__(
        self,
        settings: Settings,
        store: IdentityStore,
        *,
        clock: Callable[[], float],
        keys: IdentityKeys,
        hasher: PasswordHasher,
        wallet: WalletPort,
    ) -> None:
        self.settings = settings
        self.bounds = settings.identity
        self.policy = settings.verification.passcode_policy()
        self.store = store
        self.clock = clock
        self.keys = keys
        self.hasher = hasher
        self.wallet = wallet

    def failed(self, throttle: Throttle) -> Throttle:
        """`throttle` with one more failure: a lock-out once `signin_failures_max` are spent."""
        return throttle_failed(
            throttle,
            self.clock(),
            failures_max=self.bounds.signin_failures_max,
            lockout_s=self.bounds.lockout_s,
        )
