"""The wallet's rules as one pure function: given a member's wallet and an operation,
decide the new wallet, the balanced postings and what to answer.

No storage, no clock and no I/O here: the shard that owns the wallet passes the current
records and the time, then writes what `decide` returns in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from coopnode.domain import ledger, spend, withdrawal
from coopnode.domain.messages import (
    Charge,
    ChargeRecord,
    ChargeSource,
    Declined,
    MemberWallet,
    MoneyOperation,
    Move,
    OfflinePay,
    OpenWallet,
    Pay,
    PaymentRecord,
    Refund,
    RefundCharge,
    SettleOverdraft,
    VoidPayment,
    WalletStatus,
    Withdraw,
    decline,
)
from coopnode.domain.money import (
    CHARGEABLE_PURSES,
    MOVE_SOURCES,
    MOVE_TARGETS,
    Purse,
    Purses,
    Reason,
)
from coopnode.domain.rules import CoopRules


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """What a successful money operation does, before the shard numbers it."""

    kind: str
    wallet: MemberWallet
    postings: list[ledger.Posting]
    amount_yen: int
    changes: Purses
    points_earned: int = 0
    payment: PaymentRecord | None = None
    # A charge's record: written by a charge, rewritten by its refund at the counter.
    charge: ChargeRecord | None = None
    store: str = ""
    till_id: str = ""
    overdraft_yen: int = 0


def meal_cap_yen(wallet: MemberWallet, rules: CoopRules) -> int:
    return rules.meal_plans.get(wallet.meal_plan, 0)


def meal_remaining_today_yen(wallet: MemberWallet, rules: CoopRules, day: int) -> int:
    used = wallet.meal_used_yen if wallet.meal_day == day else 0
    return max(0, min(wallet.balances.meal, meal_cap_yen(wallet, rules) - used))


def _on_day(wallet: MemberWallet, day: int) -> MemberWallet:
    if wallet.meal_day == day:
        return wallet
    return msgspec.structs.replace(wallet, meal_day=day, meal_used_yen=0)


def _over_limit(balances: Purses, rules: CoopRules) -> Declined | None:
    for purse, amount in balances.items():
        maximum = rules.purse_balance_max_yen[purse]
        if amount > maximum:
            return decline(
                Reason.OVER_LIMIT,
                f"the {purse.value} purse may hold at most {maximum:,} yen",
            )
    return None


def decide(
    op: MoneyOperation,
    wallet: MemberWallet | None,
    payment: PaymentRecord | None,
    coops: Mapping[str, CoopRules],
    now_ms: int,
    *,
    owed_yen: int = 0,
    charge: ChargeRecord | None = None,
) -> Change | Declined:
    """Decide one money operation. `payment` is the record named by a void or refund;
    `owed_yen` what the member's offline taps still owe (a withdrawal needs it); `charge`
    the record named by a charge's refund."""
    if isinstance(op, OpenWallet):
        return _open(op, wallet, coops, now_ms)
    if wallet is None:
        return decline(Reason.UNKNOWN_MEMBER, f"no wallet for member {op.member_no}")
    if wallet.status is WalletStatus.CLOSED:
        return decline(Reason.ACCOUNT_CLOSED, "the member withdrew; the account is closed")
    rules = coops[wallet.coop]
    wallet = _on_day(wallet, rules.day_of(now_ms))
    match op:
        case Pay() | OfflinePay():
            return _pay(op, wallet, rules)
        case VoidPayment():
            return _void(op, wallet, payment, rules)
        case Refund():
            return _refund(op, wallet, payment, rules)
        case SettleOverdraft():
            return _settle(op, wallet, payment, rules)
        case Charge():
            return _charge(op, wallet, rules)
        case Move():
            return _move(op, wallet, rules)
        case Withdraw():
            return _withdraw(op, wallet, rules, owed_yen)
        case RefundCharge():
            return _refund_charge(op, wallet, charge)
    raise AssertionError(f"unhandled operation {op!r}")  # pragma: no cover


