"""Every setting and bound of the node, in one typed object.

Settings are read, lowest precedence first, from the embedded defaults below,
`config/node.toml` (or the file named by `COOPNODE_CONFIG`), a `--config` file, and
`COOPNODE_<SECTION>__<KEY>` environment variables (values in TOML syntax, so
`COOPNODE_WALLET__SHARD_COUNT=4` or `COOPNODE_NODE__ENVIRONMENT=production`). Unknown keys
and bad values stop the node at start with a message naming the key.

Names carry their unit last (`_ms`, `_s`, `_bytes`, `_yen`); each bound says why it is
what it is.

Long by design: every setting and bound is here once, each with its sentence on why, so
that an operator reads one file (the README says so).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import msgspec

from coopnode.domain.bounds import EVENT_SEATS_MAX, PAGE_LINES_MAX
from coopnode.domain.passcodes import PasscodePolicy
from coopnode.domain.rules import CoopRules

Positive = Annotated[int, msgspec.Meta(ge=1)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
# A node's base URL as a till reaches it: http(s)://host[:port], nothing after.
NodeUrl = Annotated[
    str, msgspec.Meta(pattern=r"^https?://[^/?#\s]+/?$", min_length=8, max_length=300)
]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    AUTO = "auto"  # readable lines on a terminal, JSON lines otherwise
    JSON = "json"
    CONSOLE = "console"


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class NodeSettings(_Section, frozen=True):
    environment: Environment = Environment.DEVELOPMENT
    # LMDB files, Ray's session files and generated secrets live here.
    data_dir: str = "var"
    host: str = "127.0.0.1"
    port: Port = 8080
    # Empty: start a local Ray; otherwise the address of a cluster to join ("auto" works).
    ray_address: str = ""
    # CPUs a local Ray may use; the machine this was built on has two.
    ray_num_cpus: Annotated[int, msgspec.Meta(ge=1, le=256)] = 2
    # Ray's session files; empty means `<data_dir>/ray`. Ray's sockets need a short path.
    # Joining a cluster, the temp dir this host's Ray node was started with (`ray start
    # --temp-dir`), which picks that node where one machine runs several; empty: any.
    ray_tmp_dir: str = ""
    # Joining a cluster: the address this host's Ray node was started with
    # (`ray start --node-ip-address`); empty lets Ray find the host's address.
    ray_node_ip_address: Annotated[str, msgspec.Meta(max_length=64)] = ""
    # The staff token is read from this file; empty means `<data_dir>/staff-token`,
    # created with a random token at first start in development.
    staff_token_file: str = ""
    # How long a clean shutdown waits for in-flight operations before it stops anyway.
    shutdown_grace_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0
    # TLS: with both named, the node serves HTTPS and WSS only (passwords, card IDms and
    # balances cross the network). The certificate file is PEM, the node's certificate
    # first and then any intermediates; the key is PEM, unencrypted, mode 0600. Checked
    # at start: files readable, the key the certificate's, the certificate not expired.
    # Empty: plain HTTP, for loopback or behind a reverse proxy that terminates TLS.
    tls_cert_file: Annotated[str, msgspec.Meta(max_length=4096)] = ""
    tls_key_file: Annotated[str, msgspec.Meta(max_length=4096)] = ""
    # Reverse proxies (addresses or networks, e.g. "127.0.0.1" or "10.0.0.0/24") whose
    # X-Forwarded-Proto and X-Forwarded-For the node believes; from any other peer those
    # headers are ignored, since anyone can send them. A handful at most.
    trusted_proxies: Annotated[list[str], msgspec.Meta(max_length=32)] = []

    def __post_init__(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("node.tls_cert_file and node.tls_key_file go together: name both")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy)
            except ValueError:
                raise ValueError(
                    f"node.trusted_proxies: {proxy!r} is not an address or network"
                ) from None

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert_file)


class LogSettings(_Section, frozen=True):
    format: LogFormat = LogFormat.AUTO
    level: Annotated[str, msgspec.Meta(pattern="^(debug|info|warning|error)$")] = "info"
    # Write one access-log line per HTTP request; off by default because the till path
    # is hot and metrics already count requests.
    access_log: bool = False


class WalletSettings(_Section, frozen=True):
    # Members hash to shards; the count is fixed for the life of a data directory. One on
    # a two-core node: the front needs the other core, and one shard's group commits are
    # twice as full as two shards' (the README's Performance section has the dated
    # figures of `benchmarks/tills.py`). More cores, more shards.
    shard_count: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    # The largest an LMDB file may grow; LMDB reserves address space, not disk.
    lmdb_map_size_mib: Annotated[int, msgspec.Meta(ge=16, le=1_048_576)] = 4096
    # Fsync every commit. Only benchmarks that say so turn this off.
    fsync: bool = True
    # Most operations one group commit applies; more wait for the next commit.
    commit_batch_max_ops: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 4096
    # Most operations queued in a shard before new ones are refused as overloaded, so
    # that a burst cannot exhaust memory or make every caller wait without bound.
    mailbox_max_ops: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 50_000
    # The books' long reads (a day's settlement, the unused balance) read the journal in
    # the shard's books reader process, in read transactions of this many entries each,
    # so that no reader keeps old pages of the file from being reused for long.
    books_read_chunk_entries: Annotated[int, msgspec.Meta(ge=16, le=100_000)] = 2_000
    # How far back the wall clock may step between two commits (an NTP correction): the
    # books read this much past a day's edges, since entries are dated by the clock.
    books_clock_step_max_ms: Annotated[int, msgspec.Meta(ge=0, le=86_400_000)] = 600_000
    # The front sends a shard at most this many operations per Ray call...
    front_batch_max_ops: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 512
    # ...and waits at most this long to fill a batch (a fraction of a millisecond); 0
    # sends what arrived in the same turn of the event loop, with no timer at all.
    front_batch_window_us: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0
    # Batches in flight to one shard; more operations wait and join a later batch. Two
    # keeps a batch filling while the other commits (measured best of 1, 2 and 4).
    front_batches_in_flight_max: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2
    # Operations the front holds for one shard before answering "overloaded".
    front_queue_max_ops: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 20_000
    # A shard that does not answer within this time is treated as unavailable.
    call_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=120)] = 10.0
    # A batch whose shard died is sent again (with the same idempotency keys) this many
    # times while Ray restarts the shard, waiting `retry_backoff_ms` doubled each time.
    call_retry_max: Annotated[int, msgspec.Meta(ge=0, le=20)] = 6
    retry_backoff_ms: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100
    # Ray restarts a crashed shard at most this many times.
    actor_max_restarts: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 100
    # How the front sends batches to the shards: "link", a socket per shard opened by the
    # shard actor (the fast path), or "ray", one Ray actor call per batch.
    transport: Annotated[str, msgspec.Meta(pattern="^(link|ray)$")] = "link"
    # The address a shard's link listens on: loopback unless the shards run on other hosts.
    # "node" listens on the address Ray gives the shard's host (`ray start
    # --node-ip-address`), where fronts on other hosts reach it; a wildcard ("0.0.0.0")
    # listens on every address and tells fronts the host's Ray address. Anything but
    # loopback needs `cluster.tls`: a link between hosts is never plain.
    link_host: Annotated[str, msgspec.Meta(max_length=255)] = "127.0.0.1"
    # How long a new link has for its TLS handshake and its hello before the shard hangs
    # up: a peer that connects and says nothing must not hold a socket and a task forever.
    link_handshake_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=120)] = 10.0
    # The largest frame on a link, either way; a full batch of payments is ~100 KiB.
    link_frame_max_bytes: Annotated[int, msgspec.Meta(ge=65_536, le=268_435_456)] = 16_777_216
    # A shard waits this long for the previous owner of its files to let go (kill -9).
    lock_wait_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 30.0
    # The node's Ed25519 journal key (its 32-byte seed in hex), which signs each sealed
    # day's root; empty means `<data_dir>/wallet/journal-key`, made at the first start.
    # On a cluster every host's shards sign with it: name a file given to every host (a
    # host without it refuses to seal, saying so).
    journal_key_file: Annotated[str, msgspec.Meta(max_length=4096)] = ""

    @property
    def call_with_retries_s(self) -> float:
        """The longest the front goes on with one batch: every try and every backoff."""
        backoff_ms = sum(self.retry_backoff_ms << index for index in range(self.call_retry_max))
        return self.call_timeout_s * (self.call_retry_max + 1) + backoff_ms / 1000


class StorageFaultSettings(_Section, frozen=True):
    """A storage fault for tests and benchmarks only (issue 16 §7): one replica's log
    flushes are delayed, now and then, as a stalling disk delays them. Off by default; the
    settings refuse it in production."""

    # Which replica's disk stalls (of every replicated shard); -1: none.
    replica: Annotated[int, msgspec.Meta(ge=-1, le=6)] = -1
    # How long a stalled flush waits, on top of the disk's own time.
    stall_ms: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 250
    # How often a flush stalls, on average: each flush stalls with the probability that
    # makes the stalls about this far apart (at random, seeded below).
    every_ms: Annotated[int, msgspec.Meta(ge=1, le=600_000)] = 2_000
    # The seed of the stalls' times, so that a benchmark's two runs stall alike.
    seed: int = 16

    @property
    def enabled(self) -> bool:
        return self.replica >= 0 and self.stall_ms > 0


class ReplicationSettings(_Section, frozen=True):
    """How many replicas each wallet shard has, and the protocol's timing (issue 16;
    docs/architecture.md, "Replicated shards").

    One replica is a shard as it always was: one disk's flush acknowledges. Three (or
    five) replicas, each with its own LMDB files on its own disk, acknowledge a commit
    once a majority hold it durable, so a lost disk loses nothing and one stalled disk is
    outvoted. Time in the protocol is ticks of `tick_ms`; the bounds below are in
    milliseconds and become whole ticks.
    """

    replica_count: Annotated[int, msgspec.Meta(ge=1, le=7)] = 1
    # The protocol's clock: heartbeats, timeouts and resends are counted in these.
    # Ten milliseconds keeps a failover within a second or two and costs a wake-up per
    # tick per replica, which is nothing beside a commit.
    tick_ms: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 10
    # A backup that hears nothing from its primary for this long starts a view change.
    # Long enough that a primary busy with a large commit or a garbage collection is not
    # deposed; short enough that a dead one is replaced within a second or two.
    primary_silence_ms: Annotated[int, msgspec.Meta(ge=10, le=60_000)] = 600
    # How often an idle primary tells its backups it is alive.
    heartbeat_ms: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100
    # How long one view change may take before the next view is tried.
    view_change_ms: Annotated[int, msgspec.Meta(ge=10, le=60_000)] = 1_000
    # How long a restarted replica waits for its peers' answers before it rejoins through
    # a view change from its own disk (when the whole shard restarted, no peer answers).
    recovery_ms: Annotated[int, msgspec.Meta(ge=10, le=600_000)] = 3_000
    # A primary whose disk has flushed nothing for this long goes silent, and a backup
    # whose disk works takes over. Shorter stalls are outvoted (the backups' flushes
    # commit without the primary's); this is for a disk that hangs.
    flush_stuck_ms: Annotated[int, msgspec.Meta(ge=100, le=600_000)] = 2_000
    # How often what may have been lost is sent again.
    resend_ms: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 60
    # Log entries (group commits) a primary has prepared and not yet answered; batches
    # that arrive meanwhile wait in its mailbox and join the next entry, so that under
    # load entries grow instead of multiplying. Two keeps one filling while one commits.
    prepares_in_flight_max: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2
    # Log entries a primary keeps prepared but uncommitted (the protocol's own bound).
    pipeline_ops_max: Annotated[int, msgspec.Meta(ge=1, le=1_024)] = 32
    # A replica syncs its books and checkpoints every this many log entries (group
    # commits), and then cuts its log there: the log stays bounded, and a replica left
    # further behind takes a peer's copy of the books instead of the whole log.
    checkpoint_interval_ops: Annotated[int, msgspec.Meta(ge=2, le=1_000_000)] = 4_096
    # The longest log a replica keeps, checkpoints or not.
    log_ops_max: Annotated[int, msgspec.Meta(ge=16, le=10_000_000)] = 100_000
    # Entries one repair message carries.
    repair_entries_per_message_max: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 64
    # The largest message between replicas (a view change carries a log since the last
    # checkpoint; a prepare carries one group commit of up to `commit_batch_max_ops`).
    peer_frame_max_bytes: Annotated[int, msgspec.Meta(ge=65_536, le=1_073_741_824)] = 268_435_456
    # How long a front goes on finding a shard's primary (a failover) before it answers
    # "try again": a few view changes' worth.
    primary_lookup_s: Annotated[float, msgspec.Meta(gt=0, le=120)] = 8.0
    storage_fault: StorageFaultSettings = msgspec.field(default_factory=StorageFaultSettings)

    def ticks(self, milliseconds: int) -> int:
        """`milliseconds` as whole ticks, at least one."""
        return max(1, round(milliseconds / self.tick_ms))


class HttpSettings(_Section, frozen=True):
    # The largest request body; wallet requests are a few hundred bytes.
    body_max_bytes: Annotated[int, msgspec.Meta(ge=256, le=16_777_216)] = 16_384
    # Server-side time limit for one request.
    request_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=300)] = 15.0


class LiveSettings(_Section, frozen=True):
    """The staff console's tills page and live lunch view (issue 13 §3, §7)."""

    # The front samples its tills' counters at this interval and sends the figures to the
    # live view's watchers: the tap path only counts, and a watcher gets one event per
    # interval however fast the taps come.
    sample_interval_s: Annotated[float, msgspec.Meta(ge=0.2, le=60)] = 2.0
    # Taps per minute are counted over this trailing window (samples kept: window over
    # interval, at most `window_s / 0.2`).
    window_s: Annotated[int, msgspec.Meta(ge=10, le=600)] = 60
    # Live views open at once on this front; one more is refused (503). Each is an open
    # response and a task: a few managers' screens, never a crowd's.
    watchers_max: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 32
    # The queue-wait estimate's service time: how long one member takes at a till from
    # tray to tap (a cafeteria's measured average; 12 s serves five a minute).
    service_s_per_member: Annotated[float, msgspec.Meta(gt=0, le=600)] = 12.0
    # Offline taps a till forwarded when it came back, kept per till in the front for
    # the tills page (newest first; what the registry keeps of refusals is another list).
    forwarded_kept_per_till: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 500
    # A till registered in the console has its key file held in the front's memory for
    # one download, at most this long, and never written to the node's disk...
    key_download_ttl_s: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 900.0
    # ...and at most this many keys wait for their download at once.
    key_downloads_pending_max: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 64


