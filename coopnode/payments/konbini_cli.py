"""`coopnode konbini pay NUMBER`: the simulated store network, from a terminal.

It reads the running node's address (`<data_dir>/node.url`) and the store network's
signing key, asks the node what the number is for, and sends the signed payment
notification to the node's webhook, as a store would after the member paid.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from coopnode.payments.konbini import pay_at_store
from coopnode.settings import Settings


def add_konbini_command(commands: Any) -> None:
    konbini = commands.add_parser("konbini", help="the simulated convenience-store network")
    actions = konbini.add_subparsers(dest="konbini_command", required=True)
    pay = actions.add_parser("pay", help="pay a convenience-store charge by its number")
    pay.add_argument("number", help="the payment number (お支払い番号)")
    pay.add_argument("--data-dir", help="the node's data directory")
    pay.set_defaults(run=_pay)


def _pay(args: argparse.Namespace, settings: Settings) -> int:
    # `--data-dir` was laid over the settings by the command's common flags.
    try:
        url = (settings.data_path / "node.url").read_text(encoding="ascii").strip()
        key = settings.konbini_webhook_key_path.read_text(encoding="ascii").strip()
    except OSError as error:
        print(f"coopnode: is the node running? {error}", file=sys.stderr)
        return 2
    status, body = asyncio.run(pay_at_store(url, key, args.number))
    print(f"{status} {body}")
    return 0 if status == 200 else 1