def _open(
    op: OpenWallet, wallet: MemberWallet | None, coops: Mapping[str, CoopRules], now_ms: int
) -> Change | Declined:
    if wallet is not None:
        return decline(Reason.DUPLICATE, f"member {op.member_no} already has a wallet")
    rules = coops.get(op.coop)
    if rules is None:
        return decline(Reason.UNKNOWN_COOP, f"no co-op {op.coop!r} on this node")
    if op.meal_plan not in rules.meal_plans:
        return decline(Reason.UNKNOWN_MEAL_PLAN, f"no meal plan {op.meal_plan!r}")
    if op.deposits.get(Purse.POINTS, 0) > 0:
        return decline(Reason.PURSE_NOT_ALLOWED, "points cannot be bought")
    deposits = Purses.of(dict(op.deposits))
    refused = _over_limit(deposits, rules)
    if refused is not None:
        return refused
    opened = MemberWallet(
        member_no=op.member_no,
        coop=op.coop,
        meal_plan=op.meal_plan,
        balances=deposits,
        status=WalletStatus.ACTIVE,
        meal_day=rules.day_of(now_ms),
        meal_used_yen=0,
        emoney_used=False,
        opened_at_ms=now_ms,
    )
    postings = ledger.member_postings(op.member_no, deposits)
    if deposits.total():
        postings.append((ledger.ENROLMENT_DEPOSITS, -deposits.total()))
    return Change(
        kind="open",
        wallet=opened,
        postings=postings,
        amount_yen=deposits.total(),
        changes=deposits,
    )


def _plan_payment(
    op: Pay | OfflinePay, wallet: MemberWallet, rules: CoopRules
) -> tuple[Purses, int] | Declined:
    """What each purse pays and the overdraft. An offline tap has already happened, so
    neither suspension nor the payment maximum nor the balance can refuse it: the
    till's own offline limits bounded it, and what the purses cannot cover is owed."""
    meal_left = meal_remaining_today_yen(wallet, rules, wallet.meal_day)
    order = rules.spend_orders[op.till_kind]
    if isinstance(op, OfflinePay):
        return spend.allocate_upto(op.amount_yen, order, wallet.balances, meal_left)
    if wallet.status is WalletStatus.SUSPENDED:
        return decline(Reason.SUSPENDED, "the account is suspended")
    if op.amount_yen > rules.payment_max_yen:
        return decline(
            Reason.ABOVE_MAXIMUM, f"a payment may be at most {rules.payment_max_yen:,} yen"
        )
    paid = spend.allocate(op.amount_yen, order, wallet.balances, meal_left)
    if paid is None:
        return decline(Reason.INSUFFICIENT_FUNDS, "the balance does not cover the amount")
    return paid, 0


def _pay(op: Pay | OfflinePay, wallet: MemberWallet, rules: CoopRules) -> Change | Declined:
    plan = _plan_payment(op, wallet, rules)
    if isinstance(plan, Declined):
        return plan
    paid, overdraft = plan
    cap_left = rules.purse_balance_max_yen[Purse.POINTS] - (wallet.balances.points - paid.points)
    earned = max(0, min(spend.points_for(paid, rules.points_rate_bp[op.till_kind]), cap_left))
    balances = wallet.balances.add(paid.negate()).add(Purses(points=earned))
    new_wallet = msgspec.structs.replace(
        wallet,
        balances=balances,
        meal_used_yen=wallet.meal_used_yen + paid.meal,
        emoney_used=True,
    )
    postings = ledger.member_postings(op.member_no, paid.negate().add(Purses(points=earned)))
    postings.append((ledger.sales_account(op.store), op.amount_yen))
    if overdraft:
        postings.append((ledger.OVERDRAFT_RECEIVABLE, -overdraft))
    if earned:
        postings.append((ledger.POINTS_ISSUED, -earned))
    record = PaymentRecord(
        payment_key=op.key,
        member_no=op.member_no,
        amount_yen=op.amount_yen,
        paid=paid,
        points_earned=earned,
        day=wallet.meal_day,
        till_kind=op.till_kind,
        store=op.store,
        till_id=op.till_id,
        refunded=Purses(),
        points_clawed_back=0,
        voided=False,
        overdraft_yen=overdraft,
    )
    return Change(
        kind="pay" if isinstance(op, Pay) else "offline_pay",
        wallet=new_wallet,
        postings=postings,
        amount_yen=op.amount_yen,
        changes=paid.negate(),
        points_earned=earned,
        payment=record,
        store=op.store,
        till_id=op.till_id,
        overdraft_yen=overdraft,
    )


