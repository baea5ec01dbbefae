"""The journal's hash chain and sealed days (`actors/wallet/chain.py`) on real files."""

from __future__ import annotations

from pathlib import Path

import lmdb
import msgspec
import pytest
from nacl.signing import SigningKey

from coopnode.actors.wallet import chain
from coopnode.actors.wallet.store import WalletStore
from coopnode.domain.errors import InvariantViolation
from coopnode.domain.messages import Operation
from tests.actors.test_wallet_store import MEMBER, Clock, enrol, open_store, shop, tokyo_ms

KEY = SigningKey(bytes(range(32)))
DAY_ONE = "2026-12-07"


def chain_links(store: WalletStore) -> list[bytes]:
    with store.env.begin() as txn:
        links = store.env.open_db(b"chain", txn=txn)
        return [bytes(value) for _, value in txn.cursor(db=links)]


def stored_record(store: WalletStore, seq: int) -> bytes:
    with store.env.begin() as txn:
        journal = store.env.open_db(b"journal", txn=txn)
        return bytes(txn.get(seq.to_bytes(8, "big"), db=journal))


def journal_record(path: Path, seq: int) -> bytes:
    env = lmdb.open(str(path), readonly=True, max_dbs=16)
    try:
        with env.begin() as txn:
            return bytes(
                txn.get(seq.to_bytes(8, "big"), db=env.open_db(b"journal", txn=txn)) or b""
            )
    finally:
        env.close()


def two_days(path: Path) -> tuple[WalletStore, Clock]:
    """Entries 1-3 on December 7th (JST), 4-5 on the 8th; the clock then on the 9th."""
    clock = Clock(tokyo_ms(2026, 12, 7, 9))
    store = open_store(path, clock)
    store.apply_batch([enrol(), shop(500, "a")])
    clock.now_ms = tokyo_ms(2026, 12, 7, 23)
    store.apply_batch([shop(400, "b")])
    clock.now_ms = tokyo_ms(2026, 12, 8, 0) + 1
    store.apply_batch([shop(300, "c"), shop(200, "d")])
    clock.now_ms = tokyo_ms(2026, 12, 9, 12)
    return store, clock


def test_each_entry_is_linked_to_the_one_before_in_its_commit(tmp_path: Path) -> None:
    store, _ = two_days(tmp_path / "shard")
    links = chain_links(store)
    assert len(links) == 5 and store.chain_head == links[-1]
    previous = chain.genesis(0)
    for seq, stored in enumerate(links, start=1):
        previous = chain.link(previous, stored_record(store, seq))
        assert stored == previous
    store.close()


def test_replicas_applying_the_same_operations_compute_the_same_chain(tmp_path: Path) -> None:
    """The chain depends on the entries only, not on how they were grouped into commits,
    where the files are, or how often the store was reopened."""
    first, _ = two_days(tmp_path / "a")
    clock = Clock(tokyo_ms(2026, 12, 7, 9))
    second = open_store(tmp_path / "b", clock)
    second.apply_batch([enrol()])
    second.apply_batch([shop(500, "a")])
    second.close()
    second = open_store(tmp_path / "b", clock)
    clock.now_ms = tokyo_ms(2026, 12, 7, 23)
    second.apply_batch([shop(400, "b")])
    clock.now_ms = tokyo_ms(2026, 12, 8, 0) + 1
    second.apply_batch([shop(300, "c")])
    second.apply_batch([shop(200, "d")])
    assert chain_links(first) == chain_links(second)
    clock.now_ms = tokyo_ms(2026, 12, 9, 12)
    assert first.seal_day(DAY_ONE, KEY) == second.seal_day(DAY_ONE, KEY)
    first.close()
    second.close()


