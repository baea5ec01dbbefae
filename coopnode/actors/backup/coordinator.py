"""The backup actor: one per cluster, it takes backups and runs their schedule.

A backup asks each store's owner (`BackupPlan`) to copy its files on its own host
(`backup_to`, the kernel's `copies`), the stores that record what another did first and
the wallet's shards last, each group at once; then it writes the manifest, last and
atomically. One backup runs at a time: staff asking while one runs are told so, and the
schedule waits its turn.

Exactly one schedule runs per cluster because exactly one backup actor does: it is a
named Ray actor that every front creates with `get_if_exists`, so a second front finds
the first one's instead of starting its own, and Ray restarts it (and with it the
schedule, which reads its pace back from the newest manifest) when its process dies.

`Backups` is the work, in plain threads and calls to a `Copier`; `BackupActor` is the Ray
shell around it, async so that `status` answers while a backup runs on its thread.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import ray

from coopnode import __version__
from coopnode.actors.backup.manifest import write_manifest
from coopnode.actors.backup.messages import (
    MANIFEST_FORMAT,
    BackupAnswer,
    BackupKind,
    BackupManifest,
    BackupPlan,
    BackupRefused,
    BackupState,
    BackupStatus,
    RefusalReason,
    StartBackup,
)
from coopnode.actors.backup.schedule import (
    REMOVING_PREFIX,
    SCHEDULED_PREFIX,
    next_due_ms,
    prune,
    scheduled_dir,
)
from coopnode.actors.kernel.clock import ClockMs, system_ms
from coopnode.actors.kernel.copies import DIRECTORY_MODE, CopyRefused, StoreCopy
from coopnode.actors.kernel.placement import stores_home
from coopnode.actors.kernel.ray_calls import RAY_NAMESPACE, named_actor, settings_json
from coopnode.logs import configure_logging, get_logger
from coopnode.settings import Settings

log = get_logger(__name__)

BACKUP_ACTOR_NAME = "backup"
# Backups the actor remembers for `status`, the newest: staff poll the one they started,
# and a few dozen cover every backup of a busy day.
STATES_KEPT_MAX = 32
_copy_decoder = msgspec.msgpack.Decoder(StoreCopy)
_start_decoder = msgspec.msgpack.Decoder(StartBackup)
_plan_decoder = msgspec.msgpack.Decoder(BackupPlan)
_encoder = msgspec.msgpack.Encoder()

# Copies the stores whose owners are named into a backup directory, within a time.
Copier = Callable[[Sequence[str], Path, float], list[StoreCopy]]


def new_backup_id(now_ms: int) -> str:
    """The UTC time to the millisecond, then a random tail: ids sort by age."""
    moment = datetime.fromtimestamp(now_ms / 1000, UTC)
    return f"{moment:%Y%m%dT%H%M%S}{now_ms % 1000:03d}Z-{secrets.token_hex(3)}"


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def ray_copier(names: Sequence[str], target: Path, timeout_s: float) -> list[StoreCopy]:
    """Ask each named store actor, on its own host, to copy its files; all at once. Each
    copies from the data directory it was given, its host's."""
    actors = [ray.get_actor(name, namespace=RAY_NAMESPACE) for name in names]
    refs = [actor.backup_to.remote(str(target)) for actor in actors]
    answers: list[bytes] = ray.get(refs, timeout=timeout_s)
    return [_copy_decoder.decode(raw) for raw in answers]


def _why(error: BaseException) -> str:
    """A sentence for staff: what the store's owner raised, not Ray's wrapping of it."""
    cause = getattr(error, "cause", None) or error
    return f"{type(cause).__name__}: {cause}"


def _refused(reason: RefusalReason, message: str) -> BackupAnswer:
    return BackupAnswer(refused=BackupRefused(reason=reason, message=message))