def _give_back(
    kind: str,
    wallet: MemberWallet,
    payment: PaymentRecord,
    back: Purses,
    rules: CoopRules,
    *,
    voided: bool,
) -> Change:
    """Return `back` to the purses of `payment`, clawing back the points it earned."""
    refunded = payment.refunded.add(back)
    money_paid = payment.paid.total() - payment.paid.points
    money_refunded = refunded.total() - refunded.points
    owed = (
        payment.points_earned
        if voided
        else payment.points_earned * money_refunded // max(money_paid, 1)
    )
    clawback = min(max(0, owed - payment.points_clawed_back), wallet.balances.points + back.points)
    balances = wallet.balances.add(back).add(Purses(points=-clawback))
    meal_used = wallet.meal_used_yen
    if payment.day == wallet.meal_day:
        meal_used = max(0, meal_used - back.meal)
    new_wallet = msgspec.structs.replace(wallet, balances=balances, meal_used_yen=meal_used)
    postings = ledger.member_postings(wallet.member_no, back.add(Purses(points=-clawback)))
    # A void also cancels what the member still owed for the sale: it was never paid.
    cancelled = payment.overdraft_yen if voided else 0
    postings.append((ledger.sales_account(payment.store), -back.total() - cancelled))
    if cancelled:
        postings.append((ledger.OVERDRAFT_RECEIVABLE, cancelled))
    if clawback:
        postings.append((ledger.POINTS_ISSUED, clawback))
    record = msgspec.structs.replace(
        payment,
        refunded=refunded,
        points_clawed_back=payment.points_clawed_back + clawback,
        voided=voided,
    )
    return Change(
        kind=kind,
        wallet=new_wallet,
        postings=postings,
        amount_yen=back.total(),
        changes=back,
        points_earned=-clawback,
        payment=record,
        store=payment.store,
        till_id=payment.till_id,
    )


def _void(
    op: VoidPayment, wallet: MemberWallet, payment: PaymentRecord | None, rules: CoopRules
) -> Change | Declined:
    if payment is None or payment.member_no != op.member_no:
        return decline(Reason.UNKNOWN_PAYMENT, f"no payment {op.payment_key!r} for this member")
    if payment.voided:
        return decline(Reason.ALREADY_VOIDED, "the payment is already voided")
    if payment.day != wallet.meal_day:
        return decline(Reason.VOID_WINDOW_CLOSED, "only today's payments can be voided; refund it")
    if payment.refunded.total():
        return decline(Reason.ALREADY_VOIDED, "the payment is partly refunded; refund the rest")
    return _give_back("void", wallet, payment, payment.paid, rules, voided=True)


def _refund(
    op: Refund, wallet: MemberWallet, payment: PaymentRecord | None, rules: CoopRules
) -> Change | Declined:
    if payment is None or payment.member_no != op.member_no:
        return decline(Reason.UNKNOWN_PAYMENT, f"no payment {op.payment_key!r} for this member")
    if payment.voided:
        return decline(Reason.ALREADY_VOIDED, "the payment is voided")
    # The part an offline tap still owes was never paid, so it cannot be refunded.
    refundable = payment.amount_yen - payment.overdraft_yen - payment.refunded.total()
    if op.amount_yen > refundable:
        return decline(
            Reason.REFUND_EXCEEDS_PAYMENT, f"at most {refundable:,} yen of it is refundable"
        )
    order = rules.spend_orders[payment.till_kind]
    back = spend.refund_split(op.amount_yen, order, payment.paid, payment.refunded)
    return _give_back("refund", wallet, payment, back, rules, voided=False)