class ReaderSettings(_Section, frozen=True):
    # The nfcpy device: "usb" finds a Sony RC-S380; "udp:HOST:PORT" talks to an emulated
    # card (tests and demos), see `coopnode.reader.emulator`.
    device_path: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] = "usb"
    # The same card seen again within this time after it was last seen is the same tap:
    # longer than any pause in polling a card that lies on the reader (up to about 1 s on
    # the UDP transport), shorter than a member lifting the card to pay a second time.
    debounce_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 1.5
    # Taps read but not yet taken by the till; a till takes taps one at a time, so a full
    # queue means the consumer is stuck, and dropping the newest bounds memory.
    tap_queue_max: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 64
    # The pause between two polls, so that a card lying on the reader is polled about ten
    # times a second: often enough to keep it debounced, seldom enough to spare the CPU.
    poll_interval_ms: Annotated[int, msgspec.Meta(ge=1, le=5_000)] = 100
    # The pause before reopening the device after nfcpy raised, so that an unplugged or
    # broken reader is retried at a steady pace instead of spinning a CPU core.
    error_backoff_ms: Annotated[int, msgspec.Meta(ge=1, le=60_000)] = 500
    # How long `stop()` waits for the polling thread; one poll on the UDP transport blocks
    # for up to 1 s when no card answers, so 3 s leaves room without hiding a hang.
    stop_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 3.0


