"""The registry room: IC cards, tills and the deny list, one actor for the whole node.

    actor       the registry's Ray actor
    store       cards, tills, suspended members, each till's offline limits and the
                offline taps the node refused, in LMDB

Fronts keep an in-memory copy and decide taps from it; this room is asked only for
changes. It imports the domain, the settings and the kernel; never http or node.
"""
