"""Does the accounts office slow the tills? Tap latency with and without the books' work.

One wallet shard actor (the very `WalletShard` class, its group commit and its reading
thread; in this process, without Ray or the network, so that its clock can be set) on
disk with fsync on. First `--day-taps` taps (100,000) are booked on yesterday (JST), so
that there is a whole day to close. Then taps arrive open-loop at `--rate` a second
(1,000), each a `Pay` of its own sent as the link sends it (`apply`), and latency is
measured from when a tap was due to when its commit answered (so a stall counts for
every tap that waited behind it). The run alternates phases of `--phase-s` seconds:

    quiet   taps only
    books   taps while the accounts office works: the first closes yesterday (its
            figures read from the journal, checked, kept) and builds the unused-balance
            report as of yesterday's 24:00 (every entry since the first); the later
            ones read the day's figures again and build the report again; a phase lasts
            at least `--phase-s` and until that work is done

and prints the taps' p50/p99/max in the quiet phases and of the taps due while the
books' work ran, and how long the closing and each report took. The books' reads run in
the shard's books reader process, in chunks (`wallet.books_read_chunk_entries`); the
commits run on the shard's event loop.

Run: .venv/bin/python -m benchmarks.books_close [--day-taps 100000] [--rate 1000]
     [--phase-s 15] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec

from coopnode.actors.kernel.clock import system_ms
from coopnode.actors.wallet.messages import ClosingReply, PurseTotalsReply
from coopnode.actors.wallet.shard import WalletShard, reply_decoder
from coopnode.domain.books import day_of_ms, day_window_ms
from coopnode.domain.messages import Booked, OpenWallet, Pay
from coopnode.domain.money import Purse, TillKind
from coopnode.settings import NodeSettings, Settings, WalletSettings

MEMBERS = 2_000
PRELOAD_BATCH_OPS = 1_000
STORES = ("north", "south", "shop", "books")
_batch_encoder = msgspec.msgpack.Encoder()


class _Clock:
    """The shard's clock: fixed while yesterday is booked, then the machine's."""

    def __init__(self) -> None:
        self.fixed_ms = 0

    def __call__(self) -> int:
        return self.fixed_ms or system_ms()


def _member(index: int) -> str:
    return f"2030{index:08d}"


def _tap(number: int, rng: random.Random) -> Pay:
    store = STORES[number % len(STORES)]
    return Pay(
        key=f"{store}-till:{number}",
        member_no=_member(rng.randrange(MEMBERS)),
        amount_yen=rng.randrange(100, 600),
        till_kind=TillKind.SHOP,
        store=store,
        till_id=f"{store}-{number % 8}",
    )


def _preload(shard: WalletShard, clock: _Clock, day_taps: int, rng: random.Random) -> int:
    """Enrol the members two days ago, and book `day_taps` taps through yesterday."""
    today = day_of_ms(system_ms())
    yesterday_start, _ = day_window_ms(today - timedelta(days=1))
    clock.fixed_ms = yesterday_start - 3_600_000
    for first in range(0, MEMBERS, PRELOAD_BATCH_OPS):
        shard._store.apply_batch(
            [
                OpenWallet(
                    key="enrol",
                    member_no=_member(index),
                    coop="demo",
                    deposits={Purse.BASE: 60_000, Purse.CAFETERIA: 60_000},
                )
                for index in range(first, min(first + PRELOAD_BATCH_OPS, MEMBERS))
            ]
        )
    batches = max(1, day_taps // PRELOAD_BATCH_OPS)
    for batch in range(batches):
        # Spread over the day from 07:00 to 21:00, so every hour has sales.
        clock.fixed_ms = yesterday_start + 7 * 3_600_000 + batch * (14 * 3_600_000 // batches)
        taps = [_tap(batch * PRELOAD_BATCH_OPS + i, rng) for i in range(PRELOAD_BATCH_OPS)]
        for result in shard._store.apply_batch(taps):
            if not isinstance(result, Booked):
                raise RuntimeError(f"a preloaded tap was refused: {result}")
    clock.fixed_ms = 0
    return batches * PRELOAD_BATCH_OPS


async def _load(
    shard: WalletShard,
    rate: int,
    seconds: float,
    first: int,
    books_pending: Callable[[], bool] = lambda: False,
) -> list[tuple[float, float]]:
    """Taps at `rate` a second for `seconds`, and on while `books_pending()`, open loop;
    each tap's due time (perf_counter) and latency in ms."""
    rng = random.Random(first)
    latencies: list[tuple[float, float]] = []
    pending: set[asyncio.Task[None]] = set()

    async def one(due: float, number: int) -> None:
        raw = await shard.apply(_batch_encoder.encode([_tap(number, rng)]))
        latencies.append((due, (time.perf_counter() - due) * 1000))
        [result] = reply_decoder.decode(raw).results
        if not isinstance(result, Booked):
            raise RuntimeError(f"a tap was refused: {result}")

    started = time.perf_counter()
    total = int(rate * seconds)
    sent = 0
    while sent < total or books_pending():
        due_now = int((time.perf_counter() - started) * rate) + 1
        if not books_pending():
            due_now = min(total, due_now)
        while sent < due_now:
            task = asyncio.get_running_loop().create_task(one(started + sent / rate, first + sent))
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
        await asyncio.sleep(0.001)
    await asyncio.gather(*pending)
    return latencies