def test_a_day_is_sealed_once_it_is_over_at_its_last_entry(tmp_path: Path) -> None:
    store, clock = two_days(tmp_path / "shard")
    clock.now_ms = tokyo_ms(2026, 12, 8, 0) - 1
    with pytest.raises(chain.SealRefused, match="not over"):
        store.seal_day(DAY_ONE, KEY)
    clock.now_ms = tokyo_ms(2026, 12, 8, 0)
    # A grace after the day's end (how far the clock may step back) is waited out too.
    with pytest.raises(chain.SealRefused, match="not over"):
        store.seal_day(DAY_ONE, KEY, grace_ms=600_000)
    seal = store.seal_day(DAY_ONE, KEY)
    assert seal.last_seq == 3 and seal.root_hex == chain_links(store)[2].hex()
    KEY.verify_key.verify(
        chain.seal_message(0, DAY_ONE, 3, bytes.fromhex(seal.root_hex)),
        bytes.fromhex(seal.signature_hex),
    )
    # Idempotent: sealing again, even with another key, answers the first seal.
    assert store.seal_day(DAY_ONE, SigningKey.generate()) == seal
    # A day without entries is sealed at the last entry before its end.
    before = store.seal_day("2026-12-06", KEY)
    assert before.last_seq == 0 and before.root_hex == chain.genesis(0).hex()
    assert [seal.day for seal in store.seals()] == ["2026-12-06", DAY_ONE]
    report = store.verify_chain()
    assert report.problems == [] and (report.entries, report.seals) == (5, 2)
    store.close()


def test_one_changed_byte_in_the_lmdb_file_is_found_and_named(tmp_path: Path) -> None:
    path = tmp_path / "shard"
    store, _ = two_days(path)
    store.seal_day(DAY_ONE, KEY)
    store.seal_day("2026-12-08", KEY)
    store.close()
    # A compacted copy holds each record once (the live files keep older copies of
    # rewritten pages until LMDB reuses them); the shard's files are then that copy.
    compacted = tmp_path / "compacted"
    compacted.mkdir()
    env = lmdb.open(str(path), max_dbs=16)
    env.copy(str(compacted), compact=True)
    env.close()
    (compacted / "data.mdb").replace(path / "data.mdb")
    record = journal_record(path, 2)  # The payment "a" of December 7th.
    data = (path / "data.mdb").read_bytes()
    assert data.count(record) == 1
    at = data.index(record) + record.index(b"\xa1a") + 1  # The key's one character.
    tampered = data[:at] + b"z" + data[at + 1 :]
    (path / "data.mdb").write_bytes(tampered)

    report = chain.verify_files(path, 0, KEY.verify_key)

    assert [(p.shard_index, p.seq, p.day) for p in report.problems] == [(0, 2, DAY_ONE)]
    assert "do not give its chain link" in report.problems[0].problem
    assert report.entries == 5


def test_relinking_a_changed_entry_without_the_key_breaks_the_days_seal(tmp_path: Path) -> None:
    """Whoever changes an entry and recomputes every link after it still cannot sign."""
    path = tmp_path / "shard"
    store, _ = two_days(path)
    store.seal_day(DAY_ONE, KEY)
    store.close()
    env = lmdb.open(str(path), max_dbs=16, map_size=64 << 20)
    with env.begin(write=True) as txn:
        journal = env.open_db(b"journal", txn=txn)
        links = env.open_db(b"chain", txn=txn)
        record = bytes(txn.get((2).to_bytes(8, "big"), db=journal) or b"")
        txn.put((2).to_bytes(8, "big"), record.replace(b"\xa1a", b"\xa1z"), db=journal)
        head = chain.genesis(0)
        for key, raw in txn.cursor(db=journal):
            head = chain.link(head, bytes(raw))
            txn.put(key, head, db=links)
    env.close()

    report = chain.verify_files(path, 0, KEY.verify_key)

    assert [(p.seq, p.day) for p in report.problems] == [(3, DAY_ONE)]
    assert "signed root is not the chain's link" in report.problems[0].problem


