"""Charging in the front: card payments through the acquirer, convenience-store charges,
and crediting the wallet exactly once.

A card charge is recorded (authorizing) before the acquirer is called, authorized,
captured, and only then credited; a credit the wallet refuses (the purse filled up in
the meantime) voids the payment at the acquirer. A convenience-store charge is recorded
as pending with its payment number and deadline, and credited when the store network
reports the payment.

Exactly once: the charge is found again by the form's key (a double click is one
charge) or by its payment number (a second notification finds it paid), and the wallet
is credited with the key `charge:<charge id>`, which the wallet answers a second time
with the first result, so an acquirer or a store network that answers twice cannot
credit twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import NamedTuple

from coopnode.actors.payments.actor import PaymentsClient
from coopnode.actors.payments.messages import (
    CREDITABLE,
    FINAL,
    Advance,
    BeginCard,
    ByNumber,
    ChargeMethod,
    ChargeRecord,
    ChargeStatus,
    ClaimCredit,
    GetCharge,
    IssueKonbini,
    KonbiniPaid,
    MemberCharges,
    PaymentsReply,
    RefundKonbini,
    ReleaseCredit,
    Sweep,
    Uncredited,
)
from coopnode.actors.wallet.client import WalletClient
from coopnode.domain.charging import card_brand, start_error
from coopnode.domain.messages import Booked, Charge, ChargeSource, Declined, GetWallet, WalletView
from coopnode.domain.money import TRY_AGAIN_REASONS, Purse
from coopnode.logs import get_logger
from coopnode.payments.acquirer import AcquirerClient, AcquirerError, Card
from coopnode.settings import PaymentsSettings

log = get_logger(__name__)


# How often a page or a notice waiting on a charge that another caller holds looks again.
_WAIT_POLL_S = 0.1
DAY_MS = 86_400_000


class ChargeRefused(Exception):
    """A charge the payments actor refused: `key` names the reason in the catalogue."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class Credit(NamedTuple):
    """How an attempt to credit a charge ended.

    `outcome`: "credited" (by this call), "already_credited", "not_credited" (the
    wallet refused or did not answer: `reason`, and `final` when its refusal stands for
    good), "crediting" (another caller holds the charge), or the charge's status when it
    cannot be credited any more ("refunded", "failed").
    """

    record: ChargeRecord
    outcome: str
    reason: str = ""
    final: bool = False


def _one(reply: PaymentsReply) -> ChargeRecord:
    if reply.refused and not reply.charges:
        raise ChargeRefused(f"error.{reply.refused}")
    if len(reply.charges) != 1:
        raise ChargeRefused("error.unavailable")
    return reply.charges[0]


