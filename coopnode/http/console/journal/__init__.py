"""The tamper-evident journal in the console (issue 13 §7): seal a day, list the sealed
days, check every shard's chain. The chain itself is the wallet room's
(`actors/wallet/chain.py`); `coopnode audit verify` checks the files without a node."""

from coopnode.http.console.journal.routes import JOURNAL_ROUTES

__all__ = ["JOURNAL_ROUTES"]
