"""The front's copy of the card and till registry, and the tills connected to it.

The tap path must not pay a Ray hop to learn who a card belongs to, so every front keeps
the registry in memory: IDm → card, till id → till (with its verify key), the suspended
members, and the deny list derived from them. The copy is loaded from the registry actor
at start. Staff changes go through a front, which applies them to the registry actor
first (durable), then to its copy, then pushes the deny-list change to every till it
has connected and closes the connection of a till that is now retired. Every other front
of the cluster gets the change pushed by the registry: each holds one waiting call,
`changes_since(version)`, which the actor answers as soon as a change lands (`watch`),
and does the same with it. A front that fell behind the actor's log reloads the snapshot;
and every `registry_refresh_s` it compares versions and reloads on a difference, the
repair path for a push that was lost while the actor restarted.

Every front saves, every `sequences_save_s`, the highest sequence number it saw from each
till, and reads the till's saved number when it welcomes the till, so that a till that
moves between fronts is told the highest number any of them saw (`welcome_seq`).

A wallet suspended or resumed, by staff, at the counter or by the member, is brought to
the registry by `sync_suspended`, the one way in for every such path.

The hub also keeps each till's history of the offline limits sent to it (recorded in the
registry before a `Welcome` carries new ones), against which a forwarded offline tap's
stated limits are checked, and records for staff every offline tap the node refuses.

Changes are made one at a time (a lock), so versions reach the copy and the tills in
order; staff make a few changes a minute, so nothing waits long.

Long, and kept whole: the front's copy of the registry, the changes pushed into it and
the tills told of them are one state, changed under one lock.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

import msgspec
from nacl.signing import VerifyKey

from coopnode.actors.kernel.clock import system_ms
from coopnode.actors.registry.messages import (
    CardRecord,
    CardStatus,
    RefusedOfflineTap,
    RegistryChange,
    RegistryChanges,
    RegistryOp,
    RegistrySnapshot,
    SetSuspended,
    TillRecord,
)
from coopnode.actors.wallet.client import WalletClient
from coopnode.domain.messages import Declined, GetWallet, WalletStatus, WalletView
from coopnode.domain.money import Reason
from coopnode.domain.offline import LimitsSent, limits_in_force, node_offline_refusal
from coopnode.domain.till_frames import (
    CloseCode,
    Decision,
    DenyUpdate,
    OfflineLimits,
    TapBody,
    frame_encoder,
)
from coopnode.http.tills.activity import TillActivity
from coopnode.http.tills.signatures import SignatureVerifier
from coopnode.logs import get_logger
from coopnode.metrics import Metrics
from coopnode.settings import LiveSettings, TillSettings

log = get_logger(__name__)

_change_decoder = msgspec.msgpack.Decoder(RegistryChange)
_changes_decoder = msgspec.msgpack.Decoder(RegistryChanges)
_snapshot_decoder = msgspec.msgpack.Decoder(RegistrySnapshot)
_sequences_decoder = msgspec.msgpack.Decoder(dict[str, int])
_history_decoder = msgspec.msgpack.Decoder(list[LimitsSent])
_histories_decoder = msgspec.msgpack.Decoder(dict[str, list[LimitsSent]])
_refused_list_decoder = msgspec.msgpack.Decoder(list[RefusedOfflineTap])


class Pushable(Protocol):
    """A connected till, as the hub sees it."""

    till_id: str

    def push(self, frame: bytes) -> None: ...

    def close_soon(self, code: int, reason: str) -> None: ...


class RegistryUnavailable(Exception):
    """The registry actor did not answer in time; nothing was changed."""


class DenyListNotUpdated(Exception):
    """A member's suspension or resumption did not reach the registry, because the wallet
    or the registry did not answer: the wallet's own status stands, and the same request
    sent again (suspending and resuming are idempotent) finishes the job."""


class RefusalsFull(Exception):
    """The till has `offline_refused_per_till_max` refused offline taps kept already: the
    next one is not kept, and waits in the till's queue until staff look."""


# After a failed watch call the next waits this long, doubled up to `registry_refresh_s`:
# the registry actor restarts within a second or two.
WATCH_BACKOFF_S = 0.1


