"""The till agent: the program a cashier runs next to a FeliCa reader.

A sale: the amount comes from the terminal prompt or from POS software through a small
loopback HTTP endpoint; the agent waits for a card on the reader, signs a tap frame with
the till's key, sends it over the till channel, shows the decision and prints a receipt
line. One sale at a time: a till has one reader.

Offline: when the node cannot be reached, or does not answer an online tap within
`agent_decision_timeout_s`, the agent approves the sale itself within the limits the
node gave it (per tap, per card per day, never a card on its last deny list) and queues
the signed frame on disk. When the link returns, every queued frame is sent again; the
node answers a repeat with its first decision, so each is booked exactly once. Two cases
need one more step, taken automatically:
  * an online frame that got no answer and that the till then refused offline may still
    have been booked: if the node says it was, the till voids it (the member got nothing);
  * an online frame that got no answer, that the till approved offline, and that the node
    then declines for want of funds is sent again as an offline tap under a new sequence
    number, so that the node books it with an overdraft instead of losing it.

What offline mode cannot know: a till holds the deny list, not the list of every card,
so a card that was never registered is approved offline (within the limits) and declined
when forwarded (unknown_card). Such a sale is logged as declined by the node after the
sale; the limits bound what that can cost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

import msgspec
from nacl.signing import SigningKey

from coopnode.domain.money import Purses, Reason
from coopnode.domain.till_frames import (
    Decision,
    DenyUpdate,
    RefundBody,
    SignedBody,
    TapBody,
    VoidBody,
    Welcome,
    frame_encoder,
    sign_body,
)
from coopnode.logs import get_logger
from coopnode.reader.till_key import TillKeyFile
from coopnode.reader.till_link import TillLink
from coopnode.reader.till_state import QueuedTap, SaleRecord, TillState, today
from coopnode.settings import TillSettings

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


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


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
        node_url: str,
        settings: TillSettings,
        state: TillState,
        taps: TapSource,
        out: Callable[[str], None] = print,
    ) -> None:
        self.till_id = key_file.till_id
        self._key: SigningKey = key_file.signing_key()
        self._settings = settings
        self.state = state
        self._taps = taps
        self._out = out
        self.link = TillLink(
            node_url, self.till_id, self._key, settings, self._welcomed, self._deny_update
        )
        self._sale_lock = asyncio.Lock()
        self._queue_changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self.link.run()), loop.create_task(self._forward_loop())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _welcomed(self, welcome: Welcome) -> None:
        self.state.remember_welcome(welcome)
        self._queue_changed.set()  # Forward whatever waited while the link was down.

    def _deny_update(self, update: DenyUpdate) -> None:
        self.state.apply_deny_update(update)
        log.info("deny list updated", version=update.version, blocked=len(update.blocked))

    # Sales -----------------------------------------------------------------------------

    async def sell(self, amount_yen: int) -> SaleOutcome:
        """Wait for a card, then charge it; one sale at a time."""
        async with self._sale_lock:
            self._taps.drain()  # A card tapped before the amount was keyed is not this sale.
            idm = await self._taps.next_tap(self._settings.agent_tap_wait_s)
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
            at_ms=_now_ms(),
            offline=not online,
        )
        if online:
            decision = await self.link.request(body, self._settings.agent_decision_timeout_s)
            if decision is not None:
                self.state.remember_sale(
                    SaleRecord(
                        seq=seq,
                        idm=idm,
                        amount_yen=amount_yen,
                        day=today(),
                        approved=decision.approved,
                    )
                )
                return self._show(_outcome(decision, idm))
        # Queued on disk and forwarded later, maybe over another connection: signed.
        return self._sell_offline(body, frame_encoder.encode(sign_body(self._key, body)))

    def _sell_offline(self, body: TapBody, frame: bytes) -> SaleOutcome:
        tap = QueuedTap(
            seq=body.seq,
            frame=frame,
            idm=body.idm,
            amount_yen=body.amount_yen,
            approved_locally=True,
            offline=body.offline,
        )
        refusal = self.state.approve_offline(tap, today())
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
                seq=body.seq, idm=body.idm, amount_yen=body.amount_yen, day=today(), approved=True
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
                till_id=self.till_id, seq=seq, idm=sale.idm, tap_seq=sale.seq, at_ms=_now_ms()
            )
        return RefundBody(
            till_id=self.till_id,
            seq=seq,
            idm=sale.idm,
            tap_till_id=self.till_id,
            tap_seq=sale.seq,
            amount_yen=refund_yen,
            at_ms=_now_ms(),
        )

    def _show(self, outcome: SaleOutcome) -> SaleOutcome:
        outcome = msgspec.structs.replace(outcome, receipt=receipt_line(self.till_id, outcome))
        self._out(outcome.receipt)
        return outcome

    # Forwarding the offline queue ------------------------------------------------------

    async def _forward_loop(self) -> None:
        self._queue_changed.set()
        while True:
            await self._queue_changed.wait()
            self._queue_changed.clear()
            await self.link.connected.wait()
            await self.forward_queue()

    async def forward_queue(self) -> int:
        """Send every queued frame again; return how many the node answered."""
        window = asyncio.Semaphore(self._settings.agent_forward_window)

        async def one(tap: QueuedTap) -> bool:
            async with window:
                return await self._forward(tap)

        answered = await asyncio.gather(*(one(tap) for tap in self.state.queued()))
        return sum(answered)

    async def _forward(self, tap: QueuedTap) -> bool:
        decision = await self.link.forward(
            tap.seq, tap.frame, self._settings.agent_decision_timeout_s
        )
        if decision is None:
            return False  # Still unreachable: the tap stays queued for the next link.
        if decision.approved and not tap.approved_locally:
            self._out(f"{self.till_id} #{tap.seq} was booked after the till refused it; voiding")
            self.state.remember_sale(
                SaleRecord(
                    seq=tap.seq, idm=tap.idm, amount_yen=tap.amount_yen, day=today(), approved=True
                )
            )
            await self._send_correction(tap.seq, None)
        elif not decision.approved and tap.approved_locally:
            self._declined_after_sale(tap, decision)
        else:
            self._out(f"{self.till_id} #{tap.seq} forwarded: {_verdict(decision)}")
        self.state.forwarded(tap.seq)
        return True

    def _declined_after_sale(self, tap: QueuedTap, decision: Decision) -> None:
        if not tap.offline and decision.reason is Reason.INSUFFICIENT_FUNDS:
            body = TapBody(
                till_id=self.till_id,
                seq=self.state.reserve_seq(),
                idm=tap.idm,
                amount_yen=tap.amount_yen,
                at_ms=_now_ms(),
                offline=True,
            )
            retry = QueuedTap(
                seq=body.seq,
                frame=frame_encoder.encode(sign_body(self._key, body)),
                idm=tap.idm,
                amount_yen=tap.amount_yen,
                approved_locally=True,
                offline=True,
            )
            self.state.queue_unanswered(retry)
            self._queue_changed.set()
            self._out(f"{self.till_id} #{tap.seq} declined late; re-sent offline as #{body.seq}")
            return
        log.warning(
            "a sale the till approved was declined by the node",
            till_id=self.till_id,
            seq=tap.seq,
            reason=str(decision.reason),
            amount_yen=tap.amount_yen,
        )
        self._out(
            f"{self.till_id} #{tap.seq} DECLINED BY THE NODE after the sale: {decision.reason}"
        )


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