class Charging:
    """The charging operations the portal and the webhook call."""

    def __init__(
        self,
        settings: PaymentsSettings,
        payments: PaymentsClient,
        acquirer: AcquirerClient,
        wallet: WalletClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.payments = payments
        self.acquirer = acquirer
        self.wallet = wallet
        self.clock = clock

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def _advance(
        self, record: ChargeRecord, status: ChargeStatus, **fields: str
    ) -> ChargeRecord:
        op = Advance(charge_id=record.charge_id, status=status, now_ms=self.now_ms(), **fields)
        return _one(await self.payments.call(op))

    async def _check_start(self, member_no: str) -> None:
        """Refuse a charge the wallet could not take before any payment starts; the
        pages check the same first, this is for every other way in and for a suspension
        made since the page was shown."""
        view = await self.wallet.submit(GetWallet(member_no=member_no))
        if not isinstance(view, WalletView):
            raise ChargeRefused("error.unavailable")
        refused = start_error(view.status)
        if refused:
            log.info("charge refused before payment", member_no=member_no, reason=refused)
            raise ChargeRefused(refused)

    # Cards ----------------------------------------------------------------------------

    async def charge_card(
        self, member_no: str, form_key: str, purse: Purse, amount_yen: int, card: Card
    ) -> ChargeRecord:
        """Charge a card and credit the purse; the record says how it ended."""
        await self._check_start(member_no)
        begin = BeginCard(
            form_key=form_key,
            member_no=member_no,
            purse=purse,
            amount_yen=amount_yen,
            card_brand=card_brand(card.number).value,
            card_last4=card.number[-4:],
            now_ms=self.now_ms(),
        )
        reply = await self.payments.call(begin)
        record = _one(reply)
        if not reply.created:
            # Another click of the same form started this charge: wait for its end.
            return await self._wait(record)
        try:
            authorization = await self.acquirer.authorize(record.charge_id, amount_yen, card)
        except AcquirerError as error:
            log.warning("card authorization failed", charge_id=record.charge_id, error=str(error))
            return await self._advance(record, ChargeStatus.DECLINED, reason="acquirer_unavailable")
        if authorization.declined:
            reason = authorization.declined
            if reason not in ("card_declined", "insufficient_funds"):
                reason = "card_declined"
            log.info("card declined", charge_id=record.charge_id, reason=reason)
            return await self._advance(record, ChargeStatus.DECLINED, reason=reason)
        record = await self._advance(
            record, ChargeStatus.AUTHORIZED, acquirer_id=authorization.acquirer_id
        )
        try:
            await self.acquirer.capture(record.acquirer_id, record.charge_id)
        except AcquirerError as error:
            log.warning("card capture failed", charge_id=record.charge_id, error=str(error))
            await self._void(record)
            return await self._advance(record, ChargeStatus.FAILED, reason="acquirer_unavailable")
        record = await self._advance(record, ChargeStatus.CAPTURED)
        return (await self.credit(record, self.settings.card_wait_s)).record

    async def _void(self, record: ChargeRecord) -> None:
        try:
            await self.acquirer.void(record.acquirer_id, record.charge_id)
        except AcquirerError as error:
            # The payment stays at the acquirer; the log names it for the co-op's staff.
            log.error("card void failed", charge_id=record.charge_id, error=str(error))

    async def _wait(self, record: ChargeRecord) -> ChargeRecord:
        deadline = time.monotonic() + self.settings.card_wait_s
        while record.status not in FINAL and time.monotonic() < deadline:
            await asyncio.sleep(_WAIT_POLL_S)
            record = _one(await self.payments.call(GetCharge(charge_id=record.charge_id)))
        return record

    # Crediting --------------------------------------------------------------------------

    @staticmethod
    def _credit_op(record: ChargeRecord) -> Charge:
        source = ChargeSource.CARD if record.card_last4 else ChargeSource.KONBINI
        return Charge(
            key=f"charge:{record.charge_id}",
            member_no=record.member_no,
            purse=record.purse,
            amount_yen=record.amount_yen,
            source=source,
            reference=record.charge_id,
        )

    async def credit(self, record: ChargeRecord, wait_s: float = 0.0) -> Credit:
        """Credit a captured or paid charge to its purse, once whatever the retries.

        The charge is claimed in the payments store first, so that only one caller at a
        time asks the wallet: a caller that finds it claimed by another waits up to
        `wait_s` for that one's end, and answers "already_credited" if it credited (or
        "crediting" if it has not finished by then).
        """
        deadline = time.monotonic() + wait_s
        lease_ms = int(self.settings.credit_claim_s * 1000)
        while True:
            claim = ClaimCredit(charge_id=record.charge_id, now_ms=self.now_ms(), lease_ms=lease_ms)
            reply = await self.payments.call(claim)
            record = _one(reply)
            if reply.created:
                return await self._credit_claimed(record)
            if record.status is ChargeStatus.CREDITED:
                return Credit(record, "already_credited")
            if record.status not in CREDITABLE:
                return Credit(record, record.status.value)
            if time.monotonic() >= deadline:
                return Credit(record, "crediting")
            await asyncio.sleep(_WAIT_POLL_S)

    async def _credit_claimed(self, record: ChargeRecord) -> Credit:
        """Ask the wallet to credit a charge this caller has claimed, and record its answer."""
        result = await self.wallet.submit(self._credit_op(record))
        if isinstance(result, Booked):
            log.info("charge credited", charge_id=record.charge_id, amount_yen=record.amount_yen)
            credited = await self._advance(record, ChargeStatus.CREDITED)
            if credited.status is not ChargeStatus.CREDITED:
                # Cannot happen while a refund asks the wallet under the same claim and
                # the wallet keeps declines final per key; if it ever does (a claim's
                # lease ran out), the member holds the money twice and staff must take
                # one back by hand.
                log.error(
                    "charge credited after it was refunded",
                    charge_id=record.charge_id,
                    status=credited.status.value,
                )
            return Credit(credited, "credited")
        reason = result.reason.value if isinstance(result, Declined) else "unavailable"
        log.warning("charge not credited", charge_id=record.charge_id, reason=reason)
        # "Not now" (the credit may even have been booked: outcome_unknown) keeps the
        # captured charge, to be credited again under the same key; a final no voids it.
        final = isinstance(result, Declined) and result.reason not in TRY_AGAIN_REASONS
        if final and record.method is ChargeMethod.CARD:
            await self._void(record)
            failed = await self._advance(record, ChargeStatus.FAILED, reason=reason)
            return Credit(failed, "not_credited", reason, final=True)
        released = _one(await self.payments.call(ReleaseCredit(charge_id=record.charge_id)))
        return Credit(released, "not_credited", reason, final=final)

    # Convenience stores -----------------------------------------------------------------

    async def issue_konbini(
        self,
        member_no: str,
        form_key: str,
        purse: Purse,
        amount_yen: int,
        store: str,
        kana_name: str,
        mail: str,
    ) -> tuple[ChargeRecord, bool]:
        """The pending charge with its numbers, and whether it is new (to mail it once)."""
        await self._check_start(member_no)
        now_ms = self.now_ms()
        op = IssueKonbini(
            form_key=form_key,
            member_no=member_no,
            purse=purse,
            amount_yen=amount_yen,
            store=store,
            kana_name=kana_name,
            mail=mail,
            pay_by_ms=now_ms + self.settings.konbini_pay_days * DAY_MS,
            now_ms=now_ms,
            pending_max=self.settings.konbini_pending_max,
        )
        reply = await self.payments.call(op)
        return _one(reply), reply.created

    async def konbini_paid(self, payment_number: str, amount_yen: int) -> tuple[ChargeRecord, str]:
        """Record a store's payment and credit it; the record and what happened:
        "credited", "already_credited", "refunded", "not_credited" or "crediting" (try
        again), or a refusal ("unknown", "amount", "expired").
        """
        op = KonbiniPaid(payment_number=payment_number, amount_yen=amount_yen, now_ms=self.now_ms())
        reply = await self.payments.call(op)
        if reply.refused:
            raise ChargeRefused(reply.refused)
        credit = await self.credit(_one(reply), self.settings.credit_wait_s)
        return credit.record, credit.outcome

    async def sweep(self, at_ms: int | None = None) -> list[ChargeRecord]:
        """Expire the pending charges whose deadline has passed (at `at_ms`, or now)."""
        now_ms = self.now_ms() if at_ms is None else at_ms
        op = Sweep(now_ms=now_ms, limit=self.settings.konbini_sweep_batch_max)
        expired = (await self.payments.call(op)).charges
        if expired:
            log.info("konbini charges expired", count=len(expired))
        # Charges whose credit the wallet could not take at the time (it was restarting)
        # are credited now, with the same key, so they are never credited twice.
        before_ms = self.now_ms() - int(self.settings.konbini_sweep_interval_s * 1000)
        stuck = Uncredited(before_ms=before_ms, limit=self.settings.konbini_sweep_batch_max)
        for record in (await self.payments.call(stuck)).charges:
            # A charge claimed by a live caller is left to it; the next sweep looks again.
            await self.credit(record)
        return expired

    async def refund_konbini(
        self, charge_id: str, actor: str, note: str
    ) -> tuple[ChargeRecord, bool]:
        """Record the refund of a paid charge the wallet would not credit; the record and
        whether this call refunded it (False: it was refunded before, and nothing changed).

        The wallet is asked once more first, with the charge's own credit key and under the
        charge's credit claim: a charge it takes now (or took before) is credited, not
        refunded (`ChargeRefused("error.already_credited")`), and a wallet that does not
        answer, or answers "not now", or a charge another caller is crediting, refunds
        nothing (`error.unavailable`). Any other decline is kept
        by the wallet under that key, so no later retry can book the credit: money is
        never both credited and paid back.
        """
        record = await self.get(charge_id)
        if record is None:
            raise ChargeRefused("error.unknown")
        if record.status is ChargeStatus.REFUNDED:
            return record, False
        if record.status is not ChargeStatus.PAID:
            raise ChargeRefused("error.not_refundable")
        credit = await self.credit(record)
        if credit.outcome in ("credited", "already_credited"):
            raise ChargeRefused("error.already_credited")
        if credit.outcome == "refunded":
            return credit.record, False
        if not credit.final:
            raise ChargeRefused("error.unavailable")
        op = RefundKonbini(charge_id=charge_id, now_ms=self.now_ms(), actor=actor, note=note)
        reply = await self.payments.call(op)
        if reply.refused:
            raise ChargeRefused(f"error.{reply.refused}")
        log.info("konbini charge refunded", charge_id=charge_id, created=reply.created)
        return _one(reply), reply.created

    async def get(self, charge_id: str) -> ChargeRecord | None:
        reply = await self.payments.call(GetCharge(charge_id=charge_id))
        return reply.charges[0] if reply.charges else None

    async def by_number(self, payment_number: str) -> ChargeRecord | None:
        reply = await self.payments.call(ByNumber(payment_number=payment_number))
        return reply.charges[0] if reply.charges else None

    async def member_charges(self, member_no: str) -> list[ChargeRecord]:
        op = MemberCharges(member_no=member_no, limit=self.settings.member_charges_shown_max)
        return (await self.payments.call(op)).charges
