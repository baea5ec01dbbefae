"""One replica of a shard: Viewstamped Replication Revisited as a pure state machine.

The replica is driven by four calls and touches nothing itself: each returns the effects
its host must carry out, in order (`effects.py`). `on_request` takes a client's request,
`on_message` a peer's message, `on_tick` the passing of one tick of time, and `on_durable`
the disk's word that a write is flushed (and `on_checkpoint`, that a snapshot is). Only
the clock is read directly, through the `Clock` interface, when a primary stamps an
operation. So the same class runs in a shard and in the simulator, and a seeded
simulation replays it exactly.

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
- only the primary prepares and acknowledges, and only in normal status;
- a snapshot, its own or a restart's, passes its checksums (a peer's that does not, or
  that is of another history, is refused, not fatal).

Long, and kept whole: normal operation, view change, recovery and state transfer change
one replica's state together, and their invariants are read against each other here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Protocol

from coopnode.replication.bounds import ReplicationBounds
from coopnode.replication.effects import (
    Acknowledge,
    Apply,
    Checkpoint,
    Effect,
    Install,
    RecordView,
    Send,
    Write,
)
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
    RequestSnapshot,
    RequestStartView,
    Snapshot,
    SnapshotReply,
    StartView,
    StartViewChange,
    decode_entry,
    entry_is_intact,
    make_entry,
    snapshot_is_intact,
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
        # Consecutive entries: from op 1, or from the last checkpoint's entry once the log
        # has been cut there (ops before it live in the application's state).
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
        # Per client, its latest applied request (key, op): what stops a request whose op
        # is behind the checkpoint from being prepared again.
        self.sessions: dict[int, tuple[int, int]] = {}
        self.snapshot: Snapshot | None = None
        self.snapshot_requests_sent = 0
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
        # What a restarted replica's disk held: its view record and the log its entries
        # chain into. Kept while it recovers, to fall back on if no peer answers (every
        # replica restarted at once); None when the disk cannot be trusted alone (lost,
        # or an entry that fails its checksum: only a peer can repair it).
        self.disk_view: tuple[int, int] | None = None
        self.disk_log: list[Entry] | None = None
        self.ticks_recovering = 0

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
        snapshot: Snapshot | None,
        incarnation: int,
        view_record: tuple[int, int] | None = None,
    ) -> Replica:
        """A replica started again over what its disk kept (`stored`: op -> bytes).

        It may have lost writes that were not flushed and forgotten the view it was in,
        so it recovers: it takes no part until a quorum's answers name the current view
        and that view's primary hands it the log. An entry that fails its checksum is not
        trusted: the primary's copy replaces it (repair, not a stop). `snapshot` is the
        last checkpoint the disk holds intact, which the host has restored the
        application from (None: the application starts empty); `incarnation` differs on
        every start, so that answers to an earlier recovery are not taken for this one.
        `view_record` is the (view, log_view) the disk's view record holds (None: no
        record, the disk was lost): if no quorum of peers answers the recovery within
        `recovery_timeout_ticks`, a replica whose disk is whole starts a view change from
        its own log instead (`_recover_from_disk`).
        """
        durable: dict[int, bytes] = {}
        for op, data in stored.items():
            entry = decode_entry(data)
            if entry is not None and entry.op == op:
                durable[op] = entry.checksum
        if snapshot is not None:
            require(snapshot_is_intact(snapshot), "a restart from a snapshot that fails a checksum")
            durable[snapshot.op] = snapshot.entry.checksum
        if bounds.replica_count == 1:
            return cls._restart_alone(bounds, index, clock, stored, durable, snapshot)
        replica = cls(
            bounds,
            index,
            clock,
            status=Status.RECOVERING,
            durable=durable,
            applied_op=snapshot.op if snapshot is not None else 0,
            incarnation=incarnation,
        )
        replica._start_from(snapshot)
        replica._keep_disk(stored, view_record)
        return replica

    def _keep_disk(self, stored: Mapping[int, bytes], view_record: tuple[int, int] | None) -> None:
        """Keep what the disk holds for the fallback, if the disk can be trusted alone:
        its view record is there, and no entry past the checkpoint fails its checksum
        (a corrupt entry may be one this replica acknowledged; a peer must replace it)."""
        if view_record is None:
            return
        first = self.log_first_op
        if any(decode_entry(data) is None for op, data in stored.items() if op >= first):
            return
        self.disk_view = view_record
        self.disk_log = chain_from_disk(self.log, stored)

    def _start_from(self, snapshot: Snapshot | None) -> None:
        """Begin the log at the checkpoint the application was restored from."""
        if snapshot is None:
            return
        self.snapshot = snapshot
        self.sessions = {client: (key, op) for client, key, op in snapshot.sessions}
        self.log = [snapshot.entry]
        self._rebuild_after_new_log()

    @classmethod
    def _restart_alone(
        cls,
        bounds: ReplicationBounds,
        index: int,
        clock: Clock,
        stored: Mapping[int, bytes],
        durable: dict[int, bytes],
        snapshot: Snapshot | None,
    ) -> Replica:
        """A shard of one replica has no peer to repair from: its disk is the log."""
        replica = cls(
            bounds,
            index,
            clock,
            status=Status.NORMAL,
            durable=durable,
            applied_op=snapshot.op if snapshot is not None else 0,
            incarnation=0,
        )
        replica._start_from(snapshot)
        log = chain_from_disk(replica.log, stored)
        # Alone, every flushed op may have been acknowledged: a break in the chain is a
        # loss nobody can repair, so the replica stops rather than start without it.
        require(
            log_op(log) >= max(stored, default=0),
            f"a lone replica's log breaks at op {log_op(log) + 1}, with no peer to repair it",
        )
        replica.log = log
        replica._rebuild_after_new_log()
        replica.commit_max = replica.op_durable
        return replica

    # The four calls.

    def on_request(self, request: Request) -> list[Effect]:
        """A client's request: the primary prepares it once, or answers it again."""
        if self.status is not Status.NORMAL or not self.is_primary or self.needs_snapshot:
            # A primary that waits for a snapshot cannot tell a request behind its log's
            # start from a new one: it takes none until it has the snapshot's sessions.
            return []
        client_id, request_key = request.client_id, request.request_key
        known_op = self.request_ops.get((client_id, request_key))
        if known_op is not None:
            if known_op > self.applied_op:
                return []
            return [self._acknowledge(client_id, request_key, known_op)]
        session = self.sessions.get(client_id)
        if session is not None and request_key <= session[0]:
            if request_key < session[0]:
                return []  # the client has moved on: this is an old copy
            return [self._acknowledge(client_id, request_key, session[1])]
        if self.op - self.commit_max >= self.bounds.pipeline_ops_max:
            return []
        if len(self.log) >= self.bounds.log_ops_max:
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
                self.ticks_recovering += 1
                waited = self.ticks_recovering > self.bounds.recovery_timeout_ticks
                if waited and self.disk_log is not None:
                    return self._recover_from_disk()
                return self._broadcast(Recovery(self.index, self.nonce)) if resend else []
            case Status.VIEW_CHANGE:
                effects = self._tick_view_change(resend)
            case Status.NORMAL if self.is_primary:
                effects = self._tick_primary(resend)
            case Status.NORMAL:
                effects = self._tick_backup(resend)
            case _:
                raise ReplicationInvariantViolation(f"a replica in no known status: {self.status}")
        if resend and self.needs_snapshot:
            effects.extend(self._request_snapshot())
        return effects

    def on_checkpoint(self, snapshot: Snapshot) -> list[Effect]:
        """The disk flushed a snapshot (this replica's checkpoint, or a peer's it
        installed): keep it to serve peers, and cut the log at it, keeping its entry so
        that the log still chains and its time still runs on."""
        require(snapshot_is_intact(snapshot), "a checkpoint that fails its checksum")
        if self.snapshot is None or snapshot.op > self.snapshot.op:
            self.snapshot = snapshot
        if (
            snapshot.op <= self.applied_op
            and self._has_entry(snapshot.op)
            and (self._entry(snapshot.op).checksum == snapshot.entry.checksum)
        ):
            self.log = self.log[snapshot.op - self.log[0].op :]
            self._rebuild_after_new_log()
        return []

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
            case RequestSnapshot():
                return self._on_request_snapshot(message)
            case SnapshotReply():
                return self._on_snapshot_reply(message)
            case RecoveryResponse() | Reply():
                return []

    # What the replica is.

    @property
    def op(self) -> int:
        """The highest op in the log."""
        return log_op(self.log)

    @property
    def log_first_op(self) -> int:
        """The first op the log holds (ops before it are in a checkpoint)."""
        return self.log[0].op if self.log else 1

    @property
    def needs_snapshot(self) -> bool:
        """Whether the next op to apply is before the log's start: only a peer's
        snapshot can carry this replica over the gap."""
        return self.applied_op < self.log_first_op - 1

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

    def _has_entry(self, op: int) -> bool:
        return bool(self.log) and self.log[0].op <= op <= self.log[-1].op

    def _entry(self, op: int) -> Entry:
        require(self._has_entry(op), f"op {op} is not in the log")
        return self.log[op - self.log[0].op]

    def _entries(self, first: int, last: int) -> list[Entry]:
        """The log's entries from `first` to `last`, as far as the log holds them."""
        start = max(first, self.log_first_op) - self.log_first_op
        return self.log[start : max(last - self.log_first_op + 1, start)]

    def _chain_has(self, op: int, checksum: bytes) -> bool:
        """Whether the entry at `op` with `checksum` is in this log's history: in it, or
        the parent of its first entry."""
        if self._has_entry(op):
            return self._entry(op).checksum == checksum
        return bool(self.log) and op == self.log[0].op - 1 and self.log[0].parent == checksum

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
        # Ops before the log's start are in a checkpoint, committed: they need no vote.
        self.op_durable = max(self.op_durable, self.log_first_op - 1)
        while self.op_durable < self.op and (
            self.durable.get(self.op_durable + 1) == self._entry(self.op_durable + 1).checksum
        ):
            self.op_durable += 1

    def _replace_log(self, log: Sequence[Entry]) -> list[Effect]:
        """Take `log` as this replica's log (a view change or a recovery); write what the
        disk does not already hold."""
        require(log_op(log) >= self.applied_op, "a new log drops an op this replica applied")
        check_chain(log)
        for entry in log:
            if entry.op <= self.applied_op and self._has_entry(entry.op):
                require(
                    self._entry(entry.op).checksum == entry.checksum,
                    f"a new log rewrites op {entry.op}, which this replica applied",
                )
        merged = list(log)
        if log and self._has_entry(log[0].op - 1) and self._chain_has(log[0].op - 1, log[0].parent):
            # This replica's own entries chain onto the new log: keep them, so that it can
            # still apply them instead of waiting for a snapshot.
            merged = self._entries(self.log_first_op, log[0].op - 1) + merged
        self.log = merged
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
        while self.applied_op < min(self.commit_max, self.op) and self._has_entry(
            self.applied_op + 1
        ):
            entry = self._entry(self.applied_op + 1)
            self.applied_op = entry.op
            effects.append(Apply(entry))
            session = self.sessions.get(entry.client_id)
            if session is None or session[0] < entry.request_key:
                self.sessions[entry.client_id] = (entry.request_key, entry.op)
            if entry.op % self.bounds.checkpoint_interval_ops == 0:
                effects.append(Checkpoint(entry, self._session_list()))
            if self.status is Status.NORMAL and self.is_primary:
                effects.append(self._acknowledge(entry.client_id, entry.request_key, entry.op))
        return effects

    def _session_list(self) -> list[tuple[int, int, int]]:
        return sorted((client, key, op) for client, (key, op) in self.sessions.items())

    def _commit_by_quorum(self) -> list[Effect]:
        """The primary commits every op a quorum holds durable: its own disk is one vote,
        and need not be first."""
        require(self.status is Status.NORMAL and self.is_primary, "only a primary commits")
        require(self.log_view == self.view, "a primary commits a log of another view")
        votes = [self.op_durable] + [self.acked_ops.get(other, 0) for other in self._others()]
        votes.sort(reverse=True)
        return self._raise_commit(min(votes[self.bounds.quorum - 1], self.op))

    def _acknowledge(self, client_id: int, request_key: int, op: int) -> Acknowledge:
        require(self.status is Status.NORMAL and self.is_primary, "only a primary acknowledges")
        require(op <= self.applied_op, "an acknowledgement of an op not yet committed")
        return Acknowledge(Reply(self.view, self.index, client_id, request_key, op))

    def _send_prepare_ok(self) -> list[Effect]:
        """A backup tells the primary how far it holds the log durably."""
        require(self.log_view == self.view, "a backup answers for a log of another view")
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
                not self._has_entry(entry.op) or self._entry(entry.op).checksum == entry.checksum,
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
        # Ops before the log's start are in the checkpoint: send from its entry on, and the
        # backup takes a snapshot for the rest.
        first = max(message.op_first, self.log_first_op)
        last = min(message.op_last, self.op, first + self.bounds.repair_entries_per_message_max - 1)
        if first > last:
            return []
        entries = self._entries(first, last)
        answer = Prepares(self.view, self.index, self.commit_max, entries)
        return [Send(message.replica, answer)]

    def _on_prepares(self, message: Prepares) -> list[Effect]:
        if message.view != self.view or self.status is not Status.NORMAL or self.is_primary:
            return []
        self.ticks_quiet = 0
        effects: list[Effect] = []
        entries = message.entries
        if entries and entries[0].op > self.op + 1:
            # The primary's log starts past this one's end: all of this log is behind its
            # checkpoint, committed; take the primary's, and a snapshot for the gap.
            effects.extend(self._replace_log(entries))
            entries = []
        for entry in entries:
            if entry.op <= self.op:
                require(
                    not self._has_entry(entry.op)
                    or self._entry(entry.op).checksum == entry.checksum,
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
                for entry in self._entries(first, last):
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
        effects: list[Effect] = [self._view_record()]
        effects.extend(self._broadcast(StartViewChange(view, self.index)))
        return effects + self._maybe_do_view_change()

    def _view_record(self) -> RecordView:
        return RecordView(view=self.view, log_view=self.log_view)

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
        effects: list[Effect] = []
        if view > self.view:
            self._enter_view_change(view)
            effects.append(self._view_record())
        self.awaiting_start_view = True
        effects.append(Send(self.primary_of(view), RequestStartView(view, self.index)))
        return effects

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
        best = max(messages, key=lambda m: (m.log_view, log_op(m.log)))
        commit = max([self.commit_max] + [m.commit for m in messages])
        require(log_op(best.log) >= commit, "the chosen log lacks an op a replica saw committed")
        effects = self._replace_log(best.log)
        self.status = Status.NORMAL
        self.log_view = self.view
        effects.append(self._view_record())
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
        require(log_op(message.log) >= message.commit, "a start_view's log lacks committed ops")
        self.view = message.view
        effects = self._replace_log(message.log)
        self.status = Status.NORMAL
        self.log_view = self.view
        effects.append(self._view_record())
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
        require(log_op(primary.log) >= primary.commit, "a primary's log lacks its committed ops")
        self.view = view
        effects = self._replace_log(primary.log)
        self.status = Status.NORMAL
        self.log_view = view
        effects.append(self._view_record())
        self.ticks_quiet = 0
        self.recovery_responses = {}
        self.disk_log = None
        effects.extend(self._raise_commit(primary.commit))
        effects.extend(self._send_prepare_ok())
        return effects

    def _recover_from_disk(self) -> list[Effect]:
        """No quorum of peers answered the recovery: they are all restarting too (or
        cut off). Take the log the disk holds and its view record, and start a view
        change past that view: the view change picks, from a quorum of replicas, the log
        of the latest view, which holds every committed op, as it would without the
        restart; and this replica never goes back to a view it had left."""
        disk_view, disk_log = self.disk_view, self.disk_log
        if disk_view is None or disk_log is None:
            raise ReplicationInvariantViolation("a recovery from a disk that is not trusted")
        view, log_view = disk_view
        check_chain(disk_log)
        require(log_op(disk_log) >= self.applied_op, "the disk's log is behind its checkpoint")
        self.view = max(self.view, view)
        self.log_view = log_view
        self.log = disk_log
        self.disk_log = None
        self._rebuild_after_new_log()
        return self._start_view_change(self.view + 1)

    # State transfer by snapshot.

    def _request_snapshot(self) -> list[Effect]:
        """Ask the next peer in turn for a snapshot that bridges the gap."""
        others = self._others()
        target = others[self.snapshot_requests_sent % len(others)]
        self.snapshot_requests_sent += 1
        return [Send(target, RequestSnapshot(self.index, self.log_first_op - 1))]

    def _on_request_snapshot(self, message: RequestSnapshot) -> list[Effect]:
        if self.snapshot is None or self.snapshot.op < message.op_min:
            return []
        return [Send(message.replica, SnapshotReply(self.index, self.snapshot))]

    def _on_snapshot_reply(self, message: SnapshotReply) -> list[Effect]:
        """Install a peer's snapshot if it is intact and of this log's own history (its
        entry is in the log, or is the parent of the log's first entry)."""
        snapshot = message.snapshot
        if not self.needs_snapshot or snapshot.op <= self.applied_op:
            return []
        if not snapshot_is_intact(snapshot) or not self._chain_has(
            snapshot.op, snapshot.entry.checksum
        ):
            return []
        self.applied_op = snapshot.op
        self.sessions = {client: (key, op) for client, key, op in snapshot.sessions}
        effects: list[Effect] = [Install(snapshot)]
        effects.extend(self._raise_commit(snapshot.op))
        return effects

    # Sending.

    def _others(self) -> list[int]:
        return [other for other in range(self.bounds.replica_count) if other != self.index]

    def _broadcast(self, message: Message) -> list[Effect]:
        return [Send(other, message) for other in self._others()]


def chain_from_disk(log: Sequence[Entry], stored: Mapping[int, bytes]) -> list[Entry]:
    """`log` extended with the disk's entries that follow it, as long as each decodes
    and names the one before it as its parent. A break is where a view change's rewrite
    stopped, or where an entry rotted; what lies beyond it is not this log."""
    chained = list(log)
    while log_op(chained) + 1 in stored:
        entry = decode_entry(stored[log_op(chained) + 1])
        parent = chained[-1].checksum if chained else ROOT_CHECKSUM
        if entry is None or entry.parent != parent:
            break
        chained.append(entry)
    return chained


def log_op(log: Sequence[Entry]) -> int:
    """The highest op of a log (0 for an empty one)."""
    return log[-1].op if log else 0


def check_chain(log: Sequence[Entry]) -> None:
    """A log taken from a peer must be a hash chain of consecutive ops whose time runs on."""
    for position, entry in enumerate(log):
        require(entry_is_intact(entry), f"a new log's entry {entry.op} fails its checksum")
        if position == 0:
            require(entry.op >= 1, "a new log starts before op 1")
            require(entry.op > 1 or entry.parent == ROOT_CHECKSUM, "op 1 names a parent")
            continue
        previous = log[position - 1]
        require(entry.op == previous.op + 1, "a new log's op numbers skip")
        require(entry.parent == previous.checksum, f"a new log breaks the chain at op {entry.op}")
        require(entry.timestamp_ms > previous.timestamp_ms, "a new log's time goes back")
