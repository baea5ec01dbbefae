"""The registry room's messages: cards and tills as the registry keeps them, the changes
staff make, what a change did, a snapshot for the fronts, and the offline taps the node
refused. The fronts import these, never the store."""

from __future__ import annotations

from enum import StrEnum

import msgspec

from coopnode.domain.messages import Label, MemberNo
from coopnode.domain.money import Reason, TillKind
from coopnode.domain.till_frames import Idm, OfflineLimits, PublicKey, TillId


class CardStatus(StrEnum):
    ACTIVE = "active"
    LOST = "lost"
    REPLACED = "replaced"


class Record(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The base of every record and message of the room: frozen, no unknown field."""


class CardRecord(Record, frozen=True):
    idm: str
    member_no: str
    status: CardStatus
    bound_at_ms: int
    # When the card was blocked (lost or replaced); 0 while it is active.
    blocked_at_ms: int = 0


class TillRecord(Record, frozen=True):
    till_id: str
    store: str
    kind: TillKind
    public_key: bytes
    retired: bool
    added_at_ms: int


# Operations -----------------------------------------------------------------------------


class BindCard(Record, frozen=True, tag="bind"):
    idm: Idm
    member_no: MemberNo


class ReportLost(Record, frozen=True, tag="lost"):
    idm: Idm


class Reissue(Record, frozen=True, tag="reissue"):
    member_no: MemberNo
    new_idm: Idm


class SetSuspended(Record, frozen=True, tag="suspended"):
    member_no: MemberNo
    suspended: bool


class AddTill(Record, frozen=True, tag="add_till"):
    store: Label
    kind: TillKind
    public_key: PublicKey


class RetireTill(Record, frozen=True, tag="retire_till"):
    till_id: TillId


RegistryOp = BindCard | ReportLost | Reissue | SetSuspended | AddTill | RetireTill


class RegistryChange(Record, frozen=True):
    """What one operation did: the records it wrote, for fronts to copy; or why not."""

    ok: bool
    version: int
    reason: Reason | None = None
    message: str = ""
    cards: list[CardRecord] = []
    tills: list[TillRecord] = []
    suspended: list[str] = []
    resumed: list[str] = []


class RefusedOfflineTap(Record, frozen=True):
    """A tap a till approved offline that the node refused when it was forwarded: the
    member has the goods and nothing was booked, so staff must settle it by hand."""

    till_id: str
    seq: int
    # Tells apart two frames under one number (a till restored from a backup).
    frame_digest_hex: str
    idm: str
    # The card's member when the node knows the card; "" otherwise.
    member_no: str
    amount_yen: int
    tapped_at_ms: int
    # The limits the till states it sold under; None for a tap that states none.
    limits: OfflineLimits | None
    reason: str
    message: str
    refused_at_ms: int


class RegistrySnapshot(Record, frozen=True):
    version: int
    cards: list[CardRecord]
    tills: list[TillRecord]
    suspended: list[str]


class RegistryChanges(Record, frozen=True):
    """The answer to a front's `changes_since(version)`: every change after `version`, in
    order; or `reload`, when the registry's log no longer holds them all (the front fell
    further behind than `till.registry_change_log_max`, or the actor restarted and its
    log is empty), and the front must load the whole snapshot instead."""

    version: int
    changes: list[RegistryChange] = []
    reload: bool = False