class KioskSettings(_Section, frozen=True):
    """A card reader on a host of the node's Ray cluster, run by the node as a reader
    actor (`coopnode.reader.reader_actor`): a set-menu till selling one amount per tap."""

    # Names the reader, its actor (`reader-<name>`) and the Ray resource of the host it
    # is plugged into (`reader:<name>`; the local Ray holds every kiosk's).
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
    # "usb" (a Sony RC-S380) or "udp:HOST:PORT" (an emulated card).
    device_path: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    # The key file of a till staff registered for it (`coopnode admin till add`), at this
    # path on the reader's host, mode 0600.
    key_path: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    fixed_amount_yen: Annotated[int, msgspec.Meta(ge=1, le=100_000)]


class TillSettings(_Section, frozen=True):
    # The till channel on the node ------------------------------------------------------
    # The largest frame a till may send. A signed tap is about 150 bytes; a frame near
    # this size is not a till frame, and the connection is closed as "message too big".
    frame_max_bytes: Annotated[int, msgspec.Meta(ge=256, le=65_536)] = 2_048
    # A till must answer the node's challenge within this time, or it is disconnected.
    auth_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0
    # WebSocket pings at this interval; a till that misses a pong for half of it is gone.
    heartbeat_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 10.0
    # Each till's frames are paced by a token bucket: a cashier taps about once a second,
    # and this leaves room for forwarding an offline queue and for benchmark tills, while
    # a flooding till is slowed down (its frames are read no faster) and starves nobody.
    frames_per_s_max: Annotated[float, msgspec.Meta(gt=0, le=100_000)] = 400.0
    frames_burst_max: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 800
    # Frames of one connection being decided at once; further frames wait to be read.
    in_flight_max: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 256
    # The latest sequence numbers of each till kept in the front with a digest of their
    # frame and their decision, so that a replay is answered, or refused as a conflict,
    # without a wallet call. Older replays go to the wallet, which remembers every key.
    replay_window_taps: Annotated[int, msgspec.Meta(ge=16, le=1_000_000)] = 20_000
    # Malformed or unsigned frames a connection may send before it is closed.
    bad_frames_max: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 8
    # Deny-list pushes waiting to be written to one till; a till that is that far behind
    # is disconnected, and gets the whole list when it reconnects.
    push_queue_max: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 64
    # Offline limits, sent to every till when it connects: one offline tap at most...
    offline_tap_max_yen: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 1_000
    # ...one card at most this much per day across the offline taps of one till...
    offline_card_day_max_yen: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 3_000
    # ...and at most this many taps waiting in a till's queue (a few days of one till).
    offline_queue_max_taps: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 5_000
    # An offline tap is dated by the till's clock and booked on that date, and it stands
    # if its card was blocked only after it: the node refuses one dated further ahead of
    # its own clock than a till's clock plausibly drifts (five minutes)...
    offline_tap_clock_skew_max_s: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 300.0
    # ...or older than a week, so a till cannot date a tap back past a card's block at
    # will. A till that stays out of reach longer with taps queued (switched off over a
    # long closure) has them refused: bring it online before closing.
    offline_tap_age_max_s: Annotated[float, msgspec.Meta(gt=0, le=31_536_000)] = 604_800.0
    # These limits and the cut-off go to a till in `Welcome` and travel with each tap it
    # sells offline; lowering them here does not refuse what tills already sold.
    # Offline taps the node refuses (an unknown card, a card blocked before the tap, a
    # date or limits out of bounds) are kept for staff (GET /api/v1/offline-refusals), at
    # most this many per till: far more than a till sells in the age cut-off, so only a
    # broken or hostile till fills it; its further refusals then wait in its own queue.
    offline_refused_per_till_max: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 10_000
    # The card and till registry -------------------------------------------------------
    registry_lmdb_map_size_mib: Annotated[int, msgspec.Meta(ge=16, le=1_048_576)] = 256
    # A staff change waits this long for the registry actor before it is reported failed.
    registry_call_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=120)] = 10.0
    # Every front holds one call to the registry actor that is answered as soon as a card,
    # till or deny-list change lands (a push, however many fronts share the registry): the
    # actor keeps this many of its latest changes; a front further behind (a long pause,
    # thousands of cards bound in one import) reloads the whole snapshot instead.
    registry_change_log_max: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 4_096
    # The actor answers a front's waiting call after this long even when nothing changed,
    # and the front calls again at once: a call from a front that died does not stay in
    # the actor for longer, and a front whose call vanished (the actor restarted) notices
    # within this time plus `registry_call_timeout_s`.
    registry_watch_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 30.0
    # The repair path: the front re-reads the registry's version at this interval and
    # reloads the snapshot when it differs, in case a push was lost (the waiting call
    # failed while the actor restarted). Pushes make a change reach every front within
    # about a millisecond; this bounds how long a lost one can go unnoticed.
    registry_refresh_s: Annotated[float, msgspec.Meta(gt=0, le=3_600)] = 5.0
    # Each front saves to the registry, at this interval, the highest sequence number it
    # saw from each till since its last save, and reads the till's saved number when it
    # welcomes the till: a till that moves to another front is told the highest number any
    # front saw, except what its old front saw in the last interval before it crashed.
    sequences_save_s: Annotated[float, msgspec.Meta(gt=0, le=3_600)] = 1.0
    # The till agent -------------------------------------------------------------------
    # The nodes `coopnode till run` sells to when no `--node` is given, first to last: one
    # URL, or every front of a cluster. A till connects to the first that answers, stays on
    # it while its link lives, and tries the list from the top again once the link drops,
    # so it goes back to its first front at its next reconnection. Kiosks sell to their
    # own front first, then to these.
    agent_node_urls: Annotated[list[NodeUrl], msgspec.Meta(max_length=16)] = []
    # Opening a TCP (and TLS) connection to one node waits this long, and its WebSocket
    # upgrade `auth_timeout_s` more, before the till tries the next node: a front whose
    # host is gone answers nothing, not even a refusal, and a hung one accepts and stalls.
    agent_connect_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 3.0
    # A sale waits this long for a card before it is abandoned.
    agent_tap_wait_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 30.0
    # An online tap unanswered for this long is approved offline (within the limits) and
    # its frame forwarded again when the link returns; the node answers a repeat once.
    agent_decision_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 2.0
    # Reconnecting waits this long, doubled after each failure up to the maximum.
    agent_reconnect_backoff_ms: Annotated[int, msgspec.Meta(ge=1, le=60_000)] = 200
    agent_reconnect_backoff_max_ms: Annotated[int, msgspec.Meta(ge=1, le=600_000)] = 3_000
    # Queued offline taps in flight at once while forwarding them.
    agent_forward_window: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 32
    # A queued frame that got no answer, or "try again", is sent again after this long,
    # so that a busy node is not hammered and a queued tap is never given up on.
    agent_forward_retry_s: Annotated[float, msgspec.Meta(ge=0.05, le=600)] = 2.0
    # How the till checks the node's certificate on an https:// node URL: with the CA
    # certificates in this PEM file; or, with a pin, by the SHA-256 of the node's
    # certificate (64 hex digits, colons allowed as `openssl x509 -fingerprint -sha256`
    # prints them): that certificate and no other, whoever signed it. Neither: the
    # system's CA store (or $SSL_CERT_FILE). The kiosks of a TLS node are pinned to its
    # certificate when neither is set.
    agent_tls_ca_file: Annotated[str, msgspec.Meta(max_length=4096)] = ""
    agent_tls_pin_sha256: Annotated[
        str, msgspec.Meta(pattern="^(|[0-9A-Fa-f]{64}|[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){31})$")
    ] = ""
    # The local HTTP endpoint POS software calls (loopback only); 0 takes a free port.
    agent_http_port: Port = 8765
    # The till's LMDB (sequence counter, deny list, offline queue); `<dir>/<till id>`.
    agent_state_dir: str = "var/till"
    agent_lmdb_map_size_mib: Annotated[int, msgspec.Meta(ge=1, le=65_536)] = 64
    # Readers on the cluster's hosts that the node runs as reader actors; a host holds
    # one reader each, and a node has few.
    kiosks: Annotated[list[KioskSettings], msgspec.Meta(max_length=64)] = []
    # The demo (`coopnode serve --demo`) ------------------------------------------------
    # Start a simulated till and an emulated card, so a tap can be seen end to end.
    demo_till: bool = True
    # Every tap at the demo till is a sale of this amount (a set-menu cafeteria till).
    demo_sale_yen: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 430
    # The emulated demo cards are presented one after another with this pause.
    demo_tap_gap_s: Annotated[float, msgspec.Meta(gt=0, le=3_600)] = 4.0

    def __post_init__(self) -> None:
        if self.agent_reconnect_backoff_max_ms < self.agent_reconnect_backoff_ms:
            raise ValueError("till.agent_reconnect_backoff_max_ms must be at least the backoff")
        if self.agent_tls_ca_file and self.agent_tls_pin_sha256:
            raise ValueError("till: name agent_tls_ca_file or agent_tls_pin_sha256, not both")
        if self.offline_card_day_max_yen < self.offline_tap_max_yen:
            raise ValueError("till.offline_card_day_max_yen must be at least offline_tap_max_yen")
        names = [kiosk.name for kiosk in self.kiosks]
        if len(set(names)) != len(names):
            raise ValueError("till.kiosks: each kiosk needs a name of its own")
        if "demo" in names:
            raise ValueError("till.kiosks: the name 'demo' is the demo till's")


