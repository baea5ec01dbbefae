"""The identity store: members' and staff accounts, sessions, flows, codes and the audit
log, in one LMDB environment under `<data_dir>/identity`.

Written like the wallet's store: msgspec records in MessagePack, each checked before it is
written and again when it is read, and an exclusive `fcntl` lock so that only one process
owns the files. Nothing secret is stored in clear (see `domain.identity`): the keys of
sessions, flows, OAuth codes and tokens are SHA-256 digests of the random ids handed out.

Databases in the environment:
    accounts        member number → Account
    mail_index      normalised mail address → member number
    phone_index     E.164 phone number → member number
    staff           staff id → StaffAccount
    sessions        digest(session id) → SessionRecord
    subject_sessions subject + NUL + digest → (empty): every session of an account
    flows           digest(flow id) → FlowRecord
    passcodes       account or identifier → PasscodeState
    throttles       "<purpose>:<identifier>" → Throttle
    sends           "<purpose>:<subject>" → SendWindow: mails of one kind lately sent to or
                    for a subject (family invitations per member and per address)
    pending         "<purpose>:<subject>" → PendingLogin
    oauth_codes     digest(code) → OAuthCodeRecord
    oauth_tokens    digest(token) → OAuthTokenRecord
    grants          member number + NUL + grant id → digest(token)
    family          "m" + member + NUL + guardian, and "g" + guardian + NUL + member → (empty):
                    a member's family access grants (FLOWS §3 step 5), read from both ends
    guardians       normalised mail address → GuardianAccount: guardians who are not
                    members and set a password through their invitation
    audit           sequence (8 bytes, big-endian) → AuditEntry; append-only
    api_tokens      digest(token) → ApiTokenRecord: machines' scoped API tokens, revoked
                    ones kept (their names stay in the audit log)
    desk            the portal home's desk (`identity_desk`): inquiries, document requests,
                    events, event applications, their number counters, daily counts and
                    double-submit keys, under one-letter prefixes listed there

Long by a few lines, and kept whole: each database's records are checked on the way in
and out here, and one write transaction of a flow touches several of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from coopnode.actors.kernel.copies import StoreCopy, copy_store
from coopnode.actors.kernel.files import Layout, open_lmdb
from coopnode.domain.errors import InvariantViolation
from coopnode.domain.identity import (
    Account,
    ApiTokenRecord,
    AuditEntry,
    FlowRecord,
    GuardianAccount,
    OAuthCodeRecord,
    OAuthTokenRecord,
    PendingLogin,
    SendWindow,
    SessionRecord,
    StaffAccount,
    Throttle,
)
from coopnode.domain.passcodes import PasscodeState

_SEQ_BYTES = 8
_MEMBER_NO = re.compile(r"^[0-9]{12}$")
_ARGON2ID_PREFIX = b"$argon2id$"
_DIGEST_BYTES = 32
_encoder = msgspec.msgpack.Encoder()
RecordT = TypeVar("RecordT")
_decoders: dict[type[Any], msgspec.msgpack.Decoder[Any]] = {}


def _decode(raw: bytes, record_type: type[RecordT]) -> RecordT:
    decoder = _decoders.get(record_type)
    if decoder is None:
        decoder = _decoders[record_type] = msgspec.msgpack.Decoder(record_type)
    try:
        record: RecordT = decoder.decode(raw)
    except msgspec.DecodeError as error:
        raise InvariantViolation(f"a stored {record_type.__name__} is unreadable") from error
    return record


def _check_account(account: Account) -> None:
    if not _MEMBER_NO.match(account.member_no):
        raise InvariantViolation(f"account {account.member_no!r} has no 12-digit member number")
    if account.password_hash and not account.password_hash.startswith(_ARGON2ID_PREFIX):
        raise InvariantViolation(f"account {account.member_no} holds a password not in argon2id")
    if "@" not in account.mail or account.mail != account.mail.lower():
        raise InvariantViolation(f"account {account.member_no} holds an unnormalised address")


def _check_guardian(guardian: GuardianAccount) -> None:
    if not guardian.password_hash.startswith(_ARGON2ID_PREFIX):
        raise InvariantViolation("a guardian account holds a password not in argon2id")
    if "@" not in guardian.mail or guardian.mail != guardian.mail.lower():
        raise InvariantViolation("a guardian account holds an unnormalised address")


def _check_digest(key: bytes) -> None:
    if len(key) != _DIGEST_BYTES:
        raise InvariantViolation("a session, flow or token key must be a SHA-256 digest")


class Tx:
    """One LMDB transaction with typed access to every database."""

    def __init__(self, txn: Any, dbs: dict[str, Any]) -> None:
        self._txn = txn
        self._db = dbs

    def close(self) -> None:
        """Let go of the LMDB transaction. A caller's `tx` name outlives its `with` block
        (in a coroutine, across awaits), and py-lmdb keeps a read transaction's reader
        slot while the object lives: without this, a burst of requests fills every slot.
        """
        self._txn = None

    def _get(self, db: str, key: bytes, record_type: type[RecordT]) -> RecordT | None:
        raw = self._txn.get(key, db=self._db[db])
        return None if raw is None else _decode(raw, record_type)

    def _put(self, db: str, key: bytes, record: Any) -> None:
        self._txn.put(key, _encoder.encode(record), db=self._db[db])

    def _delete(self, db: str, key: bytes) -> None:
        self._txn.delete(key, db=self._db[db])

    # Accounts ---------------------------------------------------------------------------

    def account(self, member_no: str) -> Account | None:
        account = self._get("accounts", member_no.encode(), Account)
        if account is not None:
            _check_account(account)
            if account.member_no != member_no:
                raise InvariantViolation(f"account record {member_no} names {account.member_no}")
        return account

    def _by_index(self, db: str, key: str) -> Account | None:
        member_no = self._txn.get(key.encode(), db=self._db[db])
        if member_no is None:
            return None
        account = self.account(member_no.decode())
        found = None if account is None else (account.mail if db == "mail_index" else account.phone)
        if found != key:
            raise InvariantViolation(f"{db} entry for member {member_no.decode()} is stale")
        return account

    def account_by_mail(self, mail: str) -> Account | None:
        return self._by_index("mail_index", mail)

    def account_by_phone(self, phone: str) -> Account | None:
        return self._by_index("phone_index", phone)

    def index_owner(self, db: str, key: str) -> str | None:
        owner = self._txn.get(key.encode(), db=self._db[db])
        return None if owner is None else str(owner.decode())

    def held_by_another(self, db: str, key: str, member_no: str) -> str | None:
        """The member, other than `member_no`, whose account holds `key` (an address in
        `mail_index`, a phone number in `phone_index`): one address, one member."""
        owner = self.index_owner(db, key)
        return owner if owner is not None and owner != member_no else None

    def put_account(self, account: Account) -> None:
        """Write an account and keep its address and phone indexes in step with it."""
        _check_account(account)
        previous = self.account(account.member_no)
        for db, old, new in (
            ("mail_index", previous.mail if previous else "", account.mail),
            ("phone_index", previous.phone if previous else "", account.phone),
        ):
            owner = self.held_by_another(db, new, account.member_no)
            if owner is not None:
                raise InvariantViolation(f"{db}: {new!r} already belongs to member {owner}")
            if old and old != new:
                self._delete(db, old.encode())
            self._txn.put(new.encode(), account.member_no.encode(), db=self._db[db])
        self._put("accounts", account.member_no.encode(), account)

    def staff(self, staff_id: str) -> StaffAccount | None:
        staff = self._get("staff", staff_id.encode(), StaffAccount)
        if staff is not None and not staff.password_hash.startswith(_ARGON2ID_PREFIX):
            raise InvariantViolation(f"staff {staff_id} holds a password not in argon2id")
        return staff

    def put_staff(self, staff: StaffAccount) -> None:
        if not staff.password_hash.startswith(_ARGON2ID_PREFIX) or not staff.totp_sealed:
            raise InvariantViolation("a staff account needs an argon2id password and a TOTP")
        self._put("staff", staff.staff_id.encode(), staff)

    def staff_all(self, limit: int) -> list[StaffAccount]:
        """Every staff account, by staff id, at most `limit`."""
        cursor = self._txn.cursor(db=self._db["staff"])
        found: list[StaffAccount] = []
        positioned = cursor.first()
        while positioned and len(found) < limit:
            found.append(_decode(cursor.value(), StaffAccount))
            positioned = cursor.next()
        return found

    def api_token(self, key: bytes) -> ApiTokenRecord | None:
        _check_digest(key)
        return self._get("api_tokens", key, ApiTokenRecord)

    def put_api_token(self, key: bytes, token: ApiTokenRecord) -> None:
        _check_digest(key)
        if not token.name or not token.token_id:
            raise InvariantViolation("an API token needs a name and an id")
        self._put("api_tokens", key, token)

    def api_tokens(self, limit: int) -> list[tuple[bytes, ApiTokenRecord]]:
        """Every API token (by digest, so in no meaningful order), at most `limit`."""
        cursor = self._txn.cursor(db=self._db["api_tokens"])
        found: list[tuple[bytes, ApiTokenRecord]] = []
        positioned = cursor.first()
        while positioned and len(found) < limit:
            found.append((bytes(cursor.key()), _decode(cursor.value(), ApiTokenRecord)))
            positioned = cursor.next()
        return found

    def guardian(self, mail: str) -> GuardianAccount | None:
        guardian = self._get("guardians", mail.encode(), GuardianAccount)
        if guardian is not None:
            _check_guardian(guardian)
            if guardian.mail != mail:
                raise InvariantViolation("a guardian record names another address")
        return guardian

    def put_guardian(self, guardian: GuardianAccount) -> None:
        _check_guardian(guardian)
        self._put("guardians", guardian.mail.encode(), guardian)

    # Sessions ---------------------------------------------------------------------------

    def session(self, key: bytes) -> SessionRecord | None:
        _check_digest(key)
        return self._get("sessions", key, SessionRecord)

    def put_session(self, key: bytes, session: SessionRecord) -> None:
        _check_digest(key)
        if session.last_seen_s < session.created_at_s:
            raise InvariantViolation("a session cannot be seen before it was created")
        self._put("sessions", key, session)
        self._txn.put(session.subject.encode() + b"\0" + key, b"", db=self._db["subject_sessions"])

    def delete_session(self, key: bytes) -> None:
        session = self.session(key)
        if session is None:
            return
        self._delete("sessions", key)
        self._delete("subject_sessions", session.subject.encode() + b"\0" + key)

    def delete_sessions_of(self, subject: str) -> int:
        """Revoke every session of an account (after a password or address change)."""
        prefix = subject.encode() + b"\0"
        cursor = self._txn.cursor(db=self._db["subject_sessions"])
        keys: list[bytes] = []
        if cursor.set_range(prefix):
            for index_key in cursor.iternext(values=False):
                if not index_key.startswith(prefix):
                    break
                keys.append(index_key[len(prefix) :])
        for key in keys:
            self.delete_session(key)
        return len(keys)

    # Flows, codes, lock-out ------------------------------------------------------------

    def flow(self, key: bytes) -> FlowRecord | None:
        _check_digest(key)
        return self._get("flows", key, FlowRecord)

    def put_flow(self, key: bytes, flow: FlowRecord) -> None:
        _check_digest(key)
        if flow.expires_at_s <= flow.created_at_s:
            raise InvariantViolation("a flow must expire after it was created")
        self._put("flows", key, flow)

    def passcode(self, account: str) -> PasscodeState:
        state = self._get("passcodes", account.encode(), PasscodeState)
        if state is not None and state.account != account:
            raise InvariantViolation(f"passcode record {account!r} names {state.account!r}")
        return state if state is not None else PasscodeState(account=account)

    def put_passcode(self, state: PasscodeState) -> None:
        if state.digest and len(state.digest) != _DIGEST_BYTES:
            raise InvariantViolation("a passcode is stored as its HMAC-SHA256 digest only")
        self._put("passcodes", state.account.encode(), state)

    def throttle(self, key: str) -> Throttle:
        return self._get("throttles", key.encode(), Throttle) or Throttle()

    def put_throttle(self, key: str, throttle: Throttle) -> None:
        if throttle == Throttle():
            self._txn.delete(key.encode(), db=self._db["throttles"])
        else:
            self._put("throttles", key.encode(), throttle)

    def send_window(self, key: str) -> SendWindow:
        return self._get("sends", key.encode(), SendWindow) or SendWindow()

    def put_send_window(self, key: str, window: SendWindow) -> None:
        self._put("sends", key.encode(), window)

    def clear_throttles(self, suffix: str) -> int:
        """Lift every lock-out of one identifier, whatever it was for (staff resume)."""
        cursor = self._txn.cursor(db=self._db["throttles"])
        keys = [key for key in cursor.iternext(values=False) if key.endswith(suffix.encode())]
        for key in keys:
            self._txn.delete(key, db=self._db["throttles"])
        return len(keys)

    def pending(self, key: str) -> PendingLogin | None:
        return self._get("pending", key.encode(), PendingLogin)

    def put_pending(self, key: str, pending: PendingLogin) -> None:
        self._put("pending", key.encode(), pending)

    # OAuth ------------------------------------------------------------------------------

    def oauth_code(self, key: bytes) -> OAuthCodeRecord | None:
        _check_digest(key)
        return self._get("oauth_codes", key, OAuthCodeRecord)

    def put_oauth_code(self, key: bytes, code: OAuthCodeRecord) -> None:
        _check_digest(key)
        self._put("oauth_codes", key, code)

    def delete_oauth_code(self, key: bytes) -> None:
        _check_digest(key)
        self._txn.delete(key, db=self._db["oauth_codes"])

    def oauth_token(self, key: bytes) -> OAuthTokenRecord | None:
        _check_digest(key)
        return self._get("oauth_tokens", key, OAuthTokenRecord)

    def put_oauth_token(self, key: bytes, token: OAuthTokenRecord) -> None:
        _check_digest(key)
        if token.expires_at_s <= token.issued_at_s:
            raise InvariantViolation("an access token must expire after it was issued")
        self._put("oauth_tokens", key, token)
        grant_key = f"{token.member_no}\0{token.grant_id}".encode()
        self._txn.put(grant_key, key, db=self._db["grants"])

    def grants_of(self, member_no: str) -> list[tuple[bytes, OAuthTokenRecord]]:
        prefix = f"{member_no}\0".encode()
        cursor = self._txn.cursor(db=self._db["grants"])
        found: list[tuple[bytes, OAuthTokenRecord]] = []
        if cursor.set_range(prefix):
            for grant_key, token_key in cursor.iternext():
                if not grant_key.startswith(prefix):
                    break
                token = self.oauth_token(bytes(token_key))
                if token is None or token.member_no != member_no:
                    raise InvariantViolation(f"grant index of {member_no} points at nothing")
                found.append((bytes(token_key), token))
        return found

    # Family access ----------------------------------------------------------------------

    def _family_keys(self, prefix: str) -> list[str]:
        start = prefix.encode()
        cursor = self._txn.cursor(db=self._db["family"])
        found: list[str] = []
        if cursor.set_range(start):
            for key in cursor.iternext(values=False):
                if not key.startswith(start):
                    break
                found.append(bytes(key)[len(start) :].decode())
        return found

    def guardians_of(self, member_no: str) -> list[str]:
        """The mail addresses of the guardians who may read `member_no`'s history."""
        return self._family_keys(f"m{member_no}\0")

    def wards_of(self, guardian_mail: str) -> list[str]:
        """The members who let the holder of `guardian_mail` read their history."""
        return self._family_keys(f"g{guardian_mail}\0")

    def put_family(self, member_no: str, guardian_mail: str) -> None:
        if not _MEMBER_NO.match(member_no) or not guardian_mail or "\0" in guardian_mail:
            raise InvariantViolation("a family grant names a member number and a mail address")
        self._put_raw("family", f"m{member_no}\0{guardian_mail}".encode())
        self._put_raw("family", f"g{guardian_mail}\0{member_no}".encode())

    def delete_family(self, member_no: str, guardian_mail: str) -> bool:
        db = self._db["family"]
        first = self._txn.delete(f"m{member_no}\0{guardian_mail}".encode(), db=db)
        second = self._txn.delete(f"g{guardian_mail}\0{member_no}".encode(), db=db)
        return bool(first or second)

    # The portal home's desk ---------------------------------------------------------------

    def desk_get(self, key: bytes, record_type: type[RecordT]) -> RecordT | None:
        return self._get("desk", key, record_type)

    def desk_put(self, key: bytes, record: Any) -> None:
        self._put("desk", key, record)

    def desk_raw(self, key: bytes) -> bytes | None:
        raw = self._txn.get(key, db=self._db["desk"])
        return None if raw is None else bytes(raw)

    def desk_put_raw(self, key: bytes, value: bytes) -> None:
        self._txn.put(key, value, db=self._db["desk"])

    def desk_scan_raw(self, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to `limit` (key, value) pairs under `prefix`, last key first (numbers are
        big-endian, so newest first)."""
        cursor = self._txn.cursor(db=self._db["desk"])
        end = prefix + b"\xff" * 16
        positioned = cursor.prev() if cursor.set_range(end) else cursor.last()
        found: list[tuple[bytes, bytes]] = []
        while positioned and len(found) < limit:
            key = bytes(cursor.key())
            if not key.startswith(prefix):
                break
            found.append((key, bytes(cursor.value())))
            positioned = cursor.prev()
        return found

    def desk_scan(
        self, prefix: bytes, record_type: type[RecordT], limit: int
    ) -> list[tuple[bytes, RecordT]]:
        return [
            (key, _decode(value, record_type)) for key, value in self.desk_scan_raw(prefix, limit)
        ]

    def _put_raw(self, db: str, key: bytes) -> None:
        self._txn.put(key, b"", db=self._db[db])

    # Audit ------------------------------------------------------------------------------

    def append_audit(
        self, *, at_s: float, actor: str, action: str, target: str, detail: str = ""
    ) -> AuditEntry:
        """Append one entry; entries are never changed or removed."""
        cursor = self._txn.cursor(db=self._db["audit"])
        seq = int.from_bytes(cursor.key(), "big") + 1 if cursor.last() else 1
        entry = AuditEntry(
            seq=seq, at_s=at_s, actor=actor, action=action, target=target, detail=detail
        )
        written = self._txn.put(
            seq.to_bytes(_SEQ_BYTES, "big"),
            _encoder.encode(entry),
            db=self._db["audit"],
            overwrite=False,
        )
        if not written:
            raise InvariantViolation(f"audit entry {seq} exists already")
        return entry

    def audit_page(self, before_seq: int, limit: int) -> list[AuditEntry]:
        """Entries newest first, older than `before_seq` (0: from the newest)."""
        cursor = self._txn.cursor(db=self._db["audit"])
        start = (before_seq if before_seq else 2**63).to_bytes(_SEQ_BYTES, "big")
        positioned = cursor.prev() if cursor.set_range(start) else cursor.last()
        entries: list[AuditEntry] = []
        while positioned and len(entries) < limit:
            entry = _decode(cursor.value(), AuditEntry)
            if entry.seq != int.from_bytes(cursor.key(), "big"):
                raise InvariantViolation(f"audit entry {entry.seq} is stored under another key")
            entries.append(entry)
            positioned = cursor.prev()
        return entries


# The layout of the identity store's records; a change that old files cannot be read in
# raises it.
LAYOUT_VERSION = 1
_DATABASES = (
    "accounts",
    "mail_index",
    "phone_index",
    "staff",
    "sessions",
    "subject_sessions",
    "flows",
    "passcodes",
    "throttles",
    "sends",
    "pending",
    "oauth_codes",
    "oauth_tokens",
    "grants",
    "family",
    "guardians",
    "audit",
    "desk",
    "api_tokens",
)


class IdentityStore:
    """The identity databases. Not thread-safe: one thread (the actor's loop) uses it."""

    def __init__(self, path: Path, *, map_size_bytes: int, lock_wait_s: float = 30.0) -> None:
        self._files = open_lmdb(
            path,
            layout=Layout(store="identity", version=LAYOUT_VERSION),
            databases=_DATABASES,
            map_size_bytes=map_size_bytes,
            lock_wait_s=lock_wait_s,
        )
        self.env = self._files.env
        self._dbs = self._files.dbs

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A write transaction: everything in it commits together, with one fsync."""
        with self.env.begin(write=True) as txn:
            tx = Tx(txn, self._dbs)
            try:
                yield tx
            finally:
                tx.close()

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self.env.begin() as txn:
            tx = Tx(txn, self._dbs)
            try:
                yield tx
            finally:
                tx.close()

    def close(self) -> None:
        self._files.close()

    def backup_to(self, backup_dir: Path, data_dir: Path) -> StoreCopy:
        """Copy the identity store into its directory under `backup_dir` (as under the live
        `data_dir`) from one read transaction, while it serves; runs on any thread."""
        layout = Layout(store="identity", version=LAYOUT_VERSION)
        return copy_store(self._files, layout, backup_dir, data_dir)
