"""`coopnode audit verify` on a data directory's shard files: intact, then one byte off."""

from __future__ import annotations

from pathlib import Path

import lmdb
import pytest

from coopnode.actors.wallet.chain import create_journal_key, read_journal_key
from coopnode.domain.sharding import shard_of
from coopnode.node.cli import main
from tests.actors.test_journal_chain import DAY_ONE, journal_record
from tests.actors.test_wallet_store import Clock, enrol, open_store, shop, tokyo_ms

# A member of each of two shards.
MEMBERS = {
    shard_of(member_no, 2): member_no
    for member_no in ("202600000017", "202600000025", "202600000033", "202600000041")
}


def a_data_dir(data_dir: Path) -> None:
    """Two shards' files (shard 1 alone would do; two prove each is named), day one sealed."""
    create_journal_key(data_dir / "wallet" / "journal-key")
    key = read_journal_key(data_dir / "wallet" / "journal-key")
    for index in (0, 1):
        clock = Clock(tokyo_ms(2026, 12, 7, 9))
        path = data_dir / "wallet" / f"shard-{index:03d}"
        store = open_store(path, clock, shard_index=index, shard_count=2)
        member = MEMBERS[index]
        store.apply_batch([enrol(member), shop(500, "a", member), shop(400, "b", member)])
        clock.now_ms = tokyo_ms(2026, 12, 8, 12)
        store.apply_batch([shop(300, "c", member)])
        store.seal_day(DAY_ONE, key)
        # Compacted, so that each record is in the file once (see test_journal_chain).
        compacted = data_dir / "compacted"
        compacted.mkdir()
        store.env.copy(str(compacted), compact=True)
        store.close()
        (compacted / "data.mdb").replace(store.path / "data.mdb")
        compacted.rmdir()


def test_verify_says_intact_then_names_the_changed_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    a_data_dir(data_dir)
    assert main(["audit", "verify", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "shard 0: 4 entries, 1 sealed days: intact" in out
    assert "shard 1: 4 entries, 1 sealed days: intact" in out

    shard_file = data_dir / "wallet" / "shard-001" / "data.mdb"
    record = journal_record(shard_file.parent, 3)  # Payment "b", December 7th.
    data = shard_file.read_bytes()
    assert data.count(record) == 1
    at = data.index(record) + record.index(b"\xa1b") + 1
    shard_file.write_bytes(data[:at] + b"x" + data[at + 1 :])

    assert main(["audit", "verify", "--data-dir", str(data_dir)]) == 1
    out = capsys.readouterr().out
    assert "shard 0: 4 entries, 1 sealed days: intact" in out
    assert "shard 1: 4 entries, 1 sealed days: BROKEN" in out
    assert f"shard 1 seq 3 day {DAY_ONE}: the entry's bytes do not give its chain link" in out


def test_verify_checks_seals_against_the_given_public_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    a_data_dir(data_dir)
    other = "ab" * 32
    (data_dir / "wallet" / "journal-key").unlink()
    # Another key than the one that signed: the seals are named, the chain is whole.
    assert main(["audit", "verify", "--data-dir", str(data_dir), "--public-key", other]) == 1
    out = capsys.readouterr().out
    assert f"shard 0 seq 3 day {DAY_ONE}: the day's seal is not signed by the journal key" in out


def test_verify_without_files_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify", "--data-dir", str(tmp_path)]) == 2
    assert "no wallet shard" in capsys.readouterr().err


def test_files_without_a_chain_are_named_unreadable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shard = tmp_path / "wallet" / "shard-000"
    shard.mkdir(parents=True)
    lmdb.open(str(shard), max_dbs=4).close()
    assert main(["audit", "verify", "--data-dir", str(tmp_path)]) == 1
    assert "shard 0: its files cannot be read" in capsys.readouterr().out
