"""`coopnode audit verify`: check every wallet shard's journal chain and sealed days.

    coopnode audit verify [--data-dir DIR] [--public-key HEX]
        reads each shard's LMDB files under DIR/wallet/ (read-only; a running node's files
        too) and checks every entry's chain link and every sealed day's signed root
        (`actors/wallet/chain.py`). It prints one line per shard, and one per break with
        its shard, sequence and day. Exit status 0: intact; 1: a break; 2: no files.

The seals are checked against the node's journal public key: `--public-key`, or the one
derived from the journal key file (`wallet.journal_key_file`, by default
`<data_dir>/wallet/journal-key`). Without either, each seal is checked against the key it
names, which proves the chain but not who signed: the command says so.

It needs no Ray and no running node: the files are all it reads, so an auditor can check
a backup's copy too (`--data-dir` of a restored directory).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import lmdb
from nacl.signing import VerifyKey

from coopnode.actors.wallet.chain import SealRefused, read_journal_key, verify_files
from coopnode.actors.wallet.messages import ChainReport
from coopnode.settings import Settings


def add_audit_commands(commands: Any) -> None:
    audit = commands.add_parser("audit", help="check the journal").add_subparsers(
        dest="audit_command", required=True
    )
    verify = audit.add_parser("verify", help="check every shard's journal chain and seals")
    verify.add_argument("--data-dir", help="the node's data directory (default: the settings')")
    verify.add_argument("--public-key", help="the journal's Ed25519 public key, 64 hex digits")
    verify.set_defaults(run=_verify)


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    data_dir = Path(args.data_dir) if args.data_dir else settings.data_path
    shard_dirs = sorted((data_dir / "wallet").glob("shard-[0-9][0-9][0-9]"))
    if not shard_dirs:
        print(f"coopnode: no wallet shard under {data_dir / 'wallet'}", file=sys.stderr)
        return 2
    key = _public_key(args, settings, data_dir)
    if key is None:
        print("no journal key: each seal is checked against the key it names")
    else:
        print(f"journal public key {bytes(key).hex()}")
    broken = False
    for shard_dir in shard_dirs:
        index = int(shard_dir.name.removeprefix("shard-"))
        try:
            report = verify_files(shard_dir, index, key)
        except lmdb.Error as error:
            print(f"shard {index}: its files cannot be read: {error}")
            broken = True
            continue
        broken |= _print_report(report)
    return 1 if broken else 0


def _public_key(args: argparse.Namespace, settings: Settings, data_dir: Path) -> VerifyKey | None:
    if args.public_key:
        return VerifyKey(bytes.fromhex(args.public_key))
    key_path = (
        settings.journal_key_path
        if settings.wallet.journal_key_file
        else data_dir / "wallet" / "journal-key"
    )
    try:
        return read_journal_key(key_path).verify_key
    except SealRefused:
        return None


def _print_report(report: ChainReport) -> bool:
    """Print a shard's lines; True when it is broken."""
    state = "BROKEN" if report.problems else "intact"
    print(
        f"shard {report.shard_index}: {report.entries} entries, {report.seals} sealed days: {state}"
    )
    for problem in report.problems:
        where = f"shard {problem.shard_index} seq {problem.seq}"
        if problem.day:
            where += f" day {problem.day}"
        print(f"  {where}: {problem.problem}")
    return bool(report.problems)
