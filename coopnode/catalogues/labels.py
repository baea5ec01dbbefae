"""The labels the pages and the mails share: each a map from what the domain names to the
message id of its label, written out so that extraction sees every id (never a key built
by joining strings). `tests/catalogues/test_catalogues.py` checks that each map covers
its enum."""

from __future__ import annotations

from coopnode.catalogues import N_, catalogues
from coopnode.domain.identity import WalletScope
from coopnode.domain.money import Purse

PURSE_LABELS: dict[Purse, str] = {
    Purse.MEAL: N_("purse.meal"),
    Purse.CAFETERIA: N_("purse.cafeteria"),
    Purse.TEXTBOOK: N_("purse.textbook"),
    Purse.BASE: N_("purse.base"),
    Purse.POINTS: N_("purse.points"),
}

# What a member allows an app to do with each OAuth scope (the consent screen).
WALLET_SCOPE_LABELS: dict[WalletScope, str] = {
    WalletScope.READ: N_("scope.wallet_read"),
    WalletScope.PAY: N_("scope.wallet_pay"),
}


def wallet_scope_text(scope: WalletScope) -> str:
    """A scope as an app's consent answer describes it (`ScopeInfo.description`): its label
    in Japanese, then in brackets in every other language, since the app shows it to a
    member whose language the node does not know."""
    texts = [found.gettext(WALLET_SCOPE_LABELS[scope]) for found in catalogues().values()]
    first, others = texts[0], texts[1:]
    return f"{first} ({' / '.join(others)})" if others else first


# Every scope's description for the consent answer (the identity actor's `ScopeInfo`).
WALLET_SCOPE_TEXTS: dict[WalletScope, str] = {
    scope: wallet_scope_text(scope) for scope in WalletScope
}
