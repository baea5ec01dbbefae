"""`coopnode konbini pay NUMBER`: the simulated store network, from a terminal.

It reads the running node's address (`<data_dir>/node.url`) and the store network's
signing key, asks the node what the number is for, and sends the signed payment
notification to the node's webhook, as a store would after the member paid.

`coopnode admin konbini refund CHARGE_ID [--note TEXT] [--node URL] [--token-file FILE]`:
staff record that a charge the store network reported paid, but that the wallet would
not credit, was paid back to the member (`POST /api/v1/staff/konbini/charges/{id}/refund`
with an API token granted money.refund). Running it again changes nothing and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from typing import Any

import aiohttp
import msgspec

from coopnode.node.member_cli import REQUEST_TIMEOUT_S, RowError, staff_target
from coopnode.payments.konbini import pay_at_store
from coopnode.settings import Settings

_CHARGE_ID = re.compile(r"^[0-9a-f]{24}$")


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


def add_konbini_admin_command(admin: Any) -> None:
    """Add `coopnode admin konbini refund` beside the other staff commands."""
    konbini = admin.add_parser("konbini", help="convenience-store charges (staff)")
    actions = konbini.add_subparsers(dest="konbini_admin_command", required=True)
    refund = actions.add_parser(
        "refund", help="record the refund of a charge that was paid but not credited"
    )
    refund.add_argument("charge_id", help="the charge id (24 hex digits)")
    refund.add_argument("--note", default="", help="why, for the audit log")
    refund.add_argument("--node", help="the node's URL (default: <data_dir>/node.url)")
    refund.add_argument("--token-file", help="an API token file (default: api-token)")
    refund.set_defaults(run=_refund)


async def _post_refund(node: str, token: str, charge_id: str, note: str) -> tuple[int, Any]:
    url = f"{node}/api/v1/staff/konbini/charges/{charge_id}/refund"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url, data=msgspec.json.encode({"note": note}), headers=headers) as response,
    ):
        raw = await response.read()
        status = response.status
    try:
        return status, msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return status, {"message": raw.decode(errors="replace")[:200]}


def _refund(args: argparse.Namespace, settings: Settings) -> int:
    if not _CHARGE_ID.match(args.charge_id):
        print("coopnode admin: a charge id is 24 hexadecimal digits", file=sys.stderr)
        return 2
    try:
        node, token = staff_target(args, settings)
        status, answer = asyncio.run(_post_refund(node, token, args.charge_id, args.note))
    except (OSError, RowError, aiohttp.ClientError) as error:
        print(f"coopnode admin: {error}", file=sys.stderr)
        return 2
    if status != 200:
        print(f"refused ({status}): {answer.get('message', '')}", file=sys.stderr)
        return 1
    if answer["refunded_now"]:
        print(f"charge {answer['charge_id']}: {answer['amount_yen']:,} yen refunded")
    else:
        print(f"charge {answer['charge_id']}: already refunded; nothing changed")
    return 0
