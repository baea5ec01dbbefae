"""A deterministic simulator of one shard's replicas, after TigerBeetle's VOPR.

It runs the very `Replica` the shards will run, behind `ReplicaHost`, with the network,
the disks, the clocks, the application and the clients replaced by seeded stand-ins:

- the network loses, delays (so reorders) and doubles messages, and partitions the
  replicas into two sides for a while;
- a disk flushes writes after a delay, stalls for a while, loses every unflushed write
  when its replica crashes, and has entries corrupted while its replica is down, or is
  lost whole (the replica comes back empty);
- replicas crash and restart (at most f of a shard of 2f+1 are down or still recovering
  at once: more than that is beyond what any quorum protocol survives), and now and then
  the whole shard at once, as a power cut would (each loses its unflushed writes, none
  its disk): no peer can then answer a recovery, and the replicas come back through a
  view change from their own disks;
- clients send requests with idempotency keys, one at a time, and send them again, to
  every replica, when no answer comes.

Every choice comes from one `random.Random(seed)`; time is a tick counter. So a run is a
function of its seed, and a failing seed replays exactly (`--seed S`). Each seed also
picks its own mix of faults (swarm testing): some seeds lose many messages, some none.

Each run checks, while it runs: no two replicas apply different entries at one op; no
two replicas acknowledge in one view; a client never hears two ops for one request. Once
the faults stop (partitions healed, crashed replicas restarted, no more loss) the shard
must converge within a bound: every request acknowledged, every replica normal in one
view with one log, all of it committed and applied; every acknowledged request in that
log exactly once, at the op it was acknowledged at, and each client's requests in the
order it sent them (it sends one at a time). Any breach raises
`SimulationFailure`, naming the seed.

Long, and kept whole: the simulated network, disks, clients and faults share one seeded
random source and one tick, which is what lets a seed replay exactly.
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from coopnode.replication.bounds import ReplicationBounds
from coopnode.replication.errors import ReplicationInvariantViolation
from coopnode.replication.host import ReplicaHost
from coopnode.replication.messages import (
    Entry,
    Message,
    Reply,
    Request,
    Snapshot,
    decode_snapshot,
    encode_snapshot,
)
from coopnode.replication.replica import Replica, Status


class SimulationFailure(Exception):
    """A run broke one of the checks; `seed` replays it."""

    def __init__(self, seed: int, tick: int, reason: str) -> None:
        super().__init__(f"seed {seed} failed at tick {tick}: {reason}")
        self.seed = seed
        self.tick = tick
        self.reason = reason


class FaultProfile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The faults one seed runs under (probabilities are per message or per tick)."""

    replica_count: int
    message_loss_probability: float
    message_duplicate_probability: float
    message_delay_ticks_max: int
    partition_probability_per_tick: float
    # A one-way partition drops only what side 1 sends to side 0: a primary that can
    # speak but not hear keeps its backups quiet while it commits nothing.
    partition_one_way_probability: float
    crash_probability_per_tick: float
    corrupt_on_crash_probability: float
    # A crash that loses the whole disk (a dead drive, a deleted data directory): the
    # replica comes back empty and is rebuilt from its peers.
    disk_lost_on_crash_probability: float
    # Every replica crashes at once (a power cut): unflushed writes lost, disks whole.
    shard_crash_probability_per_tick: float
    flush_delay_ticks_max: int
    stall_probability_per_tick: float
    checkpoint_interval_ops: int
    clock_offsets_ms: list[int]


class SimulationOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The size of one run; the defaults are what `make test`'s fixed seeds run."""

    client_count: int = 4
    requests_per_client: int = 20
    # Faults happen during the first `fault_ticks`; the shard then has
    # `converge_ticks_max` to converge: far more than a few view changes and a catch-up
    # take, so that a run which does not converge in it is a liveness bug, not bad luck.
    fault_ticks: int = 1_500
    converge_ticks_max: int = 4_000
    # A client sends its request again, to every replica, after this many silent ticks.
    client_retry_ticks: int = 30
    # A client waits up to this many ticks between one answer and its next request, so
    # that requests keep arriving through the whole faulty stretch of the run.
    client_think_ticks_max: int = 120
    # How long a crashed replica stays down, a partition lasts and a disk stalls.
    down_ticks_max: int = 300
    partition_ticks_max: int = 300
    stall_ticks_max: int = 200
    # Milliseconds of simulated wall clock per tick (what the primary stamps).
    tick_ms: int = 10


class SimulationResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What one run did: enough to see that the faults happened."""

    seed: int
    replica_count: int
    ticks: int
    messages_sent: int
    messages_dropped: int
    acknowledged: int
    final_view: int
    final_op: int
    crashes: int
    shard_crashes: int
    entries_corrupted: int
    snapshots_corrupted: int
    snapshots_installed: int
    disks_lost: int
    partitions: int
    stalls: int


def choose_profile(rng: random.Random) -> FaultProfile:
    """The seed's own mix of faults, each from none to heavy."""
    replica_count = rng.choice([3, 3, 3, 5])
    return FaultProfile(
        replica_count=replica_count,
        message_loss_probability=rng.choice([0.0, 0.01, 0.05, 0.15, 0.3]),
        message_duplicate_probability=rng.choice([0.0, 0.02, 0.1]),
        message_delay_ticks_max=rng.choice([1, 3, 10, 25, 50]),
        partition_probability_per_tick=rng.choice([0.0, 0.002, 0.006, 0.02]),
        partition_one_way_probability=rng.choice([0.0, 0.5]),
        crash_probability_per_tick=rng.choice([0.0, 0.003, 0.008, 0.02]),
        corrupt_on_crash_probability=rng.choice([0.0, 0.5, 1.0]),
        disk_lost_on_crash_probability=rng.choice([0.0, 0.0, 0.2]),
        shard_crash_probability_per_tick=rng.choice([0.0, 0.0, 0.0005, 0.002]),
        flush_delay_ticks_max=rng.choice([1, 3, 8]),
        stall_probability_per_tick=rng.choice([0.0, 0.003, 0.01]),
        checkpoint_interval_ops=rng.choice([4, 8, 16, 32, 1024]),
        clock_offsets_ms=[rng.randint(-5_000, 5_000) for _ in range(replica_count)],
    )


@dataclass(frozen=True)
class _ToReplica:
    target: int
    message: Message


@dataclass(frozen=True)
class _ToClient:
    reply: Reply


@dataclass(frozen=True)
class _SnapshotFlush:
    replica: int
    disk_epoch: int
    snapshot: Snapshot


@dataclass(frozen=True)
class _Flush:
    replica: int
    disk_epoch: int
    op: int
    checksum: bytes
    data: bytes


@dataclass(frozen=True)
class _ViewFlush:
    replica: int
    disk_epoch: int
    view: int
    log_view: int


_Event = _ToReplica | _ToClient | _Flush | _SnapshotFlush | _ViewFlush


@dataclass
class _Client:
    client_id: int
    next_key: int = 1
    in_flight: Request | None = None
    sent_tick: int = 0
    next_send_tick: int = 0
    view_guess: int = 0


@dataclass
class _Disk:
    """One replica's disk: what is flushed survives a crash, what is pending does not."""

    stored: dict[int, bytes] = field(default_factory=dict)
    snapshot: bytes | None = None
    # The view record; a formatted disk starts with view 0, a lost one has none.
    view_record: tuple[int, int] | None = (0, 0)
    epoch: int = 0
    flush_free_tick: int = 0
    stalled_until_tick: int = 0


class _SimClock:
    def __init__(self, simulation: Simulation, offset_ms: int) -> None:
        self.simulation = simulation
        self.offset_ms = offset_ms

    def realtime_ms(self) -> int:
        return (
            1_800_000_000_000
            + self.offset_ms
            + self.simulation.tick * self.simulation.options.tick_ms
        )


class _Network:
    def __init__(self, simulation: Simulation) -> None:
        self.simulation = simulation

    def send(self, source: int, target: int, message: Message) -> None:
        self.simulation.send_to_replica(source, target, message)


class _Storage:
    def __init__(self, simulation: Simulation, replica: int) -> None:
        self.simulation = simulation
        self.replica = replica

    def write(self, op: int, checksum: bytes, data: bytes) -> None:
        self.simulation.write(self.replica, op, checksum, data)

    def write_snapshot(self, snapshot: Snapshot) -> None:
        self.simulation.write_snapshot(self.replica, snapshot)

    def write_view(self, view: int, log_view: int) -> None:
        self.simulation.write_view(self.replica, view, log_view)