async def _books(shard: WalletShard, figures: dict[str, Any]) -> tuple[float, float]:
    """The accountant's work, once: close yesterday (the first time; afterwards read its
    figures from the journal again, as the closing does) and build the unused-balance
    report as of its 24:00. When it started and ended (perf_counter)."""
    yesterday = day_of_ms(system_ms()) - timedelta(days=1)
    _, end_ms = day_window_ms(yesterday)
    started = time.perf_counter()
    if "close_s" not in figures:
        reply = msgspec.msgpack.decode(
            await shard.close_day(yesterday.isoformat(), "bench"), type=ClosingReply
        )
        figures["close_s"] = round(time.perf_counter() - started, 3)
        if reply.closing is None:
            raise RuntimeError(f"the day did not close: {reply.refused} {reply.problems}")
        figures["closed_entries"] = reply.closing.sums.entries
    else:
        read = time.perf_counter()
        await shard._day_sums(yesterday)
        figures.setdefault("day_read_s", []).append(round(time.perf_counter() - read, 3))
    report_started = time.perf_counter()
    report = msgspec.msgpack.decode(await shard.purse_totals(end_ms), type=PurseTotalsReply)
    figures.setdefault("report_s", []).append(round(time.perf_counter() - report_started, 3))
    figures["report_entries"] = report.entries
    return started, time.perf_counter()


def _running(work: asyncio.Task[tuple[float, float]]) -> bool:
    return not work.done()


def _percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def at(fraction: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 2)

    return {
        "taps": len(ordered),
        "p50_ms": at(0.50),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1], 2),
    }


async def _run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    settings = Settings(node=NodeSettings(data_dir=str(data_dir)), wallet=WalletSettings())
    clock = _Clock()
    shard = WalletShard(0, msgspec.json.encode(settings), "bench", clock_ms=clock)
    try:
        preloaded = _preload(shard, clock, args.day_taps, random.Random(7))
        quiet: list[float] = []
        busy: list[float] = []
        figures: dict[str, Any] = {}
        sent = 0
        for _ in range(args.rounds):
            taps = await _load(shard, args.rate, args.phase_s, 10_000_000 + sent)
            quiet += [latency for _, latency in taps]
            sent += len(taps)
            work = asyncio.get_running_loop().create_task(_books(shard, figures))
            taps = await _load(
                shard, args.rate, args.phase_s, 10_000_000 + sent, functools.partial(_running, work)
            )
            began, ended = await work
            # The taps due while the accountant's work ran, and only those.
            busy += [latency for due, latency in taps if began <= due <= ended]
            sent += len(taps)
        return {
            "day_taps": preloaded,
            "rate_per_s": args.rate,
            "phase_s": args.phase_s,
            "rounds": args.rounds,
            "chunk_entries": settings.wallet.books_read_chunk_entries,
            "quiet": _percentiles(quiet),
            "books": _percentiles(busy),
            **figures,
        }
    finally:
        shard.close_books()
        shard._store.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--day-taps", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1_000)
    parser.add_argument("--phase-s", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="cnbooks", dir="/tmp"))
    try:
        result = asyncio.run(_run(args, data_dir))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    quiet, books = result["quiet"], result["books"]
    print(
        f"books_close: {result['rate_per_s']} taps/s, a day of {result['day_taps']:,} taps; "
        f"tap p99 {quiet['p99_ms']} ms quiet, {books['p99_ms']} ms while closing the day "
        f"({result['close_s']} s) and building the unused-balance report "
        f"({result['report_s'][0]} s over {result['report_entries']:,} entries)"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