class Backups:
    """The node's backups: taken one at a time, remembered for `status`, and scheduled."""

    def __init__(
        self, settings: Settings, plan: BackupPlan, copier: Copier, clock: ClockMs = system_ms
    ) -> None:
        self._settings = settings.backup
        self._data_dir = settings.data_path.resolve()
        self._shard_count = settings.wallet.shard_count
        self._plan = plan
        self._copier = copier
        self._clock = clock
        self._one_at_a_time = threading.Lock()
        self._states: dict[str, BackupStatus] = {}
        self._states_lock = threading.Lock()
        self._last_attempt_ms: int | None = None
        self._stopping = threading.Event()

    # Staff --------------------------------------------------------------------------------

    def start(self, request: StartBackup) -> BackupAnswer:
        """Begin a backup into the directory staff named, and answer at once; the copies
        run on a thread of their own."""
        if not self._settings.dir:
            return _refused(RefusalReason.BACKUPS_OFF, "backups are off: set backup.dir")
        if not self._one_at_a_time.acquire(blocking=False):
            return _refused(
                RefusalReason.BACKUP_RUNNING, "a backup is running; ask again once it finished"
            )
        try:
            target = self._staff_target(request.dir)
            now_ms = self._clock()
            status = self._begin(BackupKind.STAFF, new_backup_id(now_ms), now_ms, target)
        except (CopyRefused, OSError, ValueError) as error:  # ValueError: a NUL in the path.
            self._one_at_a_time.release()
            return _refused(RefusalReason.TARGET_REFUSED, str(error))
        threading.Thread(
            target=self._take_then_release, args=(status, target), name="backup", daemon=True
        ).start()
        return BackupAnswer(status=status)

    def _take_then_release(self, status: BackupStatus, target: Path) -> None:
        try:
            self._take(status, target)
        finally:
            self._one_at_a_time.release()

    def status(self, backup_id: str) -> BackupAnswer:
        with self._states_lock:
            found = self._states.get(backup_id)
        if found is None:
            return _refused(
                RefusalReason.UNKNOWN_BACKUP,
                f"no backup {backup_id} is known here (the backup actor keeps the last "
                f"{STATES_KEPT_MAX}, and forgets them when it restarts)",
            )
        return BackupAnswer(status=found)

    def _staff_target(self, requested: str) -> Path:
        """Where a staff backup goes: under `backup.dir`, outside the schedule's names and
        the live data, and new or empty."""
        root = Path(self._settings.dir).resolve()
        given = Path(requested)
        target = (given if given.is_absolute() else root / given).resolve()
        if target == root or not target.is_relative_to(root):
            raise CopyRefused(f"{requested} is not under backup.dir ({root}): backups go there")
        if target.relative_to(root).parts[0].startswith((SCHEDULED_PREFIX, REMOVING_PREFIX)):
            raise CopyRefused(f"names that begin {SCHEDULED_PREFIX!r} are the schedule's")
        if target == self._data_dir or target.is_relative_to(self._data_dir):
            raise CopyRefused(f"{target} is inside the live data directory {self._data_dir}")
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise CopyRefused(f"{target} exists and is not empty; a backup writes over nothing")
        return target

    # Taking a backup ------------------------------------------------------------------------

    def _begin(self, kind: BackupKind, backup_id: str, now_ms: int, target: Path) -> BackupStatus:
        target.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        status = BackupStatus(
            backup_id=backup_id,
            kind=kind,
            dir=str(target),
            state=BackupState.RUNNING,
            started_at_ms=now_ms,
        )
        self._remember(status)
        log.info("backup started", backup_id=backup_id, kind=kind.value, dir=str(target))
        return status

    def _take(self, status: BackupStatus, target: Path) -> BackupStatus:
        """Copy every store in the plan's order, then write the manifest."""
        try:
            copies: list[StoreCopy] = []
            for names in (self._plan.first, self._plan.then):
                copies += self._copier(names, target, self._settings.copy_timeout_s)
            stores = [copy.store for copy in copies]
            if len(set(stores)) != len(self._plan.first) + len(self._plan.then):
                raise RuntimeError(f"the stores' owners answered {stores}, not one copy each")
            finished_ms = self._clock()
            manifest = BackupManifest(
                format=MANIFEST_FORMAT,
                backup_id=status.backup_id,
                kind=status.kind,
                started_at=rfc3339(status.started_at_ms),
                started_at_ms=status.started_at_ms,
                finished_at_ms=finished_ms,
                node_version=__version__,
                shard_count=self._shard_count,
                stores=copies,
            )
            write_manifest(target, manifest)
        except Exception as error:  # A copy refused or cut short, a full disk, a lost actor:
            # the backup failed, the node did not; the directory stays without a manifest.
            log.error("backup failed", backup_id=status.backup_id, error=_why(error))
            done = msgspec.structs.replace(
                status, state=BackupState.FAILED, finished_at_ms=self._clock(), message=_why(error)
            )
        else:
            log.info("backup complete", backup_id=status.backup_id, stores=len(copies))
            done = msgspec.structs.replace(
                status, state=BackupState.COMPLETE, finished_at_ms=finished_ms, manifest=manifest
            )
        self._remember(done)
        return done

    def _remember(self, status: BackupStatus) -> None:
        with self._states_lock:
            self._states.pop(status.backup_id, None)
            self._states[status.backup_id] = status
            while len(self._states) > STATES_KEPT_MAX:
                del self._states[next(iter(self._states))]

    # The schedule ---------------------------------------------------------------------------

    def scheduled_once(self) -> BackupStatus:
        """Take one scheduled backup (after any staff backup running) and, once it is
        complete, remove what the schedule no longer keeps."""
        root = Path(self._settings.dir)
        with self._one_at_a_time:
            now_ms = self._clock()
            self._last_attempt_ms = now_ms
            backup_id = new_backup_id(now_ms)
            target = scheduled_dir(root, backup_id)
            done = self._take(self._begin(BackupKind.SCHEDULED, backup_id, now_ms, target), target)
            if done.state is BackupState.COMPLETE:
                removed = prune(root, self._settings.keep, target)
                log.info("old backups removed", removed=[path.name for path in removed])
            self._last_attempt_ms = self._clock()
        return done

    def run_schedule(self) -> None:
        """Take a scheduled backup whenever one is due, until `stop`."""
        root = Path(self._settings.dir)
        while True:
            try:
                due_ms = next_due_ms(root, self._settings.interval_s, self._last_attempt_ms)
            except OSError:  # The directory cannot be read now: look again an interval on.
                log.exception("scheduled backups: backup.dir cannot be read")
                due_ms = self._clock() + round(self._settings.interval_s * 1000)
            if self._stopping.wait(max(0.0, (due_ms - self._clock()) / 1000)):
                return
            try:
                self.scheduled_once()
            except Exception:  # A backup that could not even begin (the disk, the
                # directory): the next is tried after the interval, never in a tight loop.
                log.exception("scheduled backup failed")
                self._last_attempt_ms = self._clock()

    def stop(self) -> None:
        self._stopping.set()


