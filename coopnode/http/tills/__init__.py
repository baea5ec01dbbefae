"""The tills room: how tills and kiosks talk to the node.

    channel     the till channel: one WebSocket per till, sealed frames, decisions
    hub         the front's copy of the registry, the replay windows, the deny list
    api         the staff API for cards and tills, and the till's POS endpoint
    signatures  Ed25519 verification of offline taps, off the event loop

It imports the domain, the actors' messages and clients, and the edge; never a store or
node.
"""