def _settle(
    op: SettleOverdraft, wallet: MemberWallet, payment: PaymentRecord | None, rules: CoopRules
) -> Change | Declined:
    """Take an offline tap's overdraft from the purses, in the till kind's spend order.

    The purses' part joins what the tap paid, so a later void or refund gives it back
    like the rest; the receivable is cleared and earns no points."""
    if payment is None or payment.member_no != op.member_no:
        return decline(Reason.UNKNOWN_PAYMENT, f"no payment {op.payment_key!r} for this member")
    if payment.voided or not payment.overdraft_yen:
        return decline(Reason.NOTHING_OWED, "the payment owes nothing")
    order = rules.spend_orders[payment.till_kind]
    meal_left = meal_remaining_today_yen(wallet, rules, wallet.meal_day)
    taken = spend.allocate(payment.overdraft_yen, order, wallet.balances, meal_left)
    if taken is None:
        return decline(
            Reason.INSUFFICIENT_FUNDS,
            f"the balance does not cover the {payment.overdraft_yen:,} yen owed; charge first",
        )
    new_wallet = msgspec.structs.replace(
        wallet,
        balances=wallet.balances.add(taken.negate()),
        meal_used_yen=wallet.meal_used_yen + taken.meal,
    )
    postings = ledger.member_postings(op.member_no, taken.negate())
    postings.append((ledger.OVERDRAFT_RECEIVABLE, payment.overdraft_yen))
    record = msgspec.structs.replace(payment, paid=payment.paid.add(taken), overdraft_yen=0)
    return Change(
        kind="settle_overdraft",
        wallet=new_wallet,
        postings=postings,
        amount_yen=payment.overdraft_yen,
        changes=taken.negate(),
        payment=record,
        store=payment.store,
        till_id=payment.till_id,
    )


def _charge(op: Charge, wallet: MemberWallet, rules: CoopRules) -> Change | Declined:
    # A convenience store's payment (numbers issued before the suspension, paid after it)
    # is money the co-op already holds and cannot hand back by itself: it is credited to
    # the frozen purse, spendable once the account is resumed. A card payment can still
    # be voided and counter cash handed back, so those are refused.
    if wallet.status is WalletStatus.SUSPENDED and op.source is not ChargeSource.KONBINI:
        return decline(Reason.SUSPENDED, "the account is suspended")
    if op.purse not in CHARGEABLE_PURSES:
        return decline(Reason.PURSE_NOT_ALLOWED, f"the {op.purse.value} purse cannot be charged")
    if op.amount_yen < rules.charge_min_yen:
        return decline(Reason.BELOW_MINIMUM, f"a charge is at least {rules.charge_min_yen:,} yen")
    if op.amount_yen > rules.charge_max_yen:
        return decline(Reason.ABOVE_MAXIMUM, f"a charge is at most {rules.charge_max_yen:,} yen")
    added = Purses().with_(op.purse, op.amount_yen)
    balances = wallet.balances.add(added)
    refused = _over_limit(balances, rules)
    if refused is not None:
        return refused
    postings = ledger.member_postings(op.member_no, added)
    postings.append((ledger.CLEARING[op.source], -op.amount_yen))
    record = ChargeRecord(
        charge_key=op.key,
        member_no=op.member_no,
        purse=op.purse,
        amount_yen=op.amount_yen,
        source=op.source,
    )
    return Change(
        kind="charge",
        wallet=msgspec.structs.replace(wallet, balances=balances, emoney_used=True),
        postings=postings,
        amount_yen=op.amount_yen,
        changes=added,
        charge=record,
    )


