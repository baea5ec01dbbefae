"""The payments room: card and convenience-store charges, from start to credit.

    actor       the payments Ray actor and the front's client of it
    store       the charges in LMDB, each moving through its states once; a credit is
                claimed here before the wallet is asked, so it happens once

The charging flow that drives it (acquirer, konbini network) is `coopnode.payments`. It
imports the domain, the settings and the kernel; never http or node.
"""
