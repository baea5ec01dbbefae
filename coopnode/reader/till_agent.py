"""The till agent: the program a cashier runs next to a FeliCa reader.

A sale: the amount comes from the terminal prompt or from POS software through a small
loopback HTTP endpoint; the agent waits for a card on the reader, signs a tap frame with
the till's key, sends it over the till channel, shows the decision and prints a receipt
line. One sale at a time: a till has one reader.

Several fronts: given the URLs of every front of a cluster, the agent's link moves to the
next front when its own is lost (`TillLink`), and the queue is forwarded there: a frame
the lost front booked but never answered is answered from the wallet's records, so it is
booked once whichever front hears it again.

Offline: when no node can be reached, or does not answer an online tap within
`agent_decision_timeout_s`, or answers "try again" (overloaded, unavailable: after which
the tap may even have been booked), the agent approves the sale itself within the limits
the node gave it (per tap, per card per day, never a card on its last deny list) and
queues the signed frame on disk. When the link returns, every queued frame is sent again
under its own number; the node answers a repeat with its first decision, so each is
booked exactly once, and a frame answered "try again" stays queued and is sent again
after `agent_forward_retry_s`. Some answers need one more frame, which takes the answered
one's place in the queue in one transaction (a crash leaves one or the other, never both):
  * an online frame the till refused (over its offline limits) that the node booked all
    the same: the member walked away without the goods, so the till voids it, or refunds
    the whole amount when the void arrives after the day has turned;
  * an online frame the till approved that the node declines (funds, a card blocked
    meanwhile): the till's approval stands, so it is sent again as an offline tap dated
    when the card was tapped, which the node books with any shortfall owed.
An offline tap states the limits the till approved it under, and the node judges it by
them (if it gave them to this till), not by its limits of the day it is forwarded. A
queued frame the node refuses for good (an offline sale it declines, a signature it does
not accept) will never be booked: it is set aside in the till's files with the node's
reason, for staff, never dropped, nor sent on every link until the node closes the link
for bad frames; the node keeps the same sale on its list for staff.

What offline mode cannot know: a till holds the deny list, not the list of every card,
so a card that was never registered is approved offline (within the limits) and declined
when forwarded (unknown_card). Such a sale is set aside as declined by the node after the
sale; the limits bound what that can cost.

The till's clock (`TillState.clock_ms`) dates its sales, and its day is the co-op's
(`days.coop_day`), as the node's is.

Long, and kept whole: the agent's online and offline paths share one queue and one
sequence of numbers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec
from nacl.signing import SigningKey

from coopnode.domain.days import coop_day
from coopnode.domain.errors import InvariantViolation
from coopnode.domain.money import TRY_AGAIN_REASONS, Purses, Reason
from coopnode.domain.till_frames import (
    Decision,
    DenyUpdate,
    RefundBody,
    Refused,
    Signed,
    SignedBody,
    TapBody,
    VoidBody,
    Welcome,
    frame_encoder,
    signed_body_decoder,
    till_frame_decoder,
)
from coopnode.logs import get_logger
from coopnode.reader.till_key import TillKeyFile
from coopnode.reader.till_link import TillLink
from coopnode.reader.till_state import QueuedTap, SaleRecord, TillState
from coopnode.settings import TillSettings
from coopnode.till_keys import sign_body

log = get_logger(__name__)


class TapSource(Protocol):
    """Where cards come from: the reader, or a test."""

    def drain(self) -> None: ...

    async def next_tap(self, timeout_s: float) -> str | None: ...


class SaleOutcome(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What the cashier (or the POS software) is told about one sale, void or refund."""

    seq: int
    kind: str
    approved: bool
    offline: bool
    amount_yen: int
    reason: str = ""
    message: str = ""
    card_suffix: str = ""
    paid: Purses = Purses()
    balances: Purses | None = None
    meal_remaining_today_yen: int = 0
    points_earned: int = 0
    overdraft_yen: int = 0
    queued_offline: int = 0
    receipt: str = ""