class VerificationSettings(_Section, frozen=True):
    # The bounds of passcodes and TOTP; `PasscodePolicy` says why each is what it is.
    passcode_ttl_s: Annotated[int, msgspec.Meta(ge=60, le=3600)] = 600
    passcode_attempts_max: Annotated[int, msgspec.Meta(ge=1, le=10)] = 5
    passcodes_per_hour_max: Annotated[int, msgspec.Meta(ge=1, le=50)] = 5
    passcode_resend_cooldown_s: Annotated[int, msgspec.Meta(ge=0, le=600)] = 60
    totp_window_steps: Annotated[int, msgspec.Meta(ge=0, le=2)] = 1
    totp_lockout_s: Annotated[int, msgspec.Meta(ge=1, le=86_400)] = 300
    # The secret that keys passcode digests; empty means `<data_dir>/passcode-key`.
    passcode_key_file: str = ""
    # The name authenticator apps show next to the member's TOTP code.
    totp_issuer: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "大学生協"

    def passcode_policy(self) -> PasscodePolicy:
        return PasscodePolicy(
            passcode_ttl_s=self.passcode_ttl_s,
            passcode_attempts_max=self.passcode_attempts_max,
            passcodes_per_hour_max=self.passcodes_per_hour_max,
            passcode_resend_cooldown_s=self.passcode_resend_cooldown_s,
            totp_window_steps=self.totp_window_steps,
            totp_lockout_s=self.totp_lockout_s,
        )


class SmsProviderKind(StrEnum):
    OUTBOX = "outbox"  # SMS and voice messages stay in the development outbox.
    TWILIO = "twilio"  # Twilio's REST API, or any service that speaks its shape.


class NotifierSettings(_Section, frozen=True):
    # Run the development mail server inside the node, keeping mail in memory only (mail
    # carries passcodes, which must never reach a disk in clear). Production turns this
    # off and points smtp_host at the co-op's mail relay.
    smtp_embedded: bool = True
    smtp_host: str = "127.0.0.1"
    # 0 lets the embedded server take a free port; a relay needs its real port.
    smtp_port: Port = 0
    smtp_start_tls: bool = False
    # Empty when the relay takes mail without authentication.
    smtp_username: str = ""
    smtp_password_file: str = ""
    # One SMTP conversation, connect to QUIT; a relay slower than this is treated as down.
    smtp_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=120)] = 10.0
    mail_from: Annotated[str, msgspec.Meta(min_length=3, max_length=200)] = (
        "大学生協 <noreply@coop.example>"
    )
    sms_provider: SmsProviderKind = SmsProviderKind.OUTBOX
    sms_api_base_url: str = "https://api.twilio.com"
    sms_account_sid: str = ""
    sms_auth_token_file: str = ""
    # The sending number in E.164 form, e.g. +815012345678.
    sms_from_number: str = ""
    sms_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=120)] = 10.0
    # A send that fails for a passing reason is tried again this many times, waiting
    # `send_backoff_ms` doubled each time up to `send_backoff_max_ms`: about a minute in
    # all, after which a passcode would be close to expiring anyway.
    send_retry_max: Annotated[int, msgspec.Meta(ge=0, le=20)] = 6
    send_backoff_ms: Annotated[int, msgspec.Meta(ge=1, le=60_000)] = 500
    send_backoff_max_ms: Annotated[int, msgspec.Meta(ge=1, le=600_000)] = 30_000
    # Messages waiting to be sent; beyond this a request is told to try again later, so a
    # mail relay that is down cannot make the node's memory grow without bound.
    queue_max_messages: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 10_000
    # Sends in flight at once, so one slow relay conversation does not hold up the rest.
    send_workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    # Messages the development outbox keeps; the oldest go first.
    outbox_max_messages: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1000
    mail_subject_max_chars: Annotated[int, msgspec.Meta(ge=16, le=998)] = 200
    mail_body_max_chars: Annotated[int, msgspec.Meta(ge=256, le=1_000_000)] = 20_000
    # The largest mail the embedded server takes, headers and encoding included.
    mail_message_max_bytes: Annotated[int, msgspec.Meta(ge=4096, le=33_554_432)] = 1_048_576
    # Ten Japanese SMS segments of 67 characters; a passcode SMS needs one.
    sms_body_max_chars: Annotated[int, msgspec.Meta(ge=16, le=1600)] = 670
    voice_text_max_chars: Annotated[int, msgspec.Meta(ge=16, le=4000)] = 500
    # The largest answer read from the SMS provider; Twilio's are about 1 KiB.
    provider_response_max_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1_048_576)] = 65_536

    def __post_init__(self) -> None:
        if not self.smtp_embedded and self.smtp_port == 0:
            raise ValueError("notifier.smtp_port: a mail relay needs its port (0 is embedded only)")
        loopback = self.smtp_host in ("localhost", "::1") or self.smtp_host.startswith("127.")
        if self.smtp_embedded and not loopback:
            # The embedded server holds passcodes in clear: nobody else may reach it.
            raise ValueError("notifier.smtp_host: the embedded mail server listens on loopback")
        if self.send_backoff_max_ms < self.send_backoff_ms:
            raise ValueError("notifier.send_backoff_max_ms must be at least send_backoff_ms")
        twilio = self.sms_provider is SmsProviderKind.TWILIO
        if twilio and not (
            self.sms_account_sid and self.sms_auth_token_file and self.sms_from_number
        ):
            raise ValueError(
                "notifier: sms_provider twilio needs sms_account_sid, sms_auth_token_file "
                "and sms_from_number"
            )