# What the stand-in application's state holds of each op: op, client id, request key and
# the entry's checksum. The whole history is the state, so that the final check can read
# every request the shard ever applied, even behind the checkpoints.
_History = list[tuple[int, int, int, bytes]]
_history_decoder = msgspec.msgpack.Decoder(_History)


class _Application:
    def __init__(self, simulation: Simulation, replica: int) -> None:
        self.simulation = simulation
        self.replica = replica
        self.history: _History = []

    def apply(self, entry: Entry) -> None:
        if entry.op != len(self.history) + 1:
            self.simulation.fail(f"replica {self.replica} applied op {entry.op} out of order")
        self.history.append((entry.op, entry.client_id, entry.request_key, entry.checksum))
        self.simulation.check_applied(self.replica, entry.op, entry.checksum)

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode(self.history)

    def restore(self, state: bytes) -> None:
        self.simulation.snapshots_installed += 1
        self.load(state)

    def load(self, state: bytes) -> None:
        self.history = _history_decoder.decode(state)
        for op, _, _, checksum in self.history:
            self.simulation.check_applied(self.replica, op, checksum)


class _Clients:
    def __init__(self, simulation: Simulation, replica: int) -> None:
        self.simulation = simulation
        self.replica = replica

    def acknowledge(self, reply: Reply) -> None:
        self.simulation.acknowledge(self.replica, reply)