class BackupActor:
    """The Ray actor. Undecorated, so Ray pickles the class by reference to this module."""

    def __init__(self, settings_json: bytes, plan: bytes) -> None:
        settings = msgspec.json.decode(settings_json, type=Settings)
        configure_logging(settings.log)
        self._backups = Backups(settings, _plan_decoder.decode(plan), ray_copier)
        self._schedule: threading.Thread | None = None
        if settings.backup.dir and settings.backup.interval_s:
            # The actor's own thread: it lives as long as the actor's process, and a
            # restarted actor starts it again.
            self._schedule = threading.Thread(
                target=self._backups.run_schedule, name="backup-schedule", daemon=True
            )
            self._schedule.start()
        log.info("backup actor ready", scheduled=self._schedule is not None)

    async def start(self, request: bytes) -> bytes:
        return _encoder.encode(self._backups.start(_start_decoder.decode(request)))

    async def status(self, backup_id: str) -> bytes:
        return _encoder.encode(self._backups.status(backup_id))

    async def ping(self) -> int:
        return os.getpid()


def create_backup_actor(settings: Settings, plan: BackupPlan) -> Any:
    """Create (or find, when joining a running cluster) the one backup actor; it waits on
    the stores' copies, not on the CPU, and holds no CPU slot. On a cluster it runs on the
    host of the registry, identity and payments stores (`cluster.stores_disk`), so that
    the manifest is written beside their copies."""
    home = stores_home(settings)
    return named_actor(
        BackupActor,
        BACKUP_ACTOR_NAME,
        settings,
        settings_json(home.settings),
        _encoder.encode(plan),
        resources=home.resources,
    )