class OAuthClientSettings(_Section, frozen=True):
    """A client of the wallet's authorization server (FLOWS §5: the co-op's my-page)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    # Exact redirect URIs; RFC 6749 §3.1.2 and RFC 9700 §4.1 ask for exact matching.
    redirect_uris: list[str]
    # Public clients (a browser app) hold no secret and must use PKCE; a confidential
    # client names the file that holds its secret.
    client_secret_file: str = ""


def _default_oauth_clients() -> dict[str, OAuthClientSettings]:
    return {
        "mypage": OAuthClientSettings(
            name="組合員マイページ",
            redirect_uris=["http://127.0.0.1:8080/mypage/wallet/callback"],
        )
    }


class IdentitySettings(_Section, frozen=True):
    # argon2id cost (pynacl). The default is libsodium's INTERACTIVE level: 2 passes over
    # 64 MiB, about 65–130 ms per hash on the machines this was built on. MODERATE is
    # 3 passes over 256 MiB. Lowering it weakens every stored password; only tests do.
    argon2_opslimit: Annotated[int, msgspec.Meta(ge=1, le=10)] = 2
    argon2_memlimit_kib: Annotated[int, msgspec.Meta(ge=8, le=4_194_304)] = 65_536
    # Hashes computed at once; each holds `argon2_memlimit_kib` of memory, so this bounds
    # the memory a login storm can take. One per core.
    password_hash_workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2
    # Sign-ins waiting for a hasher; beyond this the node answers "busy, retry" at once,
    # so a storm queues for a bounded time instead of piling up requests.
    password_queue_max: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 256
    # The co-op's rule is 8 or more; NIST 800-63B asks to allow at least 64.
    password_min_chars: Annotated[int, msgspec.Meta(ge=8, le=64)] = 8
    password_max_chars: Annotated[int, msgspec.Meta(ge=64, le=1024)] = 128
    # Member sessions: signed out after this long without a request, and in any case
    # after the absolute limit (NIST 800-63B AAL2: 30 minutes idle, 12 hours in all).
    session_idle_timeout_s: Annotated[int, msgspec.Meta(ge=60, le=86_400)] = 1800
    session_absolute_timeout_s: Annotated[int, msgspec.Meta(ge=300, le=2_592_000)] = 43_200
    # Staff sessions reach every member's account, so they are shorter.
    staff_session_idle_timeout_s: Annotated[int, msgspec.Meta(ge=60, le=86_400)] = 900
    staff_session_absolute_timeout_s: Annotated[int, msgspec.Meta(ge=300, le=86_400)] = 28_800
    # Wrong passwords (or member-number lookups) in a row before the identifier is locked
    # for `lockout_s`; keyed by what was typed, so unknown identifiers lock the same way.
    signin_failures_max: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    lockout_s: Annotated[int, msgspec.Meta(ge=1, le=86_400)] = 900
    # A flow (mail change, password setting, sign-in with MFA) left unfinished this long
    # must be started again.
    flow_ttl_s: Annotated[int, msgspec.Meta(ge=60, le=86_400)] = 1800
    # The same step sent again within this time is the same step (a double click).
    double_submit_window_s: Annotated[int, msgspec.Meta(ge=1, le=120)] = 10
    # OAuth: codes live briefly (RFC 6749 §4.1.2 recommends at most 10 minutes); access
    # tokens for an hour, after which the my-page asks again.
    oauth_code_ttl_s: Annotated[int, msgspec.Meta(ge=10, le=600)] = 300
    oauth_token_ttl_s: Annotated[int, msgspec.Meta(ge=60, le=86_400)] = 3600
    oauth_clients: dict[str, OAuthClientSettings] = msgspec.field(
        default_factory=_default_oauth_clients
    )
    # Family invitations (FLOWS §3 step 5) a member may send in a day, and one address
    # may receive: a family has a few guardians, and each invitation carries the
    # member's name to an address nobody has confirmed, so a loop of grants and revokes
    # must not turn the node into a mailer for someone else's inbox.
    family_invitations_per_member_per_day_max: Annotated[int, msgspec.Meta(ge=1, le=50)] = 5
    family_invitations_per_address_per_day_max: Annotated[int, msgspec.Meta(ge=1, le=20)] = 3
    # The first part of the links in mails (password guide, passcode entry page).
    portal_base_url: Annotated[str, msgspec.Meta(pattern="^https?://[^\\s]+$")] = (
        "http://127.0.0.1:8080"
    )
    # One share (口) of the co-op's capital; the seed's 10口 are 20,000 yen.
    share_unit_yen: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 2000
    # The identity store's LMDB file may grow to this size.
    lmdb_map_size_mib: Annotated[int, msgspec.Meta(ge=16, le=1_048_576)] = 1024
    # The key that seals TOTP secrets and keys CSRF tokens; empty means
    # `<data_dir>/identity-key`, created at first start in development.
    identity_key_file: str = ""
    # Audit entries one page lists.
    audit_page_max: Annotated[int, msgspec.Meta(ge=1, le=PAGE_LINES_MAX)] = 100
    # Machines' API tokens the node keeps, revoked ones included (they name the audit
    # log's entries): a co-op has a few POS integrations and scripts, not thousands.
    api_tokens_max: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 200
    # Staff accounts the node keeps, disabled ones included: every page lists them all.
    staff_accounts_max: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500
    # A token's last-used time is written at most this often, so that a machine calling
    # many times a second does not cost a write each; the list shows minutes anyway.
    api_token_touch_interval_s: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 60
    # Enrolment rows a CSV import sends at once.
    import_concurrency: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    # A call to the identity actor that takes longer than this is answered "unavailable".
    call_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=120)] = 30.0

    def __post_init__(self) -> None:
        if self.session_absolute_timeout_s < self.session_idle_timeout_s:
            raise ValueError("identity.session_absolute_timeout_s is below the idle timeout")
        if self.password_max_chars < self.password_min_chars:
            raise ValueError("identity.password_max_chars is below password_min_chars")


class PortalNotice(_Section, frozen=True):
    """One notice (お知らせ) of the e-money pages and the portal's top page."""

    date: Annotated[str, msgspec.Meta(pattern="^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    title_ja: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    title_en: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    body_ja: Annotated[str, msgspec.Meta(max_length=4000)] = ""
    body_en: Annotated[str, msgspec.Meta(max_length=4000)] = ""


class DocumentOffer(_Section, frozen=True):
    """One document a member may request (資料請求, FLOWS §3 step 5): sent by post, or
    downloaded from `url`. `coops` names the co-ops that offer it; empty means every one.
    """

    document_id: Annotated[str, msgspec.Meta(pattern="^[a-z0-9][a-z0-9-]{0,39}$")]
    title_ja: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    title_en: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    provided_by: Annotated[str, msgspec.Meta(pattern="^(post|download)$")]
    url: Annotated[str, msgspec.Meta(pattern="^(|https?://[^\\s]+)$", max_length=500)] = ""
    coops: Annotated[list[str], msgspec.Meta(max_length=100)] = []


class StoreName(_Section, frozen=True):
    """The name members read for a store (a till's `store` label): the portal's purchase
    and money histories show this, never the label. A store not listed reads as "a co-op
    store"."""

    store: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    name_ja: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    name_en: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


def _default_stores() -> list[StoreName]:
    """The demo co-op's stores, as its tills and the documentation name them."""
    return [
        StoreName(store="demo-cafeteria", name_ja="中央食堂", name_en="Central Cafeteria"),
        StoreName(store="cafe-main", name_ja="中央食堂", name_en="Central Cafeteria"),
        StoreName(store="shop-main", name_ja="生協ショップ", name_en="Co-op Shop"),
        StoreName(store="shop-bookcorner", name_ja="ブックセンター", name_en="Book Center"),
    ]


def _default_documents() -> list[DocumentOffer]:
    return [
        DocumentOffer(
            document_id="kyosai-guide",
            title_ja="学生総合共済のご案内",
            title_en="Student mutual aid (kyosai) guide",
            provided_by="post",
        ),
        DocumentOffer(
            document_id="textbook-guide",
            title_ja="教科書販売のご案内",
            title_en="Textbook sales guide",
            provided_by="download",
            url="https://www.univcoop.or.jp/",
        ),
        DocumentOffer(
            document_id="meal-plan-guide",
            title_ja="ミールプランのご案内",
            title_en="Meal plan guide",
            provided_by="post",
        ),
    ]


def _default_notices() -> list[PortalNotice]:
    return [
        PortalNotice(
            date="2026-04-01",
            title_ja="コンビニチャージはお支払い完了後に反映されます",
            title_en="Convenience-store charges are credited once paid",
            body_ja="お支払い期限（お申し込みから7日）を過ぎたお申し込みは取り消されます。",
            body_en="An application not paid within 7 days is cancelled.",
        ),
        PortalNotice(
            date="2026-03-15",
            title_ja="IC組合員証を紛失したときは",
            title_en="If you lose your IC member card",
            body_ja="電子マネーの「アカウント停止」ですぐに支払いを止められます。"
            "再開は生協店舗の窓口で承ります。",
            body_en="Stop payments at once with “Suspend account”; the co-op counter resumes it.",
        ),
    ]


class PortalSettings(_Section, frozen=True):
    # The language of a page when the member chose none (FLOWS: Japanese first).
    default_lang: Annotated[str, msgspec.Meta(pattern="^(ja|en)$")] = "ja"
    # No page has more fields than this; a bigger form is refused before it is read.
    form_fields_max: Annotated[int, msgspec.Meta(ge=8, le=256)] = 32
    # No page's form is longer than this (the longest, an inquiry, is a few thousand
    # characters of text); a bigger one is refused before it is read.
    form_body_max_bytes: Annotated[int, msgspec.Meta(ge=4096, le=1_048_576)] = 65_536
    # Lines of money history per page (the wallet's own maximum is 100).
    history_page_lines: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20
    # Payments read for the cafeteria calendar and the purchase history of one month; a
    # member eats and shops at most a few times a day, so this covers any real month.
    month_history_lines_max: Annotated[int, msgspec.Meta(ge=10, le=2000)] = 300
    notices: list[PortalNotice] = msgspec.field(default_factory=_default_notices)
    # The home's desk (inquiries, document requests, events, IC card; `member_desk`).
    # Rows of each list a member sees, newest first, and of one staff listing.
    desk_rows_max: Annotated[int, msgspec.Meta(ge=5, le=500)] = 50
    # Inquiries one member may send in a day (Asia/Tokyo): enough for any real question,
    # few enough that a loop cannot bury the staff's queue.
    inquiries_per_day_max: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    inquiry_subject_chars_max: Annotated[int, msgspec.Meta(ge=10, le=200)] = 100
    # A question shorter than this says nothing staff can answer.
    inquiry_body_chars_min: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10
    # A browser posts a Japanese character as nine bytes (%E3%81%82): 1,500 of them with
    # the subject stay under the default http.body_max_bytes (16 KiB).
    inquiry_body_chars_max: Annotated[int, msgspec.Meta(ge=100, le=1500)] = 1000
    # Staff answer in JSON (three bytes a character): 5,000 stay under 16 KiB.
    inquiry_answer_chars_max: Annotated[int, msgspec.Meta(ge=100, le=5000)] = 4000
    # Document requests one member may make in a day; a catalogue has a handful.
    document_requests_per_day_max: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10
    documents: Annotated[list[DocumentOffer], msgspec.Meta(max_length=100)] = msgspec.field(
        default_factory=_default_documents
    )
    # The names of the stores that the histories show (a handful per co-op).
    stores: Annotated[list[StoreName], msgspec.Meta(max_length=500)] = msgspec.field(
        default_factory=_default_stores
    )
    # The most seats one event may have; and how many of the newest events (of every
    # co-op) the event page reads to list the member's co-op's open ones.
    event_capacity_max: Annotated[int, msgspec.Meta(ge=1, le=EVENT_SEATS_MAX)] = 5000
    events_open_max: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    # IC card registrations a member may try in a day: a student has one card, and the
    # bound keeps anyone from probing which card numbers are in use.
    card_attempts_per_day_max: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5


class PaymentsSettings(_Section, frozen=True):
    """Card and convenience-store charges (FLOWS §6)."""

    # The card acquirer's API; empty means the embedded sandbox acquirer, which the node
    # starts on loopback in development only (production must name a real acquirer).
    acquirer_url: Annotated[str, msgspec.Meta(pattern="^(|https?://[^\\s]+)$")] = ""
    # A call to the acquirer that takes longer than this is a failed payment, shown as
    # "try again later"; card networks answer within seconds.
    acquirer_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 10.0
    # The most an acquirer's answer may hold; its JSON answers are a few hundred bytes.
    acquirer_response_max_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1_048_576)] = 65_536
    # How long a page waits for a charge that a first click started (a double click).
    card_wait_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 15.0
    # How long a front crediting a charge holds it: a second notice of the same payment
    # (or the sweep) waits for that front's answer instead of asking the wallet beside it,
    # and takes over after this if that front died. Longer than a wallet call with all its
    # retries (`wallet.call_timeout_s` × (`call_retry_max` + 1) and the backoff, 77 s by
    # default), so that a live front's claim never runs out under it.
    credit_claim_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 120.0
    # How long a second notice of a payment waits for the first one's credit before it is
    # answered "try again" (503, the store network sends it again later).
    credit_wait_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 15.0
    # Days a member has to pay at the store (the co-op's notice says 7).
    konbini_pay_days: Annotated[int, msgspec.Meta(ge=1, le=30)] = 7
    # Convenience-store charges one member may have awaiting payment at once, so that a
    # loop of applications cannot fill the store with numbers nobody pays.
    konbini_pending_max: Annotated[int, msgspec.Meta(ge=1, le=20)] = 3
    # The store network's signing key; empty means `<data_dir>/konbini-webhook-key`,
    # created at first start in development.
    konbini_webhook_key_file: str = ""
    # A notification signed longer ago than this is refused (a replayed one).
    konbini_webhook_tolerance_s: Annotated[int, msgspec.Meta(ge=10, le=3600)] = 300
    # How often expired convenience-store charges are cancelled.
    konbini_sweep_interval_s: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 60.0
    # Charges one sweep expires; the next sweep takes the rest.
    konbini_sweep_batch_max: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1000
    # Charges listed on a member's HOME.
    member_charges_shown_max: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10
    # The charges' LMDB file may grow to this size.
    lmdb_map_size_mib: Annotated[int, msgspec.Meta(ge=16, le=1_048_576)] = 256
    # A call to the payments actor that takes longer than this is answered "unavailable".
    call_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=120)] = 10.0


