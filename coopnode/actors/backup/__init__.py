"""The backup room: consistent copies of every store while the node serves, and their
schedule.

    messages    the manifest (what a backup holds: every store's files with their
                SHA-256, each wallet shard's journal position), a staff request and
                the answers about a backup
    manifest    the manifest written last and atomically, read back and checked
                against the files it names
    schedule    where scheduled backups go, when the next is due, and which old ones
                are removed once a newer one is complete
    coordinator the backup actor, one per cluster (a named Ray actor): asks each store's
                owner to copy its files on its own host, writes the manifest, and runs
                the schedule
    client      the front's side of the backup actor

A copy itself is made by the store's owner with the kernel's `copies`. This room
imports the domain, the settings and the kernel; never http, node or another room (the
node names the actors to copy).
"""
