"""Double entry: account names, postings and the checks that the books balance.

Member purses are accounts `member:<number>:<purse>` holding what the co-op owes the
member (never negative). Counter accounts hold the other side, so that the balances of
every account of a shard sum to zero after every commit.
"""

from __future__ import annotations

from coopnode.domain.errors import InvariantViolation
from coopnode.domain.messages import ChargeSource, JournalEntry, MemberWallet, WalletStatus
from coopnode.domain.money import PURSES, Purse, Purses

Posting = tuple[str, int]

ENROLMENT_DEPOSITS = "deposits:enrolment"
POINTS_ISSUED = "points:issued"
# What members owe for offline taps their balance did not cover (an overdraft to recover).
OVERDRAFT_RECEIVABLE = "receivable:overdraft"
CLEARING: dict[ChargeSource, str] = {
    ChargeSource.CARD: "clearing:card",
    ChargeSource.KONBINI: "clearing:konbini",
    ChargeSource.COUNTER: "clearing:counter",
}


def member_account(member_no: str, purse: Purse) -> str:
    return f"member:{member_no}:{purse.value}"


def sales_account(store: str) -> str:
    return f"sales:{store}"


def member_postings(member_no: str, changes: Purses) -> list[Posting]:
    return [
        (member_account(member_no, purse), amount) for purse, amount in changes.items() if amount
    ]


def changes_of(entry: JournalEntry) -> Purses:
    """The signed change of each of the entry's member's purses."""
    prefix = f"member:{entry.member_no}:"
    amounts = dict.fromkeys(PURSES, 0)
    for account, amount in entry.postings:
        if account.startswith(prefix):
            amounts[Purse(account[len(prefix) :])] += amount
    return Purses.of(amounts)


def check_entry(entry: JournalEntry) -> None:
    """Raise unless the entry's postings sum to zero and name no account twice."""
    total = sum(amount for _, amount in entry.postings)
    if total != 0:
        raise InvariantViolation(f"journal entry {entry.seq} sums to {total}, not zero")
    accounts = [account for account, _ in entry.postings]
    if len(set(accounts)) != len(accounts):
        raise InvariantViolation(f"journal entry {entry.seq} names an account twice")


def check_wallet(wallet: MemberWallet) -> None:
    """Raise unless every purse and the day's meal use are within their bounds."""
    for purse, amount in wallet.balances.items():
        if amount < 0:
            raise InvariantViolation(
                f"member {wallet.member_no} purse {purse.value} is negative: {amount}"
            )
    if wallet.meal_used_yen < 0:
        raise InvariantViolation(f"member {wallet.member_no} meal use is negative")
    if wallet.status is WalletStatus.CLOSED and wallet.balances.total():
        raise InvariantViolation(f"member {wallet.member_no} withdrew but a purse holds money")