class ClusterTlsSettings(_Section, frozen=True):
    """Mutual TLS between the hosts of a cluster: the shards' data links and Ray's own.

    Each host holds its certificate and key and the cluster's CA, at these paths on that
    host (`coopnode cluster dev-ca` makes a development set). The node checks them at
    start, gives them to Ray (RAY_USE_TLS and its RAY_TLS_* variables, which `coopnode
    cluster env` prints for `ray start`), and serves and checks the shards' links with
    them. A host's certificate is both a server's and a client's (both ends of a link
    present one) and names the host's address. Empty: no cluster TLS, and every link
    stays on loopback (one host, as `make run`).
    """

    # PEM: the cluster's CA, the only one whose certificates a link accepts. Give the
    # cluster a CA of its own: every certificate it signed may join Ray and the links.
    ca_file: Annotated[str, msgspec.Meta(max_length=4096)] = ""
    # PEM: this host's certificate (then any intermediates) and its key, unencrypted,
    # mode 0600.
    cert_file: Annotated[str, msgspec.Meta(max_length=4096)] = ""
    key_file: Annotated[str, msgspec.Meta(max_length=4096)] = ""

    def __post_init__(self) -> None:
        named = [bool(self.ca_file), bool(self.cert_file), bool(self.key_file)]
        if any(named) and not all(named):
            raise ValueError(
                "cluster.tls.ca_file, cert_file and key_file go together: name all three"
            )

    @property
    def enabled(self) -> bool:
        return bool(self.ca_file)