def _refund_charge(
    op: RefundCharge, wallet: MemberWallet, charge: ChargeRecord | None
) -> Change | Declined:
    """Hand back a counter charge in cash: no more than it credited and was not handed
    back yet, and no more than its purse still holds (what was spent stays spent)."""
    if charge is None or charge.member_no != op.member_no:
        return decline(Reason.UNKNOWN_PAYMENT, f"no charge {op.charge_key!r} for this member")
    if charge.source is not ChargeSource.COUNTER:
        return decline(
            Reason.PURSE_NOT_ALLOWED,
            f"a {charge.source.value} charge is refunded the way it was paid, not at the counter",
        )
    refundable = min(charge.amount_yen - charge.refunded_yen, wallet.balances.get(charge.purse))
    if op.amount_yen > refundable:
        return decline(
            Reason.REFUND_EXCEEDS_PAYMENT, f"at most {refundable:,} yen of it is refundable"
        )
    taken = Purses().with_(charge.purse, -op.amount_yen)
    postings = ledger.member_postings(op.member_no, taken)
    postings.append((ledger.CLEARING[ChargeSource.COUNTER], op.amount_yen))
    return Change(
        kind="refund_charge",
        wallet=msgspec.structs.replace(wallet, balances=wallet.balances.add(taken)),
        postings=postings,
        amount_yen=op.amount_yen,
        changes=taken,
        charge=msgspec.structs.replace(charge, refunded_yen=charge.refunded_yen + op.amount_yen),
    )


def _move(op: Move, wallet: MemberWallet, rules: CoopRules) -> Change | Declined:
    if wallet.status is WalletStatus.SUSPENDED:
        return decline(Reason.SUSPENDED, "the account is suspended")
    if op.from_purse not in MOVE_SOURCES or op.to_purse not in MOVE_TARGETS:
        return decline(
            Reason.PURSE_NOT_ALLOWED, "money moves only from base to cafeteria or textbook"
        )
    if wallet.balances.get(op.from_purse) < op.amount_yen:
        return decline(Reason.INSUFFICIENT_FUNDS, f"the {op.from_purse.value} purse holds less")
    moved = Purses().with_(op.from_purse, -op.amount_yen).with_(op.to_purse, op.amount_yen)
    balances = wallet.balances.add(moved)
    refused = _over_limit(balances, rules)
    if refused is not None:
        return refused
    return Change(
        kind="move",
        wallet=msgspec.structs.replace(wallet, balances=balances, emoney_used=True),
        postings=ledger.member_postings(op.member_no, moved),
        amount_yen=op.amount_yen,
        changes=moved,
    )


def _withdraw(
    op: Withdraw, wallet: MemberWallet, rules: CoopRules, owed_yen: int
) -> Change | Declined:
    """Withdrawal at graduation: every purse paid back or kept under the co-op's rule,
    the share capital paid back, the wallet closed (`domain.withdrawal`)."""
    if owed_yen:
        return decline(
            Reason.OVERDRAFT_OWED,
            f"offline taps still owe {owed_yen:,} yen; settle or void them first",
        )
    planned = withdrawal.plan(
        wallet.balances, rules.withdrawal, wallet.meal_day, op.share_capital_yen
    )
    if planned.refund_yen != op.refund_yen:
        return decline(
            Reason.WITHDRAWAL_CHANGED,
            f"the refund is now {planned.refund_yen:,} yen, not {op.refund_yen:,}; look again",
        )
    emptied = planned.refunded.add(planned.forfeited)
    return Change(
        kind="withdraw",
        wallet=msgspec.structs.replace(wallet, balances=Purses(), status=WalletStatus.CLOSED),
        postings=withdrawal.postings(op.member_no, planned),
        amount_yen=planned.refund_yen,
        changes=emptied.negate(),
    )