class TillHub:
    def __init__(
        self,
        registry: Any,
        settings: TillSettings,
        metrics: Metrics,
        activity: TillActivity | None = None,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.metrics = metrics
        # What each connected till did, for the staff console (`activity.py`).
        self.activity = activity or TillActivity(LiveSettings().forwarded_kept_per_till, system_ms)
        self._stopped = False
        self._decision_counters: dict[tuple[str, bool, Reason | None], Any] = {}
        self.version = 0
        self.cards: dict[str, CardRecord] = {}
        # member number → their active card (a member has at most one).
        self.active_cards: dict[str, CardRecord] = {}
        self.tills: dict[str, TillRecord] = {}
        self.verify_keys: dict[str, VerifyKey] = {}
        self.suspended: set[str] = set()
        # Till id → the highest sequence number saved in the registry (`note_sequences`).
        self.sequences: dict[str, int] = {}
        # Till id → the offline limits sent to it, oldest first, as the registry holds them.
        self.limits_history: dict[str, list[LimitsSent]] = {}
        self.deny: frozenset[str] = frozenset()
        self.connections: dict[str, Pushable] = {}
        # Kept per till across its reconnections: pacing and recent frames.
        self.buckets: dict[str, TokenBucket] = {}
        self.windows: dict[str, ReplayWindow] = {}
        self.signatures = SignatureVerifier()
        self._lock = asyncio.Lock()
        # Held while a member's wallet status is read and written to the registry.
        self._status_lock = asyncio.Lock()
        # The hub's own tasks: the push watcher, the repair reload, the sequence saver.
        self._tasks: list[asyncio.Task[None]] = []
        # Called after each deny-list push with the update and the tills it went to.
        self.on_push: Callable[[DenyUpdate, int], None] | None = None

    async def _call(self, method: str, *args: Any, timeout_s: float | None = None) -> Any:
        ref = getattr(self.registry, method).remote(*args)
        try:
            return await asyncio.wait_for(
                asyncio.wrap_future(ref.future()),
                timeout_s or self.settings.registry_call_timeout_s,
            )
        except TimeoutError:
            raise RegistryUnavailable(f"the registry did not answer {method} in time") from None

    async def start(self, ready_timeout_s: float) -> None:
        """Load the registry; its actor may still be starting, hence the longer wait."""
        self._load(
            _snapshot_decoder.decode(await self._call("snapshot", timeout_s=ready_timeout_s))
        )
        self.deny = self._deny_set()
        self.sequences = _sequences_decoder.decode(
            await self._call("sequences", timeout_s=ready_timeout_s)
        )
        self.limits_history = _histories_decoder.decode(
            await self._call("limits_history", timeout_s=ready_timeout_s)
        )
        self.signatures.start(asyncio.get_running_loop())
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._watch_loop()),
            loop.create_task(self._refresh_loop()),
            loop.create_task(self._save_loop()),
        ]

    async def stop(self) -> None:
        """Close every till's connection and save the sequence numbers; a second call
        does nothing (the node calls it before its runner waits for handlers, and again
        when a start fails half way)."""
        if self._stopped:
            return
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for connection in list(self.connections.values()):
            connection.close_soon(CloseCode.GOING_AWAY, "the node is stopping")
        try:
            await self.note_sequences()
        except Exception as error:  # Stopping goes on; a till's own counter is the first guard.
            log.warning("till sequence numbers not saved", error=repr(error))
        self.signatures.stop()

    def seq_seen(self, till_id: str) -> int:
        """The highest sequence number this node has seen from the till, as far as this
        front knows (saved by this or another front, or in this front's replay window)."""
        window = self.windows.get(till_id)
        return max(self.sequences.get(till_id, 0), 0 if window is None else window.high)

    async def welcome_seq(self, till_id: str) -> int:
        """The highest sequence number any front saw from the till, as far as it was
        saved, for the till's `Welcome`: the registry's word is read afresh, since the
        till may come from another front. Raises `RegistryUnavailable`: a till is not
        welcomed without it, and connects again after its backoff."""
        saved = await self._call("sequence_of", till_id)
        if saved > self.sequences.get(till_id, 0):
            self.sequences[till_id] = saved
        return self.seq_seen(till_id)

    async def note_sequences(self) -> None:
        """Save each till's highest sequence number seen since the last save.

        A till that connects is told it (`Welcome.seq_seen`): one restored from a backup
        moves its counter past it instead of numbering new sales as old ones, whichever
        front it connects to. Saved every `sequences_save_s` and when the front stops, so
        a front that crashes loses at most that interval's numbers, which only a till
        restored from a backup made within it could miss (its own counter, fsynced before
        each number is used, is ahead of them otherwise).
        """
        raised = {
            till_id: window.high
            for till_id, window in self.windows.items()
            if window.high > self.sequences.get(till_id, 0)
        }
        if raised:
            await self._call("note_sequences", msgspec.msgpack.encode(raised))
            self.sequences.update(raised)

    # Offline sales -------------------------------------------------------------------

    def current_limits(self) -> OfflineLimits:
        """The offline limits this node's settings give a till connecting now."""
        settings = self.settings
        return OfflineLimits(
            tap_max_yen=settings.offline_tap_max_yen,
            card_day_max_yen=settings.offline_card_day_max_yen,
            queue_max_taps=settings.offline_queue_max_taps,
            tap_age_max_ms=int(settings.offline_tap_age_max_s * 1_000),
        )

    @property
    def _skew_ms(self) -> int:
        return int(self.settings.offline_tap_clock_skew_max_s * 1_000)

    async def limits_to_send(self, till_id: str, now_ms: int) -> OfflineLimits:
        """The limits for the till's `Welcome`, recorded in its history first when they
        differ from the last it was sent: a till sells under them as soon as it has them.
        Raises `RegistryUnavailable` when they cannot be recorded."""
        current = self.current_limits()
        history = self.limits_history.get(till_id, [])
        if not history or history[-1].limits != current:
            sent = msgspec.msgpack.encode(LimitsSent(sent_at_ms=now_ms, limits=current))
            raw = await self._call("note_limits", till_id, sent, self._skew_ms)
            self.limits_history[till_id] = _history_decoder.decode(raw)
            log.info("offline limits changed for a till", till_id=till_id, limits=current)
        return current

    async def offline_refusal(
        self, till_id: str, body: TapBody, now_ms: int
    ) -> tuple[Reason, str] | None:
        """Why a forwarded offline tap is refused on its date or its limits, or None.

        Limits this front has not seen sent to the till may have been sent by another
        front of the cluster: the till's history is read again from the registry once
        before they are refused. Raises `RegistryUnavailable`."""
        history = self.limits_history.get(till_id, [])
        if body.limits is not None and body.limits not in limits_in_force(
            history, body.at_ms, self._skew_ms
        ):
            history = _history_decoder.decode(await self._call("limits_of", till_id))
            self.limits_history[till_id] = history
        return node_offline_refusal(
            stated=body.limits,
            current=self.current_limits(),
            history=history,
            amount_yen=body.amount_yen,
            at_ms=body.at_ms,
            now_ms=now_ms,
            skew_ms=self._skew_ms,
        )

    async def note_refused(self, refused: RefusedOfflineTap) -> None:
        """Keep a refused offline tap for staff, durably, and count it. Raises
        `RegistryUnavailable` or `RefusalsFull`: then the till must keep it queued."""
        encoded = msgspec.msgpack.encode(refused)
        kept = await self._call("note_refused", encoded, self.settings.offline_refused_per_till_max)
        if kept == "full":
            raise RefusalsFull(f"till {refused.till_id} has too many refused offline taps kept")
        if kept == "new":
            self.metrics.till_offline_refused.labels(reason=refused.reason).inc()
            log.error(
                "an offline sale was refused by the node; kept for staff",
                till_id=refused.till_id,
                seq=refused.seq,
                reason=refused.reason,
                amount_yen=refused.amount_yen,
            )

    async def refused_taps(self, till_id: str, limit: int) -> list[RefusedOfflineTap]:
        return _refused_list_decoder.decode(await self._call("refused_taps", till_id, limit))

    def _load(self, snapshot: RegistrySnapshot) -> None:
        self.cards = {card.idm: card for card in snapshot.cards}
        self.active_cards = {
            card.member_no: card for card in snapshot.cards if card.status is CardStatus.ACTIVE
        }
        self.tills = {till.till_id: till for till in snapshot.tills}
        self.verify_keys = {till.till_id: VerifyKey(till.public_key) for till in snapshot.tills}
        self.suspended = set(snapshot.suspended)
        self.version = snapshot.version

    def _deny_set(self) -> frozenset[str]:
        return frozenset(
            card.idm
            for card in self.cards.values()
            if card.status is not CardStatus.ACTIVE or card.member_no in self.suspended
        )

    async def apply(self, op: RegistryOp) -> RegistryChange:
        """Make a staff change durable in the registry, then here, then at every till."""
        async with self._lock:
            change: RegistryChange = _change_decoder.decode(
                await self._call("apply", msgspec.msgpack.encode(op))
            )
            if not change.ok:
                return change
            if change.version != self.version + 1:
                # Another front changed the registry since the last refresh: take it all.
                self._load(_snapshot_decoder.decode(await self._call("snapshot")))
            else:
                self._apply_change(change)
            self._bring_tills_up_to_date()
            return change

    async def sync_suspended(self, member_no: str, wallet: WalletClient) -> None:
        """Bring the registry's word on a member's suspension in line with their wallet,
        and with it the deny list of every connected till and this front's own refusal of
        the member's card (SUSPENDED).

        Every path that suspends or resumes a wallet calls this once the wallet answered:
        the staff API, the member's portal page and OAuth API, and the counter's resume.
        The wallet's status is read under a lock, so a suspension and a resume racing each
        other leave the registry with whatever the wallet holds last, in whichever order
        their calls finish. Raises `DenyListNotUpdated` when the wallet or the registry
        does not answer: nothing else would repair it (the refresh only reloads what the
        registry holds), so the caller reports the failure and the request is sent again.
        """
        async with self._status_lock:
            view = await wallet.submit(GetWallet(member_no=member_no))
            if not isinstance(view, WalletView):
                why = view.message if isinstance(view, Declined) else "an unexpected answer"
                raise DenyListNotUpdated(f"the wallet did not give the member's status: {why}")
            # A closed wallet (the member withdrew) is refused at the tills as a suspended one.
            suspended = view.status is not WalletStatus.ACTIVE
            try:
                await self.apply(SetSuspended(member_no=member_no, suspended=suspended))
            except RegistryUnavailable as error:
                log.error("deny list not updated", member_no=member_no, error=str(error))
                raise DenyListNotUpdated(str(error)) from None

    def _apply_change(self, change: RegistryChange) -> None:
        for card in change.cards:
            self.cards[card.idm] = card
            if card.status is CardStatus.ACTIVE:
                self.active_cards[card.member_no] = card
            elif self.active_cards.get(card.member_no, card).idm == card.idm:
                self.active_cards.pop(card.member_no, None)
        for till in change.tills:
            self.tills[till.till_id] = till
            self.verify_keys[till.till_id] = VerifyKey(till.public_key)
        self.suspended.update(change.suspended)
        self.suspended.difference_update(change.resumed)
        self.version = change.version

    def _bring_tills_up_to_date(self) -> None:
        """After every change to the copy, however it came: retired tills are cut off and
        the deny list's change goes to the others."""
        for connection in list(self.connections.values()):
            if self.till_retired(connection.till_id):
                connection.close_soon(CloseCode.RETIRED, "the till is retired")
        self._publish()

    def till_retired(self, till_id: str) -> bool:
        """Whether a till may no longer sell (a till the copy does not know may not)."""
        till = self.tills.get(till_id)
        return till is None or till.retired

    def _publish(self) -> None:
        """Push what changed in the deny list to every connected till."""
        before = self.deny
        self.deny = self._deny_set()
        blocked = sorted(self.deny - before)
        unblocked = sorted(before - self.deny)
        if not blocked and not unblocked:
            return
        update = DenyUpdate(
            version=self.version,
            blocked=blocked,
            unblocked=unblocked,
            changed_at_ms=system_ms(),
        )
        frame = frame_encoder.encode(update)
        for connection in list(self.connections.values()):
            connection.push(frame)
        self.metrics.till_deny_pushes.inc(len(self.connections))
        log.info(
            "deny list pushed",
            version=self.version,
            blocked=len(blocked),
            unblocked=len(unblocked),
            tills=len(self.connections),
        )
        if self.on_push is not None:
            self.on_push(update, len(self.connections))

    async def _watch_loop(self) -> None:
        """Hold one `changes_since` call to the registry at all times, and take what it
        answers: the push by which other fronts' changes arrive."""
        settings = self.settings
        wait_s = settings.registry_watch_s
        backoff_s = WATCH_BACKOFF_S
        # Not `while True`: CPython 3.11's `wait_for` swallows a cancellation that comes
        # as its call is answered (gh-86296), and a change pushed just as the hub stops
        # would keep the loop (and the node's stop) waiting on the next long call.
        while not self._stopped:
            try:
                raw = await self._call(
                    "changes_since",
                    self.version,
                    wait_s,
                    timeout_s=wait_s + settings.registry_call_timeout_s,
                )
                await self.take_changes(_changes_decoder.decode(raw))
                backoff_s = WATCH_BACKOFF_S
            except Exception as error:  # The actor restarts; the watch goes on after it.
                log.warning("registry watch failed", error=repr(error))
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, settings.registry_refresh_s)

    async def take_changes(self, answer: RegistryChanges) -> None:
        """Bring the copy up to date with what the registry pushed."""
        if not answer.reload and not answer.changes:
            return
        async with self._lock:
            changes = [change for change in answer.changes if change.version > self.version]
            if answer.reload or (changes and changes[0].version != self.version + 1):
                self._load(_snapshot_decoder.decode(await self._call("snapshot")))
                log.info("registry reloaded", version=self.version)
            else:
                for change in changes:
                    self._apply_change(change)
            self._bring_tills_up_to_date()

    async def _refresh_loop(self) -> None:
        while not self._stopped:
            await asyncio.sleep(self.settings.registry_refresh_s)
            try:
                await self.refresh()
            except Exception as error:  # The loop must outlive a passing registry failure.
                log.warning("registry refresh failed", error=repr(error))

    async def _save_loop(self) -> None:
        while not self._stopped:
            await asyncio.sleep(self.settings.sequences_save_s)
            try:
                await self.note_sequences()
            except Exception as error:  # Saved at the next interval instead.
                log.warning("till sequence numbers not saved", error=repr(error))

    async def refresh(self) -> None:
        """Reload the copy when the registry's version differs from the copy's: a push
        that was lost (the repair path)."""
        if await self._call("version") == self.version:
            return
        async with self._lock:
            # Read again under the lock: a push or this front's own change may have
            # brought the copy up to date meanwhile.
            if await self._call("version") != self.version:
                self._load(_snapshot_decoder.decode(await self._call("snapshot")))
                log.info("registry reloaded by the repair path", version=self.version)
                self._bring_tills_up_to_date()

    def attach(self, connection: Pushable) -> None:
        """A till connected; an older connection of the same till is closed."""
        older = self.connections.get(connection.till_id)
        if older is not None and older is not connection:
            older.close_soon(CloseCode.CONNECTED_ELSEWHERE, "the till connected again elsewhere")
        self.connections[connection.till_id] = connection
        self.metrics.till_connected.set(len(self.connections))

    def detach(self, connection: Pushable) -> None:
        if self.connections.get(connection.till_id) is connection:
            del self.connections[connection.till_id]
        self.metrics.till_connected.set(len(self.connections))

    def record_decision(
        self, decision: Decision, started_s: float, till: TillRecord, tapped_at_ms: int
    ) -> None:
        """Count a decision sent to a till and the time since its frame was read."""
        self.activity.note(till, decision, tapped_at_ms)
        key = (decision.kind, decision.approved, decision.reason)
        counter = self._decision_counters.get(key)
        if counter is None:
            counter = self.metrics.till_decisions.labels(
                kind=decision.kind,
                outcome="approved" if decision.approved else "declined",
                reason="" if decision.reason is None else decision.reason.value,
            )
            self._decision_counters[key] = counter
        counter.inc()
        self.metrics.till_decision_seconds.observe(time.perf_counter() - started_s)