class Simulation:
    """One seeded run of one shard; `run()` returns its result or raises
    `SimulationFailure`. `replica_class` lets a test run a deliberately broken variant."""

    def __init__(
        self,
        seed: int,
        options: SimulationOptions | None = None,
        replica_class: type[Replica] = Replica,
    ) -> None:
        self.seed = seed
        self.options = options or SimulationOptions()
        self.rng = random.Random(seed)
        self.profile = choose_profile(self.rng)
        self.replica_class = replica_class
        self.bounds = ReplicationBounds(
            replica_count=self.profile.replica_count,
            checkpoint_interval_ops=self.profile.checkpoint_interval_ops,
        )
        self.tick = 0
        self.events: list[tuple[int, int, _Event]] = []
        self.event_sequence = 0
        count = self.profile.replica_count
        self.disks = [_Disk() for _ in range(count)]
        self.clocks = [_SimClock(self, offset) for offset in self.profile.clock_offsets_ms]
        self.applications = [_Application(self, index) for index in range(count)]
        self.hosts: list[ReplicaHost | None] = [None] * count
        for index in range(count):
            self._start(index, self.replica_class.format(self.bounds, index, self.clocks[index]))
        self.restart_at_tick: dict[int, int] = {}
        self.healing: dict[int, int | None] = {}
        self.partition_side: list[int] = [0] * count
        self.partition_one_way = False
        self.partition_until_tick = 0
        self.clients = [_Client(client_id) for client_id in range(1, self.options.client_count + 1)]
        self.committed_checksums: dict[int, bytes] = {}
        self.acknowledger_of_view: dict[int, int] = {}
        self.acknowledged_ops: dict[tuple[int, int], int] = {}
        self.faults_on = True
        self.messages_sent = 0
        self.messages_dropped = 0
        self.crashes = 0
        self.shard_crashes = 0
        self.entries_corrupted = 0
        self.disks_lost = 0
        self.snapshots_corrupted = 0
        self.snapshots_installed = 0
        self.partitions = 0
        self.stalls = 0
        self.incarnations = 0

    # The run.

    def run(self) -> SimulationResult:
        """Run the faults, then let the shard converge, then check the final state."""
        ticks_max = self.options.fault_ticks + self.options.converge_ticks_max
        try:
            while self.tick < ticks_max:
                if self.faults_on and self.tick >= self.options.fault_ticks:
                    self._stop_faults()
                self._step()
                if not self.faults_on and self._converged():
                    self._check_final()
                    return self._result()
                self.tick += 1
        except ReplicationInvariantViolation as error:
            self.fail(f"a replica's invariant broke: {error}")
        self.fail("the shard did not converge after the faults stopped: " + self._describe())

    def _step(self) -> None:
        while self.events and self.events[0][0] <= self.tick:
            _, _, event = heapq.heappop(self.events)
            self._handle(event)
        if self.faults_on:
            self._inject_faults()
        for index, due_tick in sorted(self.restart_at_tick.items()):
            if due_tick <= self.tick:
                self._restart(index)
        for host in self.hosts:
            if host is not None:
                host.tick()
        for client in self.clients:
            self._tick_client(client)
        self._note_healed()

    def _handle(self, event: _Event) -> None:
        match event:
            case _ToReplica(target=target, message=message):
                host = self.hosts[target]
                if host is not None:
                    host.deliver(message)
            case _ToClient(reply=reply):
                self._client_hears(reply)
            case _SnapshotFlush(replica=replica, disk_epoch=epoch, snapshot=snapshot):
                if epoch != self.disks[replica].epoch:
                    return
                self.disks[replica].snapshot = encode_snapshot(snapshot)
                host = self.hosts[replica]
                if host is not None:
                    host.snapshot_durable(snapshot)
            case _ViewFlush(replica=replica, disk_epoch=epoch, view=view, log_view=log_view):
                if epoch == self.disks[replica].epoch:
                    self.disks[replica].view_record = (view, log_view)
            case _Flush():
                disk = self.disks[event.replica]
                if event.disk_epoch != disk.epoch:
                    return
                disk.stored[event.op] = event.data
                flushed = self.hosts[event.replica]
                if flushed is not None:
                    flushed.durable(event.op, event.checksum)

    def _schedule(self, delay_ticks: int, event: _Event) -> None:
        self.event_sequence += 1
        heapq.heappush(self.events, (self.tick + delay_ticks, self.event_sequence, event))

    # The replicas' world.

    def _start(self, index: int, replica: Replica) -> None:
        """Run `replica` at `index`, over a fresh application state."""
        application = _Application(self, index)
        self.applications[index] = application
        self.hosts[index] = ReplicaHost(
            replica, _Network(self), _Storage(self, index), application, _Clients(self, index)
        )

    def send_to_replica(self, source: int, target: int, message: Message) -> None:
        """The network: lose, partition, delay and double a message between replicas."""
        self.messages_sent += 1
        if self.faults_on and self._partitioned(source, target):
            self.messages_dropped += 1
            return
        self._send(_ToReplica(target, message))

    def _partitioned(self, source: int, target: int) -> bool:
        if self.partition_side[source] == self.partition_side[target]:
            return False
        return not self.partition_one_way or self.partition_side[source] == 1

    def _send(self, event: _ToReplica | _ToClient) -> None:
        profile = self.profile
        if self.faults_on and self.rng.random() < profile.message_loss_probability:
            self.messages_dropped += 1
            return
        delay_max = profile.message_delay_ticks_max if self.faults_on else 1
        self._schedule(self.rng.randint(1, delay_max), event)
        if self.faults_on and self.rng.random() < profile.message_duplicate_probability:
            self._schedule(self.rng.randint(1, delay_max), event)

    def write(self, replica: int, op: int, checksum: bytes, data: bytes) -> None:
        """The disk: flush writes in order, each after a delay, later when stalled."""
        disk = self.disks[replica]
        start = max(self.tick, disk.flush_free_tick, disk.stalled_until_tick)
        disk.flush_free_tick = start + self.rng.randint(0, self.profile.flush_delay_ticks_max)
        flush = _Flush(replica, disk.epoch, op, checksum, data)
        self._schedule(disk.flush_free_tick - self.tick, flush)

    def write_snapshot(self, replica: int, snapshot: Snapshot) -> None:
        """The disk: a snapshot is flushed in turn with the entries."""
        disk = self.disks[replica]
        start = max(self.tick, disk.flush_free_tick, disk.stalled_until_tick)
        disk.flush_free_tick = start + self.rng.randint(0, self.profile.flush_delay_ticks_max)
        flush = _SnapshotFlush(replica, disk.epoch, snapshot)
        self._schedule(disk.flush_free_tick - self.tick, flush)

    def write_view(self, replica: int, view: int, log_view: int) -> None:
        """The disk: the view record is flushed in turn with the entries."""
        disk = self.disks[replica]
        start = max(self.tick, disk.flush_free_tick, disk.stalled_until_tick)
        disk.flush_free_tick = start + self.rng.randint(0, self.profile.flush_delay_ticks_max)
        flush = _ViewFlush(replica, disk.epoch, view, log_view)
        self._schedule(disk.flush_free_tick - self.tick, flush)

    # Faults.

    def _inject_faults(self) -> None:
        profile = self.profile
        if self.tick >= self.partition_until_tick and any(self.partition_side):
            self.partition_side = [0] * profile.replica_count
        if self.rng.random() < profile.partition_probability_per_tick and not any(
            self.partition_side
        ):
            self._partition()
        if self.rng.random() < profile.stall_probability_per_tick:
            disk = self.disks[self.rng.randrange(profile.replica_count)]
            disk.stalled_until_tick = self.tick + self.rng.randint(1, self.options.stall_ticks_max)
            self.stalls += 1
        # A power cut only over a healthy shard: one while a replica is still rebuilt is
        # two faults at once, which no quorum of three survives.
        healthy = not self.restart_at_tick and not self.healing
        if self.rng.random() < profile.shard_crash_probability_per_tick and healthy:
            self._crash_shard()
        if self.rng.random() < profile.crash_probability_per_tick:
            faulty = set(self.restart_at_tick) | set(self.healing)
            if len(faulty) < (profile.replica_count - 1) // 2:
                up = [index for index in range(profile.replica_count) if index not in faulty]
                self._crash(self.rng.choice(up))

    def _partition(self) -> None:
        count = self.profile.replica_count
        sides = [self.rng.randrange(2) for _ in range(count)]
        if 0 < sum(sides) < count:
            self.partition_side = sides
            self.partition_one_way = self.rng.random() < self.profile.partition_one_way_probability
            self.partition_until_tick = self.tick + self.rng.randint(
                1, self.options.partition_ticks_max
            )
            self.partitions += 1

    def _crash_shard(self) -> None:
        """Every replica that is up dies at once, as in a power cut: each loses what it
        had not flushed, but no disk is lost or rots."""
        for index, host in enumerate(self.hosts):
            if host is None:
                continue
            self.hosts[index] = None
            disk = self.disks[index]
            disk.epoch += 1
            disk.flush_free_tick = self.tick
            disk.stalled_until_tick = 0
            self.restart_at_tick[index] = self.tick + self.rng.randint(
                1, self.options.down_ticks_max
            )
            self.crashes += 1
        self.shard_crashes += 1

    def _crash(self, index: int) -> None:
        """The replica's process dies: unflushed writes are lost, and while it is down
        some of what its disk holds may rot."""
        self.hosts[index] = None
        disk = self.disks[index]
        disk.epoch += 1
        disk.flush_free_tick = self.tick
        disk.stalled_until_tick = 0
        if self.rng.random() < self.profile.disk_lost_on_crash_probability:
            disk.stored = {}
            disk.snapshot = None
            disk.view_record = None
            self.disks_lost += 1
        elif disk.stored and self.rng.random() < self.profile.corrupt_on_crash_probability:
            for op in self.rng.sample(sorted(disk.stored), k=min(3, len(disk.stored))):
                data = bytearray(disk.stored[op])
                data[self.rng.randrange(len(data))] ^= 1 << self.rng.randrange(8)
                disk.stored[op] = bytes(data)
                self.entries_corrupted += 1
            if disk.snapshot is not None and self.rng.random() < 0.5:
                damaged = bytearray(disk.snapshot)
                damaged[self.rng.randrange(len(damaged))] ^= 1 << self.rng.randrange(8)
                disk.snapshot = bytes(damaged)
                self.snapshots_corrupted += 1
        self.restart_at_tick[index] = self.tick + self.rng.randint(1, self.options.down_ticks_max)
        self.crashes += 1

    def _restart(self, index: int) -> None:
        """The replica starts again over its disk: its application from the snapshot on
        the disk if that is intact (else empty), its log from its peers."""
        del self.restart_at_tick[index]
        self.incarnations += 1
        data = self.disks[index].snapshot
        snapshot = decode_snapshot(data) if data is not None else None
        replica = self.replica_class.restart(
            self.bounds,
            index,
            self.clocks[index],
            dict(self.disks[index].stored),
            snapshot=snapshot,
            incarnation=self.incarnations,
            view_record=self.disks[index].view_record,
        )
        self._start(index, replica)
        if snapshot is not None:
            self.applications[index].load(snapshot.state)
        self.healing[index] = None

    def _note_healed(self) -> None:
        """A restarted replica counts as faulty until it is normal and holds, durably,
        what was committed when it became normal again."""
        for index, target in sorted(self.healing.items()):
            host = self.hosts[index]
            if host is None:
                continue
            replica = host.replica
            if replica.status is not Status.NORMAL:
                continue
            if target is None:
                self.healing[index] = replica.commit_max
            elif replica.op_durable >= target:
                del self.healing[index]

    def _stop_faults(self) -> None:
        self.faults_on = False
        self.partition_side = [0] * self.profile.replica_count
        for disk in self.disks:
            disk.stalled_until_tick = 0
        for index in sorted(self.restart_at_tick):
            self._restart(index)

    # Clients.

    def _tick_client(self, client: _Client) -> None:
        if client.in_flight is None:
            if client.next_key > self.options.requests_per_client:
                return
            if self.tick < client.next_send_tick:
                return
            payload = f"client {client.client_id} request {client.next_key}".encode()
            client.in_flight = Request(client.client_id, client.next_key, payload)
            client.sent_tick = self.tick
            self._send(_ToReplica(client.view_guess % self.profile.replica_count, client.in_flight))
        elif self.tick - client.sent_tick >= self.options.client_retry_ticks:
            client.sent_tick = self.tick
            for target in range(self.profile.replica_count):
                self._send(_ToReplica(target, client.in_flight))

    def acknowledge(self, replica: int, reply: Reply) -> None:
        """A replica acknowledges: check that it alone does so in its view."""
        first = self.acknowledger_of_view.setdefault(reply.view, replica)
        if first != replica:
            self.fail(f"replicas {first} and {replica} both acknowledged in view {reply.view}")
        self._send(_ToClient(reply))

    def _client_hears(self, reply: Reply) -> None:
        key = (reply.client_id, reply.request_key)
        known_op = self.acknowledged_ops.setdefault(key, reply.op)
        if known_op != reply.op:
            self.fail(f"request {key} was acknowledged at op {known_op} and at op {reply.op}")
        client = self.clients[reply.client_id - 1]
        client.view_guess = max(client.view_guess, reply.view)
        if client.in_flight is not None and client.in_flight.request_key == reply.request_key:
            client.in_flight = None
            client.next_key += 1
            think_ticks = self.rng.randint(0, self.options.client_think_ticks_max)
            client.next_send_tick = self.tick + think_ticks

    # Checks.

    def check_applied(self, replica: int, op: int, checksum: bytes) -> None:
        """No two replicas apply different entries at one op."""
        first = self.committed_checksums.setdefault(op, checksum)
        if first != checksum:
            self.fail(f"replica {replica} applied another entry at op {op}")

    def _converged(self) -> bool:
        if any(client.in_flight is not None for client in self.clients):
            return False
        if any(c.next_key <= self.options.requests_per_client for c in self.clients):
            return False
        replicas = [host.replica for host in self.hosts if host is not None]
        if len(replicas) != self.profile.replica_count:
            return False
        first = replicas[0]
        return all(
            replica.status is Status.NORMAL
            and replica.view == first.view
            and replica.op == first.op
            and replica.commit_max == replica.op
            and replica.applied_op == replica.op
            and replica.op_durable == replica.op
            and not replica.needs_snapshot
            for replica in replicas
        )

    def _check_final(self) -> None:
        """Every replica holds one log (cut at different checkpoints, maybe) and one
        state; every acknowledged request is in that state exactly once, at the op it
        was acknowledged at, each client's in the order it sent them."""
        final_op = next(host.replica.op for host in self.hosts if host is not None)
        logged: dict[int, bytes] = {}
        for index, host in enumerate(self.hosts):
            if host is None:
                continue
            for entry in host.replica.log:
                if logged.setdefault(entry.op, entry.checksum) != entry.checksum:
                    self.fail(f"replica {index}'s log differs from another at op {entry.op}")
        history = self.applications[0].history
        for index, application in enumerate(self.applications):
            if application.history != history:
                self.fail(f"replica {index}'s state differs from replica 0's")
        if [item[0] for item in history] != list(range(1, final_op + 1)):
            self.fail("the state does not hold every op of the log once, in order")
        keys = [(client_id, request_key) for _, client_id, request_key, _ in history]
        if len(set(keys)) != len(keys):
            self.fail("a request is in the committed state more than once")
        for key, op in sorted(self.acknowledged_ops.items()):
            if op > len(keys) or keys[op - 1] != key:
                self.fail(f"acknowledged request {key} is not at op {op} of the final state")
        for client in self.clients:
            ops = [
                self.acknowledged_ops[(client.client_id, key)]
                for key in range(1, self.options.requests_per_client + 1)
                if (client.client_id, key) in self.acknowledged_ops
            ]
            if ops != sorted(ops):
                self.fail(f"client {client.client_id}'s requests are out of the order it sent")
        expected = self.options.client_count * self.options.requests_per_client
        if len(self.acknowledged_ops) != expected:
            self.fail(f"{len(self.acknowledged_ops)} of {expected} requests acknowledged")

    def fail(self, reason: str) -> typing.NoReturn:
        """Stop the run: `reason` broke, and the seed replays it."""
        raise SimulationFailure(self.seed, self.tick, reason)

    def _describe(self) -> str:
        parts = []
        for index, host in enumerate(self.hosts):
            if host is None:
                parts.append(f"replica {index} down")
                continue
            r = host.replica
            parts.append(
                f"replica {index} {r.status.value} view {r.view} op {r.op} "
                f"commit {r.commit_max} applied {r.applied_op} durable {r.op_durable}"
            )
        waiting = sum(1 for client in self.clients if client.in_flight is not None)
        return "; ".join(parts) + f"; {waiting} clients waiting"

    def _result(self) -> SimulationResult:
        first = next(host.replica for host in self.hosts if host is not None)
        return SimulationResult(
            seed=self.seed,
            replica_count=self.profile.replica_count,
            ticks=self.tick,
            messages_sent=self.messages_sent,
            messages_dropped=self.messages_dropped,
            acknowledged=len(self.acknowledged_ops),
            final_view=first.view,
            final_op=first.op,
            crashes=self.crashes,
            shard_crashes=self.shard_crashes,
            entries_corrupted=self.entries_corrupted,
            snapshots_corrupted=self.snapshots_corrupted,
            snapshots_installed=self.snapshots_installed,
            disks_lost=self.disks_lost,
            partitions=self.partitions,
            stalls=self.stalls,
        )


