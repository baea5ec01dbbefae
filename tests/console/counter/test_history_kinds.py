"""Every kind of line the wallet writes into a member's history has its words, in the
member's portal and at the counter: a page that met a kind without them would fail."""

from __future__ import annotations

import re
from pathlib import Path

from coopnode.catalogues import catalogue
from coopnode.domain.messages import WalletStatus
from coopnode.http.portal.labels import HISTORY_KIND_LABELS

WALLET_RULES = Path(__file__).parents[3] / "coopnode" / "domain" / "wallet.py"


def test_every_kind_the_wallet_writes_has_its_words() -> None:
    written = set(re.findall(r'kind="([a-z_]+)"', WALLET_RULES.read_text()))
    written |= {"pay", "offline_pay"}  # named by the operation's type
    # Suspension and resumption are journalled under the status they set.
    written |= {WalletStatus.SUSPENDED.value, WalletStatus.ACTIVE.value}
    assert {"open", "withdraw", "refund_charge", "settle_overdraft"} <= written
    assert written <= set(HISTORY_KIND_LABELS)
    for language in ("ja", "en"):
        for message_id in HISTORY_KIND_LABELS.values():
            assert message_id in catalogue(language).message_ids