def test_a_seal_by_another_key_is_refused_against_the_nodes_key(tmp_path: Path) -> None:
    path = tmp_path / "shard"
    store, _ = two_days(path)
    store.seal_day(DAY_ONE, SigningKey.generate())
    store.close()
    [problem] = chain.verify_files(path, 0, KEY.verify_key).problems
    assert (problem.seq, problem.day) == (3, DAY_ONE)
    assert "not signed by the journal key" in problem.problem


def test_a_changed_last_entry_stops_the_shard_on_open(tmp_path: Path) -> None:
    path = tmp_path / "shard"
    store, _ = two_days(path)
    store.close()
    env = lmdb.open(str(path), max_dbs=16, map_size=64 << 20)
    with env.begin(write=True) as txn:
        journal = env.open_db(b"journal", txn=txn)
        record = bytes(txn.get((5).to_bytes(8, "big"), db=journal) or b"")
        txn.put((5).to_bytes(8, "big"), record.replace(b"\xa1d", b"\xa1e"), db=journal)
    env.close()
    with pytest.raises(InvariantViolation, match="entry 5 does not match its chain link"):
        open_store(path)


def test_files_written_before_the_chain_get_their_links_on_open(tmp_path: Path) -> None:
    path = tmp_path / "shard"
    store, _ = two_days(path)
    links = chain_links(store)
    store.close()
    env = lmdb.open(str(path), max_dbs=16, map_size=64 << 20)
    with env.begin(write=True) as txn:
        txn.drop(env.open_db(b"chain", txn=txn), delete=False)
    env.close()
    again = open_store(path)
    assert chain_links(again) == links
    again.apply_batch([shop(100, "e", member_no=MEMBER)])
    assert chain_links(again)[-1] == chain.link(links[-1], stored_record(again, 6))
    again.close()


def test_a_seal_record_changed_on_disk_is_named_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "shard"
    store, _ = two_days(path)
    seal = store.seal_day(DAY_ONE, KEY)
    store.close()
    env = lmdb.open(str(path), max_dbs=16, map_size=64 << 20)
    with env.begin(write=True) as txn:
        seals = env.open_db(b"seals", txn=txn)
        broken = msgspec.structs.replace(seal, root_hex="not hex")
        txn.put(DAY_ONE.encode(), msgspec.msgpack.encode(broken), db=seals)
        moved = msgspec.structs.replace(seal)
        txn.put(b"2026-12-08", msgspec.msgpack.encode(moved), db=seals)
    env.close()
    problems = chain.verify_files(path, 0, KEY.verify_key).problems
    assert [(p.seq, p.day) for p in problems] == [(3, DAY_ONE), (0, "2026-12-08")]
    assert "does not decode" in problems[0].problem
    assert "another day's" in problems[1].problem


def test_replicas_applying_at_the_primarys_time_keep_the_same_chain(tmp_path: Path) -> None:
    """Replicas apply each log entry at the primary's time (`now_ms`), whatever their own
    clocks say: their entries, so their chains and their seals, are the same."""
    stores = [
        open_store(tmp_path / name, Clock(tokyo_ms(2026, 12, 9, hour)))
        for name, hour in (("a", 9), ("b", 13))
    ]
    log: list[tuple[list[Operation], int, int]] = [
        ([enrol()], tokyo_ms(2026, 12, 7, 9), 1),
        ([shop(500, "a"), shop(400, "b")], tokyo_ms(2026, 12, 7, 12), 2),
        ([shop(300, "c")], tokyo_ms(2026, 12, 8, 9), 3),
    ]
    for store in stores:
        for ops, at_ms, op in log:
            store.apply_batch(ops, now_ms=at_ms, replica_op=op)
    assert chain_links(stores[0]) == chain_links(stores[1])
    assert stores[0].seal_day(DAY_ONE, KEY) == stores[1].seal_day(DAY_ONE, KEY)
    for store in stores:
        store.close()