DiskName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]


class DiskSettings(_Section, frozen=True):
    """A disk of a cluster host: the host declares the Ray resource `disk:<name>` to
    `ray start` and keeps the stores placed on the disk under `data_dir` (an absolute path
    on that host)."""

    name: DiskName
    data_dir: Annotated[str, msgspec.Meta(pattern="^/", max_length=4096)]


class ClusterSettings(_Section, frozen=True):
    """Where the stores live when the node runs on several hosts (one host: leave empty).

    A store is always placed on the host that holds its files: each wallet shard on the
    disk `wallet_shard_disks[index]` names, the registry, identity, payments and notifier
    together on `stores_disk`. Ray places each owning actor by the disk's resource, so
    when Ray restarts one it comes back on its host and finds its files there.
    """

    # The hosts' disks (a co-op federation runs a handful of hosts).
    disks: Annotated[list[DiskSettings], msgspec.Meta(max_length=64)] = []
    # The disk of each wallet shard, by shard index: as many as `wallet.shard_count`.
    wallet_shard_disks: Annotated[list[DiskName], msgspec.Meta(max_length=64)] = []
    # With replicated shards (`replication.replica_count` > 1): per shard, the disk of
    # each replica, all different, on different hosts (in place of wallet_shard_disks).
    wallet_replica_disks: Annotated[
        list[Annotated[list[DiskName], msgspec.Meta(max_length=7)]], msgspec.Meta(max_length=64)
    ] = []
    # The disk of the registry, identity, payments and notifier stores.
    stores_disk: Annotated[str, msgspec.Meta(pattern=r"^([a-z0-9][a-z0-9-]{0,39})?$")] = ""
    # The file of the secret that fronts and shards share on the wallet's data links; on a
    # cluster every host is given the same file (its own data directories differ).
    link_token_file: Annotated[str, msgspec.Meta(max_length=4096)] = ""
    # Mutual TLS between the hosts (the wallet links and Ray's own): see ClusterTlsSettings.
    tls: ClusterTlsSettings = msgspec.field(default_factory=ClusterTlsSettings)

    @property
    def placed(self) -> bool:
        """Whether the stores are placed on named disks (a cluster), not the front's host."""
        return bool(self.disks)

    def disk(self, name: str) -> DiskSettings:
        for disk in self.disks:
            if disk.name == name:
                return disk
        raise KeyError(name)


class BackupSettings(_Section, frozen=True):
    """Backups of every store while the node serves (`coopnode admin backup`) and their
    schedule. Off by default: with no `dir`, the node takes no backup at all."""

    # The directory backups are written under, on every host that holds a store (a
    # shared mount on a cluster, or each host's own disk): `coopnode admin backup NAME`
    # writes `<dir>/NAME`, the schedule `<dir>/scheduled-<UTC time>`. Staff name a
    # backup, never a place: the staff token cannot make the node write anywhere else.
    # Absolute, since the stores' actors run in other working directories; never inside
    # the data directory. Empty: no backups.
    dir: Annotated[str, msgspec.Meta(max_length=4096)] = ""
    # Seconds from the end of one scheduled backup to the start of the next, so two never
    # overlap whatever the interval; 0: no schedule. At most a week: a co-op that backs
    # up less often than that would lose a week of members' payments to one bad disk.
    interval_s: Annotated[float, msgspec.Meta(ge=0, le=604_800)] = 0.0
    # Complete scheduled backups kept; older ones are removed only once a newer one is
    # complete. At least one, so that the schedule never removes its only backup; at
    # most 1,000, since each is a full copy of every store.
    keep: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 7
    # How long one store's copy may take before the backup is given up as failed. LMDB
    # copies at the disk's speed: an hour is tens of GiB on a slow disk, and a copy that
    # takes longer is stuck, not slow.
    copy_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 3600.0

    def __post_init__(self) -> None:
        if self.dir and not Path(self.dir).is_absolute():
            raise ValueError(f"backup.dir must be an absolute path, not {self.dir!r}")
        if self.interval_s and not self.dir:
            raise ValueError("backup.interval_s schedules backups: name backup.dir as well")
        if 0 < self.interval_s < 1:
            raise ValueError("backup.interval_s is at least 1 second (0: no schedule)")


def _default_coops() -> dict[str, CoopRules]:
    return {"demo": CoopRules(name="デモ大学生活協同組合")}