def run_seed(
    seed: int, options: SimulationOptions | None = None, replica_class: type[Replica] = Replica
) -> SimulationResult:
    """Run one seed; raise `SimulationFailure` if a check breaks."""
    return Simulation(seed, options, replica_class).run()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m coopnode.replication.simulator --seeds N [--first F] [--seed S]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    parser.add_argument("--first", type=int, default=0, help="the first seed of the run")
    parser.add_argument("--seed", type=int, help="replay this one seed, and say what it did")
    arguments = parser.parse_args(argv)
    seeds = (
        [arguments.seed]
        if arguments.seed is not None
        else range(arguments.first, arguments.first + arguments.seeds)
    )
    failures = 0
    totals = dict.fromkeys(_TOTALS.values(), 0)
    for seed in seeds:
        try:
            result = run_seed(seed)
        except SimulationFailure as failure:
            failures += 1
            print(f"FAIL {failure}  (replay: --seed {seed})", flush=True)
            continue
        if arguments.seed is not None:
            print(msgspec.json.encode(result).decode())
        for name, label in _TOTALS.items():
            totals[label] += getattr(result, name)
    print(f"{len(seeds) - failures} of {len(seeds)} seeds passed", flush=True)
    print("over the seeds that passed: " + ", ".join(f"{n} {label}" for label, n in totals.items()))
    return 1 if failures else 0


# What `main` adds up over the seeds that passed, to show the faults they survived (a
# run's final view number is how many views it went through).
_TOTALS = {
    "acknowledged": "requests acknowledged",
    "crashes": "crashes",
    "shard_crashes": "whole-shard crashes",
    "entries_corrupted": "entries corrupted",
    "disks_lost": "disks lost",
    "snapshots_corrupted": "snapshots corrupted",
    "snapshots_installed": "snapshots installed",
    "partitions": "partitions",
    "stalls": "disk stalls",
    "messages_dropped": "messages lost",
    "final_view": "view changes",
}


if __name__ == "__main__":
    sys.exit(main())
