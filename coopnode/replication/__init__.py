"""Replicated shards: Viewstamped Replication as a pure state machine, and its simulator.

This room holds the protocol a wallet shard's replicas will run (issue 16): the log's
entries and the messages (`messages.py`), the bounds (`bounds.py`), the replica's state
machine (`replica.py`), the effects it returns (`effects.py`), the host that carries them
out through the network, disk, application and client interfaces (`host.py`), and the
deterministic simulator that runs the same replica under seeded faults
(`simulator.py`, `python -m coopnode.replication.simulator --seeds N`).

It imports only the standard library and msgspec (an import-linter contract in
pyproject.toml). The wallet shards do not run it yet: today a shard still commits on
one replica (docs/architecture.md, "Replicated shards").
"""

from coopnode.replication.bounds import ReplicationBounds
from coopnode.replication.effects import Acknowledge, Apply, Effect, Send, Write
from coopnode.replication.errors import ReplicationError, ReplicationInvariantViolation
from coopnode.replication.host import Application, Clients, Network, ReplicaHost, Storage
from coopnode.replication.messages import Entry, Message, Reply, Request
from coopnode.replication.replica import Clock, Replica, Status

__all__ = [
    "Acknowledge",
    "Application",
    "Apply",
    "Clients",
    "Clock",
    "Effect",
    "Entry",
    "Message",
    "Network",
    "Replica",
    "ReplicaHost",
    "ReplicationBounds",
    "ReplicationError",
    "ReplicationInvariantViolation",
    "Reply",
    "Request",
    "Send",
    "Status",
    "Storage",
    "Write",
]