class Settings(_Section, frozen=True):
    node: NodeSettings = msgspec.field(default_factory=NodeSettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    wallet: WalletSettings = msgspec.field(default_factory=WalletSettings)
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    reader: ReaderSettings = msgspec.field(default_factory=ReaderSettings)
    till: TillSettings = msgspec.field(default_factory=TillSettings)
    live: LiveSettings = msgspec.field(default_factory=LiveSettings)
    verification: VerificationSettings = msgspec.field(default_factory=VerificationSettings)
    notifier: NotifierSettings = msgspec.field(default_factory=NotifierSettings)
    identity: IdentitySettings = msgspec.field(default_factory=IdentitySettings)
    portal: PortalSettings = msgspec.field(default_factory=PortalSettings)
    payments: PaymentsSettings = msgspec.field(default_factory=PaymentsSettings)
    cluster: ClusterSettings = msgspec.field(default_factory=ClusterSettings)
    backup: BackupSettings = msgspec.field(default_factory=BackupSettings)
    replication: ReplicationSettings = msgspec.field(default_factory=ReplicationSettings)
    # The co-ops this node serves, by id.
    coops: dict[str, CoopRules] = msgspec.field(default_factory=_default_coops)

    def __post_init__(self) -> None:
        """Relations between bounds of different sections, checked when settings load."""
        wallet = self.wallet
        if wallet.call_timeout_s >= self.http.request_timeout_s:
            # Every change waiting on a slow shard would be answered outcome_unknown.
            raise ValueError(
                f"wallet.call_timeout_s ({wallet.call_timeout_s} s) must be below "
                f"http.request_timeout_s ({self.http.request_timeout_s} s): one call to a "
                "shard has to fit in a request's time"
            )
        if self.payments.credit_claim_s <= wallet.call_with_retries_s:
            # A live front's claim would run out under it and a second front credit beside.
            raise ValueError(
                f"payments.credit_claim_s ({self.payments.credit_claim_s} s) must be above "
                f"a wallet call with every retry ({wallet.call_with_retries_s:.1f} s: "
                "wallet.call_timeout_s × (call_retry_max + 1) and the backoff)"
            )
        self._check_placement()
        if not self.cluster.tls.enabled and not _is_loopback(wallet.link_host):
            # Batches carry card holders' balances and the link token: never in clear.
            raise ValueError(
                f"wallet.link_host is {wallet.link_host!r}, not loopback: a wallet link "
                "between hosts needs cluster.tls (ca_file, cert_file, key_file)"
            )
        self._check_backup_dir()
        self._check_replication()

    def _check_replication(self) -> None:
        """An odd count of replicas (a majority must be unique), and the storage fault only
        where no member's money is at stake."""
        replication = self.replication
        if replication.replica_count % 2 == 0:
            raise ValueError(
                f"replication.replica_count is {replication.replica_count}: it must be odd "
                "(1, 3, 5 or 7), so that two majorities always share a replica"
            )
        fault = replication.storage_fault
        if fault.enabled and self.node.environment is Environment.PRODUCTION:
            raise ValueError(
                "replication.storage_fault delays flushes on purpose, for tests and "
                "benchmarks: it is refused in production"
            )
        if fault.replica >= replication.replica_count:
            raise ValueError(
                f"replication.storage_fault.replica is {fault.replica}, but a shard has "
                f"replicas 0 to {replication.replica_count - 1}"
            )
        if replication.replica_count > 1 and self.backup.dir:
            raise ValueError(
                "backup.dir: backups copy a shard of one replica; a replicated shard is "
                "its own backup (a lost replica is rebuilt from its peers)"
            )
        if replication.replica_count > 1 and self.wallet.transport != "link":
            raise ValueError(
                "replicated shards take batches on their links only (wallet.transport)"
            )

    def _check_backup_dir(self) -> None:
        """Backups and live files stay apart: a backup inside a data directory (the
        front's, or a cluster disk's) would be lost with it, and a data directory inside
        the backups could be pruned."""
        if not self.backup.dir:
            return
        backups = Path(self.backup.dir).resolve()
        for key, data_dir in [
            ("node.data_dir", self.node.data_dir),
            *((f"cluster.disks {disk.name}", disk.data_dir) for disk in self.cluster.disks),
        ]:
            live = Path(data_dir).resolve()
            if backups == live or backups.is_relative_to(live) or live.is_relative_to(backups):
                raise ValueError(
                    f"backup.dir ({backups}) and {key} ({live}) must be apart: "
                    "neither may hold the other"
                )

    def _check_replica_disks(self) -> list[str]:
        """The disks the wallet shards use: one per shard, or one per replica of each
        shard, a shard's replicas each on a disk of its own."""
        cluster, count = self.cluster, self.replication.replica_count
        if count == 1:
            if cluster.wallet_replica_disks:
                raise ValueError(
                    "cluster.wallet_replica_disks names replicas' disks, but "
                    "replication.replica_count is 1: name wallet_shard_disks instead"
                )
            if len(cluster.wallet_shard_disks) != self.wallet.shard_count:
                raise ValueError(
                    f"cluster.wallet_shard_disks names {len(cluster.wallet_shard_disks)} "
                    f"disks for wallet.shard_count = {self.wallet.shard_count} shards: "
                    "one per shard"
                )
            return list(cluster.wallet_shard_disks)
        replicas = cluster.wallet_replica_disks
        if cluster.wallet_shard_disks or len(replicas) != self.wallet.shard_count:
            raise ValueError(
                f"with replication.replica_count = {count}, cluster.wallet_replica_disks "
                f"names the disks of each shard's replicas ({self.wallet.shard_count} lists "
                "of disks), and wallet_shard_disks stays empty"
            )
        for index, disks in enumerate(replicas):
            if len(disks) != count or len(set(disks)) != count:
                raise ValueError(
                    f"cluster.wallet_replica_disks[{index}] must name {count} different "
                    f"disks, one per replica: it names {disks}"
                )
        return [disk for disks in replicas for disk in disks]

    def _check_placement(self) -> None:
        """Every store of a cluster has a disk, and every disk named is declared."""
        cluster = self.cluster
        if not cluster.placed:
            if cluster.wallet_shard_disks or cluster.wallet_replica_disks or cluster.stores_disk:
                raise ValueError(
                    "cluster.wallet_shard_disks and cluster.stores_disk name disks, but "
                    "cluster.disks declares none"
                )
            return
        names = [disk.name for disk in cluster.disks]
        if len(set(names)) != len(names):
            raise ValueError(f"cluster.disks: a disk is declared twice ({names})")
        shard_disks = self._check_replica_disks()
        for name in [*shard_disks, cluster.stores_disk]:
            if name not in names:
                raise ValueError(
                    f"cluster: the disk {name!r} is not declared in cluster.disks ({names})"
                )
        for setting, value in (
            ("cluster.link_token_file", cluster.link_token_file),
            ("node.staff_token_file", self.node.staff_token_file),
            ("payments.konbini_webhook_key_file", self.payments.konbini_webhook_key_file),
            ("verification.passcode_key_file", self.verification.passcode_key_file),
            ("identity.identity_key_file", self.identity.identity_key_file),
        ):
            if not value:
                # Each front has its own data directory: a secret made there would differ
                # from the one the other fronts made.
                raise ValueError(
                    f"{setting} must name a file on a cluster: every front and host is "
                    "given the same secret"
                )

    @property
    def data_path(self) -> Path:
        return Path(self.node.data_dir)

    @property
    def ray_tmp_path(self) -> Path:
        return Path(self.node.ray_tmp_dir) if self.node.ray_tmp_dir else self.data_path / "ray"

    @property
    def konbini_webhook_key_path(self) -> Path:
        if self.payments.konbini_webhook_key_file:
            return Path(self.payments.konbini_webhook_key_file)
        return self.data_path / "konbini-webhook-key"

    @property
    def journal_key_path(self) -> Path:
        if self.wallet.journal_key_file:
            return Path(self.wallet.journal_key_file)
        return self.data_path / "wallet" / "journal-key"

    @property
    def staff_token_path(self) -> Path:
        if self.node.staff_token_file:
            return Path(self.node.staff_token_file)
        return self.data_path / "staff-token"

    @property
    def api_token_path(self) -> Path:
        """Where the admin commands read a machine's API token by default: `api-token`
        beside the staff token, where an operator saves the one made for them."""
        return self.staff_token_path.with_name("api-token")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "node", a host name: another host may reach it.


class SettingsError(Exception):
    """The settings are invalid; the message names the key."""


ENV_PREFIX = "COOPNODE_"
DEFAULT_CONFIG = Path("config/node.toml")


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as error:
        raise SettingsError(f"cannot read settings file {path}: {error.strerror}") from error
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"settings file {path} is not valid TOML: {error}") from error


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "COOPNODE_CONFIG":
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if len(path) < 2 or not all(path):
            raise SettingsError(f"{name}: use COOPNODE_<SECTION>__<KEY>, e.g. COOPNODE_NODE__PORT")
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # A bare word is a string.
        node = layer
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return layer


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    base_file: Path | None = None,
) -> Settings:
    """Build the settings from every layer; raise SettingsError naming a bad key."""
    environ = os.environ if environ is None else environ
    if base_file is None:
        base_file = Path(environ.get("COOPNODE_CONFIG", DEFAULT_CONFIG))
    layers: list[Mapping[str, Any]] = []
    if base_file.exists():
        layers.append(_read_toml(base_file))
    if config_file is not None:
        layers.append(_read_toml(config_file))
    layers.append(_env_layer(environ))
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _merge(merged, layer)
    try:
        return msgspec.convert(merged, Settings)
    except msgspec.ValidationError as error:
        raise SettingsError(f"invalid settings: {error}") from error
