"""The actors layer: each room owns its files and answers typed messages over Ray.

    kernel      what every actor repeats: LMDB files, named Ray actors and calls, clocks
    wallet      members' purses in shards (the money path)
    registry    IC cards, tills, the deny list
    identity    members' and staff accounts, sessions, flows, OAuth, the member desk
    notify      mail, SMS and voice, and the development outbox
    payments    card and convenience-store charges

Actors import the domain, the settings and the kernel; never http or node.
"""
