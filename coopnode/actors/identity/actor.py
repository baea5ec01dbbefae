"""The identity actor: one Ray actor that owns the identity store, and the front's client.

One actor owns both identity and verification because their records change together: a
step that checks a passcode also moves its flow, and the last step of a mail change also
rewrites the account and its address index. With both in one LMDB environment and one
owner, each step is one transaction; split across two actors it would need a protocol to
keep them consistent. The load is small — sign-ins are bounded by argon2id at tens a
second — so one actor is no bottleneck; the costly part, hashing, runs in the actor's
bounded pool of threads (see `passwords`).

The store is used from the actor's event loop only, so a step never interleaves with
another inside a transaction. A broken invariant crashes the actor on purpose; Ray
restarts it and the new process reopens the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path
from typing import Any, Protocol

import msgspec

from coopnode.actors.identity.answers import answer, refused
from coopnode.actors.identity.messages import (
    Answer,
    IdentityReason,
    IdentityRequest,
    answer_decoder,
    request_decoder,
    request_encoder,
)
from coopnode.actors.identity.passwords import PasswordHasher
from coopnode.actors.identity.service import IdentityService
from coopnode.actors.identity.store import IdentityStore
from coopnode.actors.kernel.copies import StoreCopy, copy_file
from coopnode.actors.kernel.placement import stores_home
from coopnode.actors.kernel.ray_calls import ActorCallFailed, answer_of, named_actor, settings_json
from coopnode.actors.wallet.client import WalletClient
from coopnode.domain.errors import InvariantViolation
from coopnode.logs import configure_logging, get_logger
from coopnode.metrics import Metrics
from coopnode.settings import Settings

log = get_logger(__name__)

IDENTITY_ACTOR_NAME = "identity"
_answer_encoder = msgspec.msgpack.Encoder()


def identity_path(settings: Settings) -> Path:
    return settings.data_path.resolve() / "identity"


def passcode_key_path(settings: Settings) -> Path:
    configured = settings.verification.passcode_key_file
    return Path(configured) if configured else settings.data_path / "passcode-key"


def identity_key_path(settings: Settings) -> Path:
    configured = settings.identity.identity_key_file
    return Path(configured) if configured else settings.data_path / "identity-key"


def key_from_file(path: Path) -> bytes:
    """A 32-byte key from a secret file (the text written by `read_or_create_secret`)."""
    text = path.read_text(encoding="ascii").strip()
    if len(text) < 32:
        raise InvariantViolation(f"{path} holds a secret shorter than 32 characters")
    return hashlib.sha256(text.encode()).digest()


def read_client_secrets(settings: Settings) -> dict[str, str]:
    return {
        client_id: Path(client.client_secret_file).read_text(encoding="utf-8").strip()
        for client_id, client in settings.identity.oauth_clients.items()
        if client.client_secret_file
    }


def build_service(
    settings: Settings, wallet: Any, clock: Any = time.time
) -> tuple[IdentityService, IdentityStore, PasswordHasher]:
    """The service over the store under the data directory; the actor and tests use it."""
    store = IdentityStore(
        identity_path(settings),
        map_size_bytes=settings.identity.lmdb_map_size_mib * 1024 * 1024,
        lock_wait_s=settings.wallet.lock_wait_s,
    )
    hasher = PasswordHasher(settings.identity)
    service = IdentityService(
        settings,
        store,
        hasher=hasher,
        wallet=wallet,
        passcode_key=key_from_file(passcode_key_path(settings)),
        identity_key=key_from_file(identity_key_path(settings)),
        clock=clock,
        client_secrets=read_client_secrets(settings),
    )
    return service, store, hasher


class IdentityActor:
    """The Ray actor. Undecorated, so Ray pickles the class by reference to this module."""

    def __init__(self, settings_json: bytes) -> None:
        settings = msgspec.json.decode(settings_json, type=Settings)
        configure_logging(settings.log)
        wallet = WalletClient.connect(settings, Metrics())
        self._settings = settings
        self._service, self._store, self._hasher = build_service(settings, wallet)
        log.info("identity actor ready", pid=os.getpid())

    async def call(self, raw: bytes) -> bytes:
        request = request_decoder.decode(raw)
        try:
            result = await self._service.handle(request)
        except InvariantViolation as error:
            # Broken records: stop now; Ray restarts the actor, which reopens the store.
            log.critical("identity invariant broken; restarting", error=str(error))
            os._exit(70)
        return _answer_encoder.encode(result)

    async def health(self) -> int:
        return os.getpid()

    async def backup_to(self, backup_dir: str) -> bytes:
        """Copy the identity store into `<backup_dir>/identity/` on this host while steps
        go on (the copy reads one snapshot on a worker thread), with the keys that open
        its sealed records."""
        data_dir = self._settings.data_path.resolve()  # The data directory it was given.
        copy = await asyncio.to_thread(self._backup, Path(backup_dir), data_dir)
        return _answer_encoder.encode(copy)

    def _backup(self, backup_dir: Path, data_dir: Path) -> StoreCopy:
        """The store's copy, and its two keys when they live in the data directory: TOTP
        secrets do not open without the identity key, nor codes in flight check without
        the passcode key, so a restore without them would lose what they guard. A key
        the settings keep elsewhere is the operator's, kept with the settings, and the
        copy names it for whoever restores."""
        copy = self._store.backup_to(backup_dir, data_dir)
        files, outside = list(copy.files), []
        live = data_dir.resolve()
        for key in (identity_key_path(self._settings), passcode_key_path(self._settings)):
            resolved = key.resolve()
            if resolved.is_relative_to(live):
                in_backup = f"{copy.store}/keys/{resolved.name}"
                place = resolved.relative_to(live).as_posix()
                files.append(copy_file(resolved, backup_dir, in_backup, place))
            else:
                outside.append(f"{resolved}: a key the settings name outside the data directory")
        return msgspec.structs.replace(copy, files=files, outside=outside)


def create_identity_actor(settings: Settings) -> Any:
    """Create (or find, when joining a running cluster) the identity actor; it waits on
    argon2id threads and fsync, and holds no CPU slot."""
    home = stores_home(settings)
    return named_actor(
        IdentityActor,
        IDENTITY_ACTOR_NAME,
        settings,
        settings_json(home.settings),
        resources=home.resources,
    )


def _unavailable() -> Answer:
    message = "the identity service is unavailable; try again shortly"
    return answer(refused(IdentityReason.BUSY, message, retry_after_s=1))


class IdentityPort(Protocol):
    async def call(self, request: IdentityRequest) -> Answer: ...


class IdentityClient:
    """The front's way to the identity actor."""

    def __init__(self, actor: Any, timeout_s: float) -> None:
        self._actor = actor
        self._timeout_s = timeout_s

    async def call(self, request: IdentityRequest) -> Answer:
        raw = request_encoder.encode(request)
        try:
            reply = await answer_of(self._actor.call.remote(raw), self._timeout_s)
        except ActorCallFailed as error:
            log.warning("identity call failed", error=type(error.cause).__name__)
            return _unavailable()
        return answer_decoder.decode(reply)

    async def wait_ready(self, timeout_s: float) -> None:
        await answer_of(self._actor.health.remote(), timeout_s)


class LocalIdentity:
    """The service in this process, through the same encoding as the actor (tests)."""

    def __init__(self, service: IdentityService) -> None:
        self._service = service

    async def call(self, request: IdentityRequest) -> Answer:
        decoded = request_decoder.decode(request_encoder.encode(request))
        result = await self._service.handle(decoded)
        return answer_decoder.decode(_answer_encoder.encode(result))
