"""Property tests: random days of operations against a real LMDB shard.

Whatever the sequence: money is conserved (the books balance and every balance equals
its journal), no purse goes negative, the meal plan's daily cap holds, and replaying
every idempotency key changes nothing. Offline taps, booked whatever the balance, leave
open overdrafts that add up to what the overdraft receivable account holds.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coopnode.actors.wallet.store import WalletStore
from coopnode.domain import ledger
from coopnode.domain.messages import (
    Booked,
    Charge,
    ChargeSource,
    GetWallet,
    Move,
    OfflinePay,
    OpenWallet,
    Operation,
    Pay,
    Refund,
    Result,
    VoidPayment,
    WalletView,
)
from coopnode.domain.money import Purse, TillKind
from coopnode.domain.rules import CoopRules

MEMBERS = ["202600000017", "202600000025", "202600000033"]
RULES = CoopRules()
DAY_MS = 86_400_000
START_MS = 1_795_600_000_000  # 2026-11-25 in Tokyo


class Clock:
    def __init__(self) -> None:
        self.now_ms = START_MS

    def __call__(self) -> int:
        return self.now_ms


member = st.sampled_from(MEMBERS)
amount = st.integers(min_value=1, max_value=15_000)
key_number = st.integers(min_value=0, max_value=40)

pay_step = st.builds(
    lambda m, a, kind, k: Pay(
        key=f"p{k}", member_no=m, amount_yen=a, till_kind=kind, store="store-1"
    ),
    member,
    amount,
    st.sampled_from(list(TillKind)),
    key_number,
)
offline_step = st.builds(
    lambda m, a, kind, k: OfflinePay(
        key=f"o{k}",
        member_no=m,
        amount_yen=a,
        till_kind=kind,
        store="store-1",
        tapped_at_ms=START_MS,
    ),
    member,
    amount,
    st.sampled_from(list(TillKind)),
    key_number,
)
void_offline_step = st.builds(
    lambda m, k, p: VoidPayment(key=f"w{k}", member_no=m, payment_key=f"o{p}"),
    member,
    key_number,
    key_number,
)
charge_step = st.builds(
    lambda m, a, purse, k: Charge(
        key=f"c{k}", member_no=m, purse=purse, amount_yen=a, source=ChargeSource.CARD
    ),
    member,
    st.integers(min_value=500, max_value=120_000),
    st.sampled_from([Purse.BASE, Purse.CAFETERIA, Purse.TEXTBOOK, Purse.MEAL]),
    key_number,
)
move_step = st.builds(
    lambda m, a, target, k: Move(
        key=f"m{k}", member_no=m, from_purse=Purse.BASE, to_purse=target, amount_yen=a
    ),
    member,
    st.integers(min_value=1, max_value=40_000),
    st.sampled_from([Purse.CAFETERIA, Purse.TEXTBOOK]),
    key_number,
)
void_step = st.builds(
    lambda m, k, p: VoidPayment(key=f"v{k}", member_no=m, payment_key=f"p{p}"),
    member,
    key_number,
    key_number,
)
refund_step = st.builds(
    lambda m, a, k, p: Refund(key=f"r{k}", member_no=m, payment_key=f"p{p}", amount_yen=a),
    member,
    st.integers(min_value=1, max_value=3_000),
    key_number,
    key_number,
)
step = st.one_of(
    pay_step, pay_step, offline_step, charge_step, move_step, void_step, void_offline_step,
    refund_step,
)  # fmt: skip
# A day is a few batches; each batch is one group commit.
day = st.lists(st.lists(step, min_size=1, max_size=8), min_size=1, max_size=4)


def opening() -> list[Operation]:
    return [
        OpenWallet(
            key="open",
            member_no=number,
            coop="demo",
            meal_plan="meal-1000",
            deposits={Purse.MEAL: 20_000, Purse.BASE: 30_000, Purse.TEXTBOOK: 5_000},
        )
        for number in MEMBERS
    ]


class MealTally:
    """Net meal-plan spending per member and day, each booking counted once.

    A retried key answers with its first booking again, so bookings are counted by their
    journal sequence; a void or refund counts against the day of its payment only.
    """

    def __init__(self) -> None:
        self.net_by_day: dict[tuple[str, int], int] = defaultdict(int)
        self.paid_on_day: dict[tuple[str, str], int] = {}
        self.counted: set[int] = set()

    def add(self, op: Operation, result: Result, day_index: int) -> None:
        if not isinstance(result, Booked) or result.seq in self.counted:
            return
        self.counted.add(result.seq)
        if isinstance(op, (Pay, OfflinePay)):
            self.paid_on_day[(op.member_no, op.key)] = day_index
            self.net_by_day[(op.member_no, day_index)] -= result.changes.meal
        elif (
            isinstance(op, (VoidPayment, Refund))
            and self.paid_on_day.get((op.member_no, op.payment_key)) == day_index
        ):
            self.net_by_day[(op.member_no, day_index)] -= result.changes.meal


def views(store: WalletStore) -> list[Result]:
    return store.apply_batch([GetWallet(member_no=number) for number in MEMBERS])


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(days=st.lists(day, min_size=1, max_size=3))
def test_money_is_conserved_and_every_rule_holds(days: list[list[list[Operation]]]) -> None:
    clock = Clock()
    with tempfile.TemporaryDirectory(prefix="cnprop") as directory:
        store = WalletStore(
            Path(directory),
            shard_index=0,
            shard_count=1,
            coops={"demo": RULES},
            map_size_bytes=64 << 20,
            fsync=False,
            clock_ms=clock,
        )
        try:
            store.apply_batch(opening())
            first_results: dict[Operation, Result] = {}
            meals = MealTally()
            sent: list[Operation] = []
            for index, batches in enumerate(days):
                clock.now_ms = START_MS + index * DAY_MS
                for batch in batches:
                    results = store.apply_batch(batch)
                    sent += batch
                    for op, result in zip(batch, results, strict=True):
                        first_results.setdefault(op, result)
                        meals.add(op, result, index)
                for view in views(store):
                    assert isinstance(view, WalletView)
                    assert all(amount >= 0 for _, amount in view.balances.items())
            # The daily cap: net meal spending per member per day never exceeds the cap.
            assert all(spent <= 1_000 for spent in meals.net_by_day.values())
            report = store.audit()
            assert report.balanced, report.problems
            owed = sum(record.overdraft_yen for record in store.overdrafts(limit=10_000))
            assert owed == -store.counters.get(ledger.OVERDRAFT_RECEIVABLE, 0)
            before = views(store)
            # Replaying every operation answers with the first result and changes nothing.
            replayed = store.apply_batch(sent)
            for op, result in zip(sent, replayed, strict=True):
                assert result == first_results[op]
            assert views(store) == before
            assert store.audit().entries == report.entries
        finally:
            store.close()