def receipt_line(till_id: str, outcome: SaleOutcome) -> str:
    """One line for the cashier's screen and the receipt printer."""
    head = f"{till_id} #{outcome.seq} {outcome.kind} ¥{outcome.amount_yen:,}"
    head += f" card …{outcome.card_suffix}"
    if not outcome.approved:
        return f"{head} DECLINED {outcome.reason}: {outcome.message}"
    if outcome.offline:
        return f"{head} APPROVED OFFLINE ({outcome.queued_offline} queued for the node)"
    paid = " ".join(f"{purse.value} {yen:,}" for purse, yen in outcome.paid.items() if yen)
    line = f"{head} APPROVED paid [{paid or '-'}]"
    if outcome.balances is not None:
        left = " ".join(f"{purse.value} {yen:,}" for purse, yen in outcome.balances.items())
        line += f" balance [{left}] meal left today ¥{outcome.meal_remaining_today_yen:,}"
    if outcome.points_earned:
        line += f" +{outcome.points_earned} points"
    if outcome.overdraft_yen:
        line += f" overdraft ¥{outcome.overdraft_yen:,}"
    return line


class TillAgent:
    def __init__(
        self,
        key_file: TillKeyFile,
        node_urls: str | Sequence[str],
        settings: TillSettings,
        state: TillState,
        taps: TapSource,
        out: Callable[[str], None] = print,
    ) -> None:
        self.till_id = key_file.till_id
        self._now_ms = state.clock_ms
        self._key: SigningKey = key_file.signing_key()
        self._settings = settings
        self.state = state
        self._taps = taps
        self._out = out
        # One node's URL, or every front of a cluster, first to last (`TillLink`).
        self.link = TillLink(
            node_urls, self.till_id, self._key, settings, self._welcomed, self._deny_update
        )
        self._sale_lock = asyncio.Lock()
        self._queue_changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # The amount of the sale now waiting for a card (0: none): the POS shows "タッチして
        # ください" from it, and a card laid on the reader before it is not this sale's.
        self.awaiting_card_yen = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self.link.run()), loop.create_task(self._forward_loop())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _welcomed(self, welcome: Welcome) -> None:
        self.state.remember_welcome(welcome)
        behind = self.state.advance_seq(welcome.seq_seen + 1)
        if behind is not None:
            log.warning(
                "the till's sequence counter was behind the node's; moved past it",
                till_id=self.till_id,
                was=behind,
                now=welcome.seq_seen + 1,
            )
            self._out(
                f"{self.till_id} numbering resumes at #{welcome.seq_seen + 1} "
                f"(this till's files counted only to #{behind - 1}: restored from a backup?)"
            )
        self._queue_changed.set()  # Forward whatever waited while the link was down.

    def _deny_update(self, update: DenyUpdate) -> None:
        self.state.apply_deny_update(update)
        log.info("deny list updated", version=update.version, blocked=len(update.blocked))

    # Sales -----------------------------------------------------------------------------

    async def sell(self, amount_yen: int) -> SaleOutcome:
        """Wait for a card, then charge it; one sale at a time."""
        async with self._sale_lock:
            self._taps.drain()  # A card tapped before the amount was keyed is not this sale.
            self.awaiting_card_yen = amount_yen
            try:
                idm = await self._taps.next_tap(self._settings.agent_tap_wait_s)
            finally:
                self.awaiting_card_yen = 0
            if idm is None:
                return self._show(
                    SaleOutcome(
                        seq=0,
                        kind="tap",
                        approved=False,
                        offline=False,
                        amount_yen=amount_yen,
                        reason="no_card",
                        message="no card was presented in time",
                    )
                )
            return await self._charge(idm, amount_yen)

    async def charge(self, idm: str, amount_yen: int) -> SaleOutcome:
        """Charge a card already read (fixed-price tills, tests)."""
        async with self._sale_lock:
            return await self._charge(idm, amount_yen)

    async def _charge(self, idm: str, amount_yen: int) -> SaleOutcome:
        seq = self.state.reserve_seq()
        online = self.link.online
        body = TapBody(
            till_id=self.till_id,
            seq=seq,
            idm=idm,
            amount_yen=amount_yen,
            at_ms=self._now_ms(),
            offline=not online,
            limits=None if online else self.state.limits,
        )
        if online:
            decision = await self.link.request(body, self._settings.agent_decision_timeout_s)
            # "Try again" is no answer: after UNAVAILABLE the frame may have been booked,
            # so it is queued and sent again under this number, never re-tapped as new.
            if decision is not None and decision.reason not in TRY_AGAIN_REASONS:
                self.state.remember_sale(
                    SaleRecord(
                        seq=seq,
                        idm=idm,
                        amount_yen=amount_yen,
                        day=coop_day(body.at_ms),
                        approved=decision.approved,
                    )
                )
                return self._show(_outcome(decision, idm))
        # Queued on disk and forwarded later, maybe over another connection: signed.
        return self._sell_offline(body, frame_encoder.encode(sign_body(self._key, body)))

    def _sell_offline(self, body: TapBody, frame: bytes) -> SaleOutcome:
        day = coop_day(body.at_ms)
        tap = QueuedTap(
            seq=body.seq,
            frame=frame,
            idm=body.idm,
            amount_yen=body.amount_yen,
            approved_locally=True,
            offline=body.offline,
            limits=self.state.limits,
        )
        refusal = self.state.approve_offline(tap, day)
        if refusal is not None and not body.offline:
            # The online frame may have reached the node: learn its fate, void if booked.
            self.state.queue_unanswered(msgspec.structs.replace(tap, approved_locally=False))
        self._queue_changed.set()
        queued = self.state.queued_count()
        if refusal is not None:
            reason, message = refusal
            return self._show(_local(body, approved=False, reason=reason, message=message))
        self.state.remember_sale(
            SaleRecord(
                seq=body.seq, idm=body.idm, amount_yen=body.amount_yen, day=day, approved=True
            )
        )
        return self._show(_local(body, approved=True, queued=queued))

    async def void(self, tap_seq: int) -> SaleOutcome:
        """Void a sale this till made today (online only: a void needs the node)."""
        async with self._sale_lock:
            return await self._send_correction(tap_seq, None)

    async def refund(self, tap_seq: int, amount_yen: int) -> SaleOutcome:
        async with self._sale_lock:
            return await self._send_correction(tap_seq, amount_yen)

    async def _send_correction(self, tap_seq: int, refund_yen: int | None) -> SaleOutcome:
        sale = self.state.sale(tap_seq)
        kind = "void" if refund_yen is None else "refund"
        if sale is None or not sale.approved:
            return self._show(_refused(tap_seq, kind, Reason.UNKNOWN_PAYMENT, "no such sale"))
        if not self.link.online:
            return self._show(
                _refused(tap_seq, kind, Reason.UNAVAILABLE, "the node is unreachable; retry")
            )
        body = self._correction_body(sale, refund_yen)
        decision = await self.link.request(body, self._settings.agent_decision_timeout_s)
        if decision is None:
            return self._show(_refused(body.seq, kind, Reason.UNAVAILABLE, "no answer; retry"))
        return self._show(_outcome(decision, sale.idm))

    def _correction_body(self, sale: SaleRecord, refund_yen: int | None) -> SignedBody:
        seq = self.state.reserve_seq()
        if refund_yen is None:
            return VoidBody(
                till_id=self.till_id, seq=seq, idm=sale.idm, tap_seq=sale.seq, at_ms=self._now_ms()
            )
        return RefundBody(
            till_id=self.till_id,
            seq=seq,
            idm=sale.idm,
            tap_till_id=self.till_id,
            tap_seq=sale.seq,
            amount_yen=refund_yen,
            at_ms=self._now_ms(),
        )

    def _show(self, outcome: SaleOutcome) -> SaleOutcome:
        outcome = msgspec.structs.replace(outcome, receipt=receipt_line(self.till_id, outcome))
        self._out(outcome.receipt)
        return outcome

    # Forwarding the offline queue ------------------------------------------------------

    async def _forward_loop(self) -> None:
        self._queue_changed.set()
        loop = asyncio.get_running_loop()
        while True:
            await self._queue_changed.wait()
            self._queue_changed.clear()
            await self.link.connected.wait()
            await self.forward_queue()
            if self.state.queued_count():
                # Some frames got no answer, or "try again": send them again a little later.
                loop.call_later(self._settings.agent_forward_retry_s, self._queue_changed.set)

    async def forward_queue(self) -> int:
        """Send every queued frame again; return how many the node answered for good."""
        window = asyncio.Semaphore(self._settings.agent_forward_window)

        async def one(tap: QueuedTap) -> bool:
            async with window:
                return await self._forward(tap)

        answered = await asyncio.gather(*(one(tap) for tap in self.state.queued()))
        return sum(answered)

    async def _forward(self, queued: QueuedTap) -> bool:
        """Send one queued frame; act on the node's answer. False: it stays queued."""
        decision = await self.link.forward(
            queued.seq, queued.frame, self._settings.agent_decision_timeout_s
        )
        if decision is None:
            return False  # Unreachable: the same frame is sent again later.
        if isinstance(decision, Refused):
            self._set_aside(queued, decision.reason, decision.message)
            return True
        if decision.reason in TRY_AGAIN_REASONS:
            # "Not now", after which the frame may even have been booked: the same frame is
            # sent again later, and the node books it at most once.
            return False
        if queued.reverses:
            self._reversal_answered(queued, decision)
        elif decision.approved and not queued.approved_locally:
            self._booked_after_refusal(queued)
        elif not decision.approved and queued.approved_locally:
            self._declined_after_sale(queued, decision)
        else:
            self._out(f"{self.till_id} #{queued.seq} forwarded: {_verdict(decision)}")
            self.state.forwarded(queued.seq)
        return True

    def _set_aside(self, queued: QueuedTap, reason: str, message: str) -> None:
        """The node will never take this frame (a sale it declined after the till made it,
        a signature it does not accept, a frame it cannot read): sending it again would
        get the same answer, or the link closed for bad frames, and dropping it would
        lose the sale, so it is set aside, with the reason, for staff."""
        self.state.set_aside(queued.seq, reason, message, self._now_ms())
        log.error(
            "the node refused a queued frame; set aside",
            till_id=self.till_id,
            seq=queued.seq,
            reason=reason,
            amount_yen=queued.amount_yen,
        )
        self._out(
            f"{self.till_id} #{queued.seq} REFUSED BY THE NODE ({reason}): set aside; "
            "staff must check this sale"
        )

    def _follow_up(self, queued: QueuedTap, body: SignedBody, reverses: int = 0) -> None:
        """Put `body` in the queue in place of `queued`, in one transaction."""
        self.state.replace_queued(
            queued.seq,
            QueuedTap(
                seq=body.seq,
                frame=frame_encoder.encode(sign_body(self._key, body)),
                idm=queued.idm,
                amount_yen=queued.amount_yen,
                approved_locally=reverses == 0,
                offline=isinstance(body, TapBody) and body.offline,
                reverses=reverses,
                limits=body.limits if isinstance(body, TapBody) else None,
            ),
        )
        self._queue_changed.set()

    def _booked_after_refusal(self, queued: QueuedTap) -> None:
        """The node booked an online frame the till refused when it got no answer: the
        member walked away without the goods, so the payment is voided."""
        void = VoidBody(
            till_id=self.till_id,
            seq=self.state.reserve_seq(),
            idm=queued.idm,
            tap_seq=queued.seq,
            at_ms=self._now_ms(),
        )
        self._follow_up(queued, void, reverses=queued.seq)
        self._out(f"{self.till_id} #{queued.seq} was booked after the till refused it; voiding")

    def _reversal_answered(self, queued: QueuedTap, decision: Decision) -> None:
        body = _queued_body(queued)
        if decision.approved:
            self._out(f"{self.till_id} #{queued.reverses} reversed by #{queued.seq}")
            self.state.forwarded(queued.seq)
        elif isinstance(body, VoidBody) and decision.reason is Reason.VOID_WINDOW_CLOSED:
            # Forwarded after the day turned: a refund of the whole amount does the same.
            refund = RefundBody(
                till_id=self.till_id,
                seq=self.state.reserve_seq(),
                idm=queued.idm,
                tap_till_id=self.till_id,
                tap_seq=queued.reverses,
                amount_yen=queued.amount_yen,
                at_ms=self._now_ms(),
            )
            self._follow_up(queued, refund, reverses=queued.reverses)
            self._out(f"{self.till_id} #{queued.reverses} is yesterday's: refunding instead")
        else:
            # Already reversed (staff voided it), or the node will not: staff must look.
            log.warning(
                "a sale the till refused could not be reversed",
                till_id=self.till_id,
                seq=queued.reverses,
                reason=str(decision.reason),
            )
            self._out(
                f"{self.till_id} #{queued.reverses} NOT REVERSED: {decision.reason}; "
                "staff must check the member's payment"
            )
            self.state.forwarded(queued.seq)

    def _declined_after_sale(self, queued: QueuedTap, decision: Decision) -> None:
        if not queued.offline:
            # An online frame the till approved when it got no answer. The node judged it
            # as online (balance, card, account now); the till's approval stands as an
            # offline tap made when the card was tapped, under the limits of then, which
            # the node books with any shortfall owed, unless the card was already blocked.
            tapped = _queued_body(queued)
            body = TapBody(
                till_id=self.till_id,
                seq=self.state.reserve_seq(),
                idm=queued.idm,
                amount_yen=queued.amount_yen,
                at_ms=tapped.at_ms,
                offline=True,
                limits=queued.limits or self.state.limits,
            )
            self._follow_up(queued, body)
            self._out(
                f"{self.till_id} #{queued.seq} declined late ({decision.reason}); "
                f"re-sent offline as #{body.seq}"
            )
            return
        # The sale was made and the node will not book it: the node keeps it on its list
        # for staff, and the till keeps it set aside; it is never just dropped.
        reason = "" if decision.reason is None else decision.reason.value
        self._set_aside(queued, reason, decision.message)


