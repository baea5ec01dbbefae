"""An identity service in this process over real LMDB stores, with a clock the test moves.

The wallet is a real one-shard `WalletStore` on disk, called directly instead of through
Ray; the service, the passcode and session rules and the store are the node's own.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import msgspec

from coopnode.actors.identity.actor import build_service, identity_key_path, passcode_key_path
from coopnode.actors.identity.messages import Answer, IdentityReply, IdentityRequest
from coopnode.actors.identity.passwords import PasswordHasher
from coopnode.actors.identity.service import IdentityService
from coopnode.actors.identity.store import IdentityStore
from coopnode.actors.notify.messages import MailMessage, Notification
from coopnode.actors.wallet.store import WalletStore
from coopnode.domain.messages import Operation, Result
from coopnode.settings import Settings

# The cheapest argon2id libsodium allows: the rules are the same at any cost.
FAST_IDENTITY = {"argon2_opslimit": 1, "argon2_memlimit_kib": 8}


class Clock:
    def __init__(self, start_s: float = 1_780_000_000.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


class LocalWallet:
    """One wallet shard on disk, answering operations one batch at a time."""

    def __init__(self, store: WalletStore) -> None:
        self.store = store

    async def submit(self, op: Operation) -> Result:
        return self.store.apply_batch([op])[0]


def make_settings(data_dir: Path, **identity: Any) -> Settings:
    raw = msgspec.to_builtins(Settings())
    raw["node"]["data_dir"] = str(data_dir)
    raw["wallet"]["shard_count"] = 1
    raw["identity"].update({**FAST_IDENTITY, **identity})
    return msgspec.convert(raw, Settings)


class Harness:
    def __init__(self, data_dir: Path, **identity: Any) -> None:
        self.settings = make_settings(data_dir, **identity)
        for path in (passcode_key_path(self.settings), identity_key_path(self.settings)):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(32))
        self.clock = Clock()
        self.wallet_store = WalletStore(
            data_dir / "wallet",
            shard_index=0,
            shard_count=1,
            coops=self.settings.coops,
            map_size_bytes=64 * 1024 * 1024,
            fsync=False,
            clock_ms=lambda: int(self.clock() * 1000),
        )
        self.wallet = LocalWallet(self.wallet_store)
        built = build_service(self.settings, self.wallet, self.clock)
        self.service: IdentityService = built[0]
        self.store: IdentityStore = built[1]
        self.hasher: PasswordHasher = built[2]
        self.sent: list[Notification] = []

    async def call(self, request: IdentityRequest) -> IdentityReply:
        answer: Answer = await self.service.handle(request)
        self.sent.extend(answer.notifications)
        return answer.reply

    def last_mail(self, to: str) -> MailMessage:
        for message in reversed(self.sent):
            if isinstance(message, MailMessage) and message.to == to:
                return message
        raise LookupError(f"no mail to {to}")

    def close(self) -> None:
        self.hasher.close()
        self.store.close()
        self.wallet_store.close()
