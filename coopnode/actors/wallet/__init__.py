"""The wallet room: members' purses, in shards that own their LMDB files.

    shard       the Ray actor of one shard: group commit of the operations it is sent
    store       one shard's books in LMDB: wallets, the journal, the operations log,
                overdrafts; every change a journal entry in the same transaction
    link        the socket link between a front and a shard's data plane
    client      the front's side: batching, retries under the same keys, health, audit

The money rules themselves are the domain's (`domain.wallet`, `domain.spend`,
`domain.ledger`); this room applies them durably. It imports the domain, the settings and
the kernel; never http, node or another room.
"""
