"""One replica of a shard: Viewstamped Replication Revisited as a pure state machine.

The replica is driven by four calls and touches nothing itself: each returns the effects
its host must carry out, in order (`effects.py`). `on_request` takes a client's request,
`on_message` a peer's message, `on_tick` the passing of one tick of time, and `on_durable`
the disk's word that a write is flushed. Only the clock is read directly, through the
`Clock` interface, when a primary stamps an operation. So the same class runs in a shard
and in the simulator, and a seeded simulation replays it exactly.

The protocol, its messages and why it was chosen are in docs/architecture.md, "Replicated
shards". The invariants below are checked with `require` (they raise
`ReplicationInvariantViolation`), where they can be seen:

- the log is a hash chain: entry n+1 names entry n's checksum, op numbers run 1, 2, 3
  without a gap and timestamps strictly increase along it;
- in one view, one op has one entry: a duplicate prepare must match what is logged;
- a commit number never goes backwards, and a replica applies each op once, in order;
- a new log (a view change, a recovery) never rewrites an op this replica has applied,
  and holds every op any replica of its quorum had committed;
- a replica in normal status has `log_view == view`: it is in the view its log is from;
- only the primary prepares and acknowledges, and only in normal status.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Protocol

from coopnode.replication.bounds import ReplicationBounds
from coopnode.replication.effects import Acknowledge, Apply, Effect, Send, Write
from coopnode.replication.errors import ReplicationInvariantViolation, require
from coopnode.replication.messages import (
    ROOT_CHECKSUM,
    Commit,
    DoViewChange,
    Entry,
    Message,
    Prepare,
    PrepareOk,
    Prepares,
    Recovery,
    RecoveryResponse,
    Reply,
    Request,
    RequestPrepares,
    RequestStartView,
    StartView,
    StartViewChange,
    decode_entry,
    entry_is_intact,
    make_entry,
)


class Clock(Protocol):
    """The wall clock a primary stamps operations with (the simulator's is simulated)."""

    def realtime_ms(self) -> int:
        """Milliseconds since the Unix epoch."""
        ...


class Status(enum.Enum):
    """Where a replica stands in the protocol."""

    NORMAL = "normal"
    VIEW_CHANGE = "view_change"
    RECOVERING = "recovering"


class Replica:
    """One replica's protocol state; see the module's docstring."""

    def __init__(
        self,
        bounds: ReplicationBounds,
        index: int,
        clock: Clock,
        *,
        status: Status,
        durable: Mapping[int, bytes],
        applied_op: int,
        incarnation: int,
    ) -> None:
        require(0 <= index < bounds.replica_count, f"replica index {index} outside the shard")
        self.bounds = bounds
        self.index = index
        self.clock = clock
        self.status = status
        self.view = 0
        # The last view in which this replica's status was normal: what makes one log
        # newer than another in a view change.
        self.log_view = 0
        self.log: list[Entry] = []
        # What the disk holds, flushed: op -> checksum of the entry written there.
        self.durable: dict[int, bytes] = dict(durable)
        # Every op up to this one is on the disk with the checksum this log has.
        self.op_durable = 0
        # The highest op known to be committed, and the highest applied here.
        self.commit_max = applied_op
        self.applied_op = applied_op
        self.last_timestamp_ms = 0
        self.request_ops: dict[tuple[int, int], int] = {}
        # The primary's count: per backup, the highest op it said it holds in this view.
        self.acked_ops: dict[int, int] = {}
        self.prepare_ok_sent_op = 0
        self.op_seen_max = 0
        self.start_view_change_from: set[int] = set()
        self.do_view_change_from: dict[int, DoViewChange] = {}
        self.do_view_change_sent = False
        self.awaiting_start_view = False
        self.ticks_quiet = 0
        self.ticks_since_resend = bounds.resend_interval_ticks
        self.ticks_since_heartbeat = 0
        self.nonce = incarnation
        self.recovery_responses: dict[int, RecoveryResponse] = {}

    # Construction: a new shard, or a replica back from a crash.

    @classmethod
    def format(cls, bounds: ReplicationBounds, index: int, clock: Clock) -> Replica:
        """A replica of a new shard: view 0, an empty log, normal."""
        return cls(
            bounds, index, clock, status=Status.NORMAL, durable={}, applied_op=0, incarnation=0
        )

    @classmethod
    def restart(
        cls,
        bounds: ReplicationBounds,
        index: int,
        clock: Clock,
        stored: Mapping[int, bytes],
        *,
        applied_op: int,
        incarnation: int,
    ) -> Replica:
        """A replica started again over what its disk kept (`stored`: op -> bytes).

        It may have lost writes that were not flushed and forgotten the view it was in,
        so it recovers: it takes no part until a quorum's answers name the current view
        and that view's primary hands it the log. An entry that fails its checksum is not
        trusted: the primary's copy replaces it (repair, not a stop). `applied_op` is how
        far the application's own state has applied the log; `incarnation` differs on
        every start, so that answers to an earlier recovery are not taken for this one.
        """
        durable: dict[int, bytes] = {}
        for op, data in stored.items():
            entry = decode_entry(data)
            if entry is not None and entry.op == op:
                durable[op] = entry.checksum
        if bounds.replica_count == 1:
            return cls._restart_alone(bounds, index, clock, stored, durable, applied_op)
        return cls(
            bounds,
            index,
            clock,
            status=Status.RECOVERING,
            durable=durable,
            applied_op=applied_op,
            incarnation=incarnation,
        )

    @classmethod
    def _restart_alone(
        cls,
        bounds: ReplicationBounds,
        index: int,
        clock: Clock,
        stored: Mapping[int, bytes],
        durable: dict[int, bytes],
        applied_op: int,
    ) -> Replica:
        """A shard of one replica has no peer to repair from: its disk is the log."""
        replica = cls(
            bounds,
            index,
            clock,
            status=Status.NORMAL,
            durable=durable,
            applied_op=applied_op,
            incarnation=0,
        )
        log: list[Entry] = []
        while len(log) + 1 in stored:
            entry = decode_entry(stored[len(log) + 1])
            parent = log[-1].checksum if log else ROOT_CHECKSUM
            if entry is None or entry.parent != parent:
                break
            log.append(entry)
        # Alone, every flushed op may have been acknowledged: a break in the chain is a
        # loss nobody can repair, so the replica stops rather than start without it.
        require(
            len(log) == max(stored, default=0),
            f"a lone replica's log breaks at op {len(log) + 1}, with no peer to repair it",
        )
        require(len(log) >= applied_op, "a lone replica's disk lost ops it had applied")
        replica.log = log
        replica._rebuild_after_new_log()
        replica.commit_max = replica.op_durable
        return replica

    # The four calls.

    def on_request(self, request: Request) -> list[Effect]:
        """A client's request: the primary prepares it once, or answers it again."""
        if self.status is not Status.NORMAL or not self.is_primary:
            return []
        key = (request.client_id, request.request_key)
        known_op = self.request_ops.get(key)
        if known_op is not None:
            return (
                [self._acknowledge(self.log[known_op - 1])] if known_op <= self.applied_op else []
            )
        if self.op - self.commit_max >= self.bounds.pipeline_ops_max:
            return []
        if self.op >= self.bounds.log_ops_max:
            return []
        entry = make_entry(
            op=self.op + 1,
            view=self.view,
            client_id=request.client_id,
            request_key=request.request_key,
            timestamp_ms=max(self.clock.realtime_ms(), self.last_timestamp_ms + 1),
            payload=request.payload,
            parent=self._tip_checksum(),
        )
        effects = self._append(entry)
        prepare = Prepare(view=self.view, commit=self.commit_max, entry=entry)
        effects.extend(Send(target, prepare) for target in self._others())
        return effects

    def on_durable(self, op: int, checksum: bytes) -> list[Effect]:
        """The disk flushed the write of the entry `checksum` at `op` (writes are
        reported in the order they were made; the checksum says which of several
        writes of one op this is, since a view change may rewrite an uncommitted op)."""
        self.durable[op] = checksum
        self._advance_durable()
        if self.status is not Status.NORMAL:
            return []
        if self.is_primary:
            return self._commit_by_quorum()
        return self._send_prepare_ok()

    def on_tick(self) -> list[Effect]:
        """One tick of time: heartbeats, timeouts and messages sent again."""
        self.ticks_since_resend += 1
        resend = self.ticks_since_resend >= self.bounds.resend_interval_ticks
        if resend:
            self.ticks_since_resend = 0
        match self.status:
            case Status.RECOVERING:
                return self._broadcast(Recovery(self.index, self.nonce)) if resend else []
            case Status.VIEW_CHANGE:
                return self._tick_view_change(resend)
            case Status.NORMAL if self.is_primary:
                return self._tick_primary(resend)
            case Status.NORMAL:
                return self._tick_backup(resend)
        raise ReplicationInvariantViolation(f"a replica in no known status: {self.status}")

    def on_message(self, message: Message) -> list[Effect]:
        """A message from a peer (or a client's request, which `on_request` takes)."""
        if self.status is Status.RECOVERING:
            if isinstance(message, RecoveryResponse):
                return self._on_recovery_response(message)
            return []
        match message:
            case Request():
                return self.on_request(message)
            case Prepare():
                return self._on_prepare(message)
            case PrepareOk():
                return self._on_prepare_ok(message)
            case Commit():
                return self._on_commit(message)
            case StartViewChange():
                return self._on_start_view_change(message)
            case DoViewChange():
                return self._on_do_view_change(message)
            case StartView():
                return self._on_start_view(message)
            case RequestStartView():
                return self._on_request_start_view(message)
            case RequestPrepares():
                return self._on_request_prepares(message)
            case Prepares():
                return self._on_prepares(message)
            case Recovery():
                return self._on_recovery(message)
            case RecoveryResponse() | Reply():
                return []

    # What the replica is.

    @property
    def op(self) -> int:
        """The highest op in the log."""
        return len(self.log)

    @property
    def is_primary(self) -> bool:
        """Whether this replica is the primary of its view (views rotate round the shard)."""
        return self.primary_of(self.view) == self.index

    def primary_of(self, view: int) -> int:
        """The replica that leads `view`."""
        return view % self.bounds.replica_count

    # The log.

    def _tip_checksum(self) -> bytes:
        return self.log[-1].checksum if self.log else ROOT_CHECKSUM

    def _append(self, entry: Entry) -> list[Effect]:
        """Add the next entry to the log and, unless the disk already holds it, write it."""
        require(entry.op == self.op + 1, f"entry {entry.op} appended after op {self.op}")
        require(entry_is_intact(entry), f"entry {entry.op} fails its checksum")
        require(entry.parent == self._tip_checksum(), f"entry {entry.op} breaks the chain")
        require(
            entry.timestamp_ms > self.last_timestamp_ms,
            f"entry {entry.op}'s timestamp does not follow the one before it",
        )
        self.log.append(entry)
        self.request_ops[(entry.client_id, entry.request_key)] = entry.op
        self.last_timestamp_ms = entry.timestamp_ms
        if self.durable.get(entry.op) == entry.checksum:
            self._advance_durable()
            return []
        return [Write(entry)]

    def _advance_durable(self) -> None:
        while self.op_durable < self.op and (
            self.durable.get(self.op_durable + 1) == self.log[self.op_durable].checksum
        ):
            self.op_durable += 1

    def _replace_log(self, log: Sequence[Entry]) -> list[Effect]:
        """Take `log` as this replica's log (a view change or a recovery); write what the
        disk does not already hold."""
        require(len(log) >= self.applied_op, "a new log drops an op this replica applied")
        for entry in self.log[: self.applied_op]:
            require(
                log[entry.op - 1].checksum == entry.checksum,
                f"a new log rewrites op {entry.op}, which this replica applied",
            )
        parent = ROOT_CHECKSUM
        previous_timestamp_ms = 0
        for position, entry in enumerate(log):
            require(entry.op == position + 1, "a new log's op numbers skip")
            require(entry_is_intact(entry), f"a new log's entry {entry.op} fails its checksum")
            require(entry.parent == parent, f"a new log breaks the chain at op {entry.op}")
            require(entry.timestamp_ms > previous_timestamp_ms, "a new log's time goes back")
            parent = entry.checksum
            previous_timestamp_ms = entry.timestamp_ms
        self.log = list(log)
        self._rebuild_after_new_log()
        return [Write(entry) for entry in self.log if self.durable.get(entry.op) != entry.checksum]

    def _rebuild_after_new_log(self) -> None:
        self.request_ops = {(entry.client_id, entry.request_key): entry.op for entry in self.log}
        self.last_timestamp_ms = self.log[-1].timestamp_ms if self.log else 0
        self.op_durable = 0
        self._advance_durable()
        # Ops seen in an earlier view's prepares may not be in this log: stop asking.
        self.op_seen_max = self.op

    # Committing and applying.

    def _raise_commit(self, commit: int) -> list[Effect]:
        """Learn that ops up to `commit` are committed, and apply what the log holds."""
        if commit > self.commit_max:
            self.commit_max = commit
        effects: list[Effect] = []
        while self.applied_op < min(self.commit_max, self.op):
            entry = self.log[self.applied_op]
            require(entry.op == self.applied_op + 1, "ops applied out of order")
            self.applied_op = entry.op
            effects.append(Apply(entry))
            if self.status is Status.NORMAL and self.is_primary:
                effects.append(self._acknowledge(entry))
        return effects

    def _commit_by_quorum(self) -> list[Effect]:
        """The primary commits every op a quorum holds durable: its own disk is one vote,
        and need not be first."""
        require(self.status is Status.NORMAL and self.is_primary, "only a primary commits")
        votes = [self.op_durable] + [self.acked_ops.get(other, 0) for other in self._others()]
        votes.sort(reverse=True)
        return self._raise_commit(min(votes[self.bounds.quorum - 1], self.op))

    def _acknowledge(self, entry: Entry) -> Acknowledge:
        require(self.status is Status.NORMAL and self.is_primary, "only a primary acknowledges")
        require(entry.op <= self.applied_op, "an acknowledgement of an op not yet committed")
        reply = Reply(self.view, self.index, entry.client_id, entry.request_key, entry.op)
        return Acknowledge(reply)

    def _send_prepare_ok(self) -> list[Effect]:
        """A backup tells the primary how far it holds the log durably."""
        if self.op_durable <= self.prepare_ok_sent_op:
            return []
        self.prepare_ok_sent_op = self.op_durable
        ok = PrepareOk(view=self.view, replica=self.index, op=self.op_durable)
        return [Send(self.primary_of(self.view), ok)]

    # Normal operation.

    def _on_prepare(self, message: Prepare) -> list[Effect]:
        if message.view < self.view:
            return []
        if message.view > self.view or self.status is Status.VIEW_CHANGE:
            return self._learn_newer_view(message.view)
        require(not self.is_primary, "a primary received a prepare of its own view")
        self.ticks_quiet = 0
        entry = message.entry
        self.op_seen_max = max(self.op_seen_max, entry.op)
        effects: list[Effect] = []
        if entry.op <= self.op:
            require(
                self.log[entry.op - 1].checksum == entry.checksum,
                f"two entries for op {entry.op} in view {self.view}",
            )
            self.prepare_ok_sent_op = min(self.prepare_ok_sent_op, entry.op - 1)
            effects.extend(self._send_prepare_ok())
        elif entry.op == self.op + 1:
            effects.extend(self._append(entry))
        else:
            effects.extend(self._request_missing())
        effects.extend(self._raise_commit(message.commit))
        return effects

    def _on_prepare_ok(self, message: PrepareOk) -> list[Effect]:
        if message.view != self.view or self.status is not Status.NORMAL or not self.is_primary:
            return []
        require(message.op <= self.op, "a backup holds an op its primary never prepared")
        if message.op > self.acked_ops.get(message.replica, 0):
            self.acked_ops[message.replica] = message.op
        return self._commit_by_quorum()

    def _on_commit(self, message: Commit) -> list[Effect]:
        if message.view < self.view:
            return []
        if message.view > self.view or self.status is Status.VIEW_CHANGE:
            return self._learn_newer_view(message.view)
        if self.is_primary:
            return []
        self.ticks_quiet = 0
        effects = self._raise_commit(message.commit)
        if self.commit_max > self.op:
            effects.extend(self._request_missing())
        return effects

    def _request_missing(self) -> list[Effect]:
        """A backup that is behind asks its primary for the next run of ops."""
        target = max(self.commit_max, self.op_seen_max)
        if target <= self.op:
            return []
        last = min(target, self.op + self.bounds.repair_entries_per_message_max)
        request = RequestPrepares(self.view, self.index, self.op + 1, last)
        return [Send(self.primary_of(self.view), request)]

    def _on_request_prepares(self, message: RequestPrepares) -> list[Effect]:
        if message.view != self.view or self.status is not Status.NORMAL or not self.is_primary:
            return []
        first = max(message.op_first, 1)
        last = min(message.op_last, self.op, first + self.bounds.repair_entries_per_message_max - 1)
        if first > last:
            return []
        entries = self.log[first - 1 : last]
        answer = Prepares(self.view, self.index, self.commit_max, entries)
        return [Send(message.replica, answer)]

    def _on_prepares(self, message: Prepares) -> list[Effect]:
        if message.view != self.view or self.status is not Status.NORMAL or self.is_primary:
            return []
        self.ticks_quiet = 0
        effects: list[Effect] = []
        for entry in message.entries:
            if entry.op <= self.op:
                require(
                    self.log[entry.op - 1].checksum == entry.checksum,
                    f"repair sent another entry for op {entry.op} in view {self.view}",
                )
            elif entry.op == self.op + 1:
                effects.extend(self._append(entry))
        effects.extend(self._raise_commit(message.commit))
        return effects

    def _tick_primary(self, resend: bool) -> list[Effect]:
        effects: list[Effect] = []
        self.ticks_since_heartbeat += 1
        if self.ticks_since_heartbeat >= self.bounds.heartbeat_interval_ticks:
            self.ticks_since_heartbeat = 0
            effects.extend(self._broadcast(Commit(self.view, self.index, self.commit_max)))
        if resend:
            for other in self._others():
                first = max(self.acked_ops.get(other, 0), self.commit_max) + 1
                last = min(self.op, first + self.bounds.pipeline_ops_max - 1)
                for entry in self.log[first - 1 : last]:
                    prepare = Prepare(view=self.view, commit=self.commit_max, entry=entry)
                    effects.append(Send(other, prepare))
        return effects

    def _tick_backup(self, resend: bool) -> list[Effect]:
        self.ticks_quiet += 1
        if self.ticks_quiet > self.bounds.primary_silence_timeout_ticks:
            return self._start_view_change(self.view + 1)
        return self._request_missing() if resend else []

    # View change.

    def _start_view_change(self, view: int) -> list[Effect]:
        """Give up on the primary of the views before `view` and ask the others to."""
        self._enter_view_change(view)
        return self._broadcast(StartViewChange(view, self.index)) + self._maybe_do_view_change()

    def _enter_view_change(self, view: int) -> None:
        require(view > self.view or self.status is not Status.NORMAL, "a view change goes back")
        if view > self.view:
            self.view = view
            self.start_view_change_from = {self.index}
            self.do_view_change_from = {}
            self.do_view_change_sent = False
        self.status = Status.VIEW_CHANGE
        self.awaiting_start_view = False
        self.acked_ops = {}
        self.prepare_ok_sent_op = 0
        self.ticks_quiet = 0

    def _learn_newer_view(self, view: int) -> list[Effect]:
        """A message of `view`'s primary shows that view started without this replica:
        stop answering older views and ask that primary for its log."""
        if view > self.view:
            self._enter_view_change(view)
        self.awaiting_start_view = True
        return [Send(self.primary_of(view), RequestStartView(view, self.index))]

    def _on_start_view_change(self, message: StartViewChange) -> list[Effect]:
        if message.view < self.view:
            return []
        if message.view > self.view:
            effects = self._start_view_change(message.view)
        elif self.status is Status.NORMAL:
            # A straggler that missed this view's start: its primary sends it the log.
            if not self.is_primary:
                return []
            return [Send(message.replica, self._start_view_message())]
        else:
            effects = []
        self.start_view_change_from.add(message.replica)
        return effects + self._maybe_do_view_change()

    def _maybe_do_view_change(self) -> list[Effect]:
        """Once a quorum has given up on the old primary, send the log to the new one."""
        if self.status is not Status.VIEW_CHANGE or self.do_view_change_sent:
            return []
        if len(self.start_view_change_from) < self.bounds.quorum:
            return []
        self.do_view_change_sent = True
        message = self._do_view_change_message()
        if self.is_primary:
            return self._on_do_view_change(message)
        return [Send(self.primary_of(self.view), message)]

    def _do_view_change_message(self) -> DoViewChange:
        return DoViewChange(
            view=self.view,
            replica=self.index,
            log_view=self.log_view,
            commit=self.commit_max,
            log=list(self.log),
        )

    def _on_do_view_change(self, message: DoViewChange) -> list[Effect]:
        if message.view < self.view or self.primary_of(message.view) != self.index:
            return []
        effects: list[Effect] = []
        if message.view > self.view:
            effects.extend(self._start_view_change(message.view))
        if self.status is Status.NORMAL:
            return [*effects, Send(message.replica, self._start_view_message())]
        if self.status is not Status.VIEW_CHANGE:
            return effects
        self.do_view_change_from[message.replica] = message
        if len(self.do_view_change_from) < self.bounds.quorum:
            return effects
        return effects + self._start_view_as_primary()

    def _start_view_as_primary(self) -> list[Effect]:
        """The new primary takes the log of the most advanced of a quorum's
        do_view_change messages (latest `log_view`, then longest), which holds every
        op any earlier view committed, and hands it to every replica."""
        messages = sorted(self.do_view_change_from.values(), key=lambda m: m.replica)
        best = max(messages, key=lambda m: (m.log_view, len(m.log)))
        commit = max([self.commit_max] + [m.commit for m in messages])
        require(len(best.log) >= commit, "the chosen log lacks an op a replica saw committed")
        effects = self._replace_log(best.log)
        self.status = Status.NORMAL
        self.log_view = self.view
        self.acked_ops = {}
        self.ticks_since_heartbeat = 0
        effects.extend(self._broadcast(self._start_view_message_with(commit)))
        effects.extend(self._raise_commit(commit))
        effects.extend(self._commit_by_quorum())
        return effects

    def _start_view_message(self) -> StartView:
        return self._start_view_message_with(self.commit_max)

    def _start_view_message_with(self, commit: int) -> StartView:
        require(self.status is Status.NORMAL and self.is_primary, "only a primary starts a view")
        return StartView(view=self.view, replica=self.index, commit=commit, log=list(self.log))

    def _on_start_view(self, message: StartView) -> list[Effect]:
        if message.view < self.view:
            return []
        if message.view == self.view and self.status is Status.NORMAL:
            return []
        require(
            message.replica == self.primary_of(message.view), "a start_view not from its primary"
        )
        require(len(message.log) >= message.commit, "a start_view's log lacks committed ops")
        self.view = message.view
        effects = self._replace_log(message.log)
        self.status = Status.NORMAL
        self.log_view = self.view
        self.awaiting_start_view = False
        self.prepare_ok_sent_op = 0
        self.ticks_quiet = 0
        effects.extend(self._raise_commit(message.commit))
        effects.extend(self._send_prepare_ok())
        return effects

    def _on_request_start_view(self, message: RequestStartView) -> list[Effect]:
        if message.view != self.view or self.status is not Status.NORMAL or not self.is_primary:
            return []
        return [Send(message.replica, self._start_view_message())]

    def _tick_view_change(self, resend: bool) -> list[Effect]:
        self.ticks_quiet += 1
        if self.ticks_quiet > self.bounds.view_change_timeout_ticks:
            return self._start_view_change(self.view + 1)
        if not resend:
            return []
        if self.awaiting_start_view:
            request = RequestStartView(self.view, self.index)
            return [Send(self.primary_of(self.view), request)]
        effects = self._broadcast(StartViewChange(self.view, self.index))
        if self.do_view_change_sent and not self.is_primary:
            effects.append(Send(self.primary_of(self.view), self._do_view_change_message()))
        return effects

    # Recovery.

    def _on_recovery(self, message: Recovery) -> list[Effect]:
        if self.status is not Status.NORMAL:
            return []
        log = list(self.log) if self.is_primary else None
        answer = RecoveryResponse(self.view, self.index, message.nonce, self.commit_max, log)
        return [Send(message.replica, answer)]

    def _on_recovery_response(self, message: RecoveryResponse) -> list[Effect]:
        """Recover once a quorum of others answered this start's nonce, the primary of
        the latest view they name among them: that view's log becomes this one's."""
        if message.nonce != self.nonce:
            return []
        earlier = self.recovery_responses.get(message.replica)
        if earlier is None or earlier.view <= message.view:
            self.recovery_responses[message.replica] = message
        if len(self.recovery_responses) < self.bounds.quorum:
            return []
        view = max(answer.view for answer in self.recovery_responses.values())
        primary = self.recovery_responses.get(self.primary_of(view))
        if primary is None or primary.view != view or primary.log is None:
            return []
        require(len(primary.log) >= primary.commit, "a primary's log lacks its committed ops")
        self.view = view
        effects = self._replace_log(primary.log)
        self.status = Status.NORMAL
        self.log_view = view
        self.ticks_quiet = 0
        self.recovery_responses = {}
        effects.extend(self._raise_commit(primary.commit))
        effects.extend(self._send_prepare_ok())
        return effects

    # Sending.

    def _others(self) -> list[int]:
        return [other for other in range(self.bounds.replica_count) if other != self.index]

    def _broadcast(self, message: Message) -> list[Effect]:
        return [Send(other, message) for other in self._others()]