def _queued_body(queued: QueuedTap) -> SignedBody:
    """The body of a queued frame, which the till itself signed."""
    frame = till_frame_decoder.decode(queued.frame)
    if not isinstance(frame, Signed):
        raise InvariantViolation(f"queued frame {queued.seq} is not a signed frame")
    return signed_body_decoder.decode(frame.body)


def _verdict(decision: Decision) -> str:
    if not decision.approved:
        return f"declined {decision.reason}"
    if decision.overdraft_yen:
        return f"booked, overdraft ¥{decision.overdraft_yen:,}"
    return "booked"


def _outcome(decision: Decision, idm: str) -> SaleOutcome:
    return SaleOutcome(
        seq=decision.seq,
        kind=decision.kind,
        approved=decision.approved,
        offline=decision.offline,
        amount_yen=decision.amount_yen,
        reason="" if decision.reason is None else decision.reason.value,
        message=decision.message,
        card_suffix=idm[-4:],
        paid=decision.paid,
        balances=decision.balances if decision.approved else None,
        meal_remaining_today_yen=decision.meal_remaining_today_yen,
        points_earned=decision.points_earned,
        overdraft_yen=decision.overdraft_yen,
    )


def _local(
    body: TapBody,
    *,
    approved: bool,
    reason: Reason | None = None,
    message: str = "",
    queued: int = 0,
) -> SaleOutcome:
    return SaleOutcome(
        seq=body.seq,
        kind="tap",
        approved=approved,
        offline=True,
        amount_yen=body.amount_yen,
        reason="" if reason is None else reason.value,
        message=message,
        card_suffix=body.idm[-4:],
        queued_offline=queued,
    )


def _refused(seq: int, kind: str, reason: Reason, message: str) -> SaleOutcome:
    return SaleOutcome(
        seq=seq, kind=kind, approved=False, offline=False, amount_yen=0, reason=reason.value,
        message=message,
    )  # fmt: skip
