"""The room's structs: every message survives the wire, bounds refuse nonsense, and a
flush of an entry a view change replaced does not count."""

from __future__ import annotations

import msgspec
import pytest

from coopnode.replication import Replica, ReplicationBounds, Request
from coopnode.replication.messages import (
    Commit,
    DoViewChange,
    Message,
    Prepare,
    PrepareOk,
    Prepares,
    Recovery,
    RecoveryResponse,
    Reply,
    RequestPrepares,
    RequestStartView,
    StartView,
    StartViewChange,
    decode_message,
    encode_message,
    make_entry,
)
from tests.replication.cluster import FixedClock

ENTRY = make_entry(
    op=1, view=0, client_id=3, request_key=4, timestamp_ms=5, payload=b"\x00pay", parent=bytes(16)
)

EVERY_MESSAGE: list[Message] = [
    Request(client_id=1, request_key=2, payload=b"x"),
    Reply(view=1, replica=0, client_id=1, request_key=2, op=3),
    Prepare(view=1, commit=0, entry=ENTRY),
    PrepareOk(view=1, replica=2, op=1),
    Commit(view=1, replica=1, commit=1),
    StartViewChange(view=2, replica=0),
    DoViewChange(view=2, replica=0, log_view=1, commit=1, log=[ENTRY]),
    StartView(view=2, replica=2, commit=1, log=[ENTRY]),
    RequestStartView(view=2, replica=1),
    RequestPrepares(view=2, replica=1, op_first=1, op_last=4),
    Prepares(view=2, replica=2, commit=1, entries=[ENTRY]),
    Recovery(replica=1, nonce=99),
    RecoveryResponse(view=2, replica=2, nonce=99, commit=1, log=None),
]


@pytest.mark.parametrize("message", EVERY_MESSAGE, ids=lambda m: type(m).__name__)
def test_every_message_survives_the_wire(message: Message) -> None:
    assert decode_message(encode_message(message)) == message


def test_an_unknown_field_is_refused() -> None:
    data = msgspec.msgpack.encode({"kind": "recovery", "replica": 1, "nonce": 2, "extra": 3})
    with pytest.raises(msgspec.ValidationError):
        decode_message(data)


@pytest.mark.parametrize(
    "bounds",
    [
        {"replica_count": 2},
        {"replica_count": 9},
        {"pipeline_ops_max": 0},
        {"heartbeat_interval_ticks": 30, "primary_silence_timeout_ticks": 40},
    ],
)
def test_bounds_refuse_what_cannot_work(bounds: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        ReplicationBounds(**bounds)


def test_a_quorum_is_a_majority() -> None:
    assert [ReplicationBounds(replica_count=n).quorum for n in (1, 3, 5, 7)] == [1, 2, 3, 4]


def test_a_flush_of_a_replaced_entry_does_not_count() -> None:
    replica = Replica.format(ReplicationBounds(), 1, FixedClock(0))
    other = make_entry(
        op=1, view=0, client_id=3, request_key=9, timestamp_ms=5, payload=b"", parent=bytes(16)
    )
    replica.on_message(Prepare(view=0, commit=0, entry=ENTRY))
    # The disk reports a flush of another entry at op 1 (one a view change replaced).
    assert replica.on_durable(1, other.checksum) == []
    assert replica.op_durable == 0
    effects = replica.on_durable(1, ENTRY.checksum)
    assert replica.op_durable == 1
    assert [type(effect.message) for effect in effects if hasattr(effect, "message")] == [PrepareOk]