class TokenBucket:
    """Paces one till's frames: each takes a token; an empty bucket means waiting."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self._rate_per_s = rate_per_s
        self._burst = float(burst)
        self._tokens = float(burst)
        self._updated_s = time.monotonic()

    def take(self) -> float:
        """Take a token; return how long to wait before acting on the frame (0: now)."""
        now_s = time.monotonic()
        elapsed_s = now_s - self._updated_s
        self._updated_s = now_s
        self._tokens = min(self._burst, self._tokens + elapsed_s * self._rate_per_s) - 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate_per_s


class Seen:
    """A frame a till sent and that is being decided: a digest of its signed bytes and
    the decision to come."""

    __slots__ = ("decision", "digest")

    def __init__(self, digest: bytes, decision: asyncio.Future[bytes]) -> None:
        self.digest = digest
        self.decision = decision


class ReplayWindow:
    """The latest sequence numbers of one till, oldest forgotten first.

    A frame being decided is held as its `Seen`; once answered it is kept as plain bytes,
    the frame's digest then the decision frame. The windows hold up to
    `replay_window_taps` frames per till, a million and more on a busy node: as live
    objects with futures the cycle collector walked them on every full pass, and those
    passes stopped the front for 60-100 ms under 2,000 taps/s. Bytes it never visits.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._seen: OrderedDict[int, Seen | bytes] = OrderedDict()
        # The highest sequence number ever put here, forgotten or not.
        self.high = 0

    def get(self, seq: int) -> Seen | bytes | None:
        return self._seen.get(seq)

    def put(self, seq: int, seen: Seen) -> None:
        self._seen[seq] = seen
        if seq > self.high:
            self.high = seq
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)

    def answer(self, seq: int, seen: Seen, frame: bytes) -> None:
        """Keep the decision of a frame as bytes, in its place in the window."""
        if self._seen.get(seq) is seen:
            self._seen[seq] = seen.digest + frame

    def forget(self, seq: int, seen: Seen) -> None:
        if self._seen.get(seq) is seen:
            del self._seen[seq]
