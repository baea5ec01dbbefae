"""The convenience-store network's payment notifications: their shape and signature,
and the simulated store network that sends them in development.

A notification is a JSON body posted to `/webhooks/konbini` with the header

    Konbini-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>." + body)>

The node recomputes the HMAC with the shared key and compares in constant time, and
refuses a signature older (or further ahead) than `konbini_webhook_tolerance_s`, so a
captured notification cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import aiohttp
import msgspec

from coopnode.domain.bounds import EpochS, parse_int
from coopnode.domain.errors import InvalidInput
from coopnode.domain.messages import AmountYen

SIGNATURE_HEADER = "Konbini-Signature"
STORES = ("lawson", "familymart", "ministop", "seicomart", "dailyyamazaki", "seveneleven")


class PaymentNotice(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    event: str  # "payment.succeeded"
    payment_number: str
    amount: AmountYen
    store: str
    paid_at: EpochS


class DueAmount(msgspec.Struct, frozen=True, kw_only=True):
    """What the store network knows of a payment number (the simulator asks the node)."""

    payment_number: str
    amount: int
    store: str


def sign(key: str, body: bytes, at_s: int) -> str:
    digest = hmac.new(key.encode(), str(at_s).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={at_s},v1={digest}"


def verify(key: str, header: str, body: bytes, now_s: float, tolerance_s: int) -> bool:
    """True only for a signature by `key` over `body` made within the tolerance."""
    parts = dict(part.partition("=")[::2] for part in header.split(",") if "=" in part)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    try:
        at_s = parse_int(stamp, EpochS, "t")
    except InvalidInput:
        return False
    if len(given) != 64 or abs(now_s - at_s) > tolerance_s:
        return False
    expected = sign(key, body, at_s).partition(",v1=")[2]
    return hmac.compare_digest(expected.encode(), given.encode())


async def pay_at_store(
    node_url: str, key: str, payment_number: str, timeout_s: float = 10.0
) -> tuple[int, str]:
    """The simulated store network: look up the amount due, then send the signed notice.

    Returns the webhook's HTTP status and body, as the store network would see them.
    """
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get(f"{node_url}/dev/konbini/due/{payment_number}") as response:
            if response.status != 200:
                return response.status, await response.text()
            due = msgspec.json.decode(await response.read(), type=DueAmount)
        notice = PaymentNotice(
            event="payment.succeeded",
            payment_number=payment_number,
            amount=due.amount,
            store=due.store,
            paid_at=int(time.time()),
        )
        body = msgspec.json.encode(notice)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(key, body, int(time.time())),
        }
        async with session.post(
            f"{node_url}/webhooks/konbini", data=body, headers=headers
        ) as response:
            return response.status, await response.text()
