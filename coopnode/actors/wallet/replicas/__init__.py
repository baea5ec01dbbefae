"""A wallet shard as a group of replicas (issue 16): the replication protocol's host.

`coopnode.replication` holds the protocol, a pure state machine; this room gives it the
world of a real shard:

    log.py      the replica's log on its disk (LMDB), written and flushed on a thread of
                its own, so that a stalled flush never stalls the replica's event loop
    faults.py   the storage fault tests and benchmarks turn on: one replica's flushes stall
    peers.py    the network between replicas: a socket to each peer, frames of messages
    books.py    the wallet store as the protocol's application: each committed entry (a
                group commit) applied once, at the primary's time; a peer's copy installed
    actor.py    the replica actor: the protocol, its host, the fronts' links, the ticks

It imports the replication room, the wallet store and link, and the kernel; never http
or node. One replica (`replication.replica_count = 1`) is not this room's: a shard of one
is `actors/wallet/shard.py`, as it always was.
"""
