"""What every actor repeats, written once: the kernel the rooms of `actors` stand on.

    files       an LMDB environment owned by one process: its exclusive lock (held even
                across a kill -9 of a predecessor), its named databases, and the layout
                version of its records, checked before anything is read
    copies      a store's files copied by their owner while it serves (LMDB's own
                copy from one read transaction), and what a copy tells the backup's
                manifest: each file's place, size and SHA-256
    link_tls    the SSL contexts of mutual TLS between hosts (wallet links), and where an
                actor finds its host's files (Ray's TLS variables)
    ray_calls   a named Ray actor created (or found, on a running cluster) with the
                node's options, and a call to one bounded by a deadline, whose failures
                become one error of the node's own
    clock       the wall clock in milliseconds, and the type every part takes it as, so
                that tests can inject their own

It imports the domain, the settings and third-party libraries only: never another room
of `actors`, never `http` or `node`.
"""
