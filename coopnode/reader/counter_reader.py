"""The counter's (窓口) card reader: the tills' nfcpy reader code, sending each card laid on
it to the node, which tells the clerk's page its member (`http/api/counter_taps.py`).

    coopnode counter-reader --name desk-1 --reader usb [--node URL] [--token-file FILE]

It sells nothing and keeps nothing: a tap is one POST with a machine's API token allowed
to read members (`members.read`; by default the `api-token` file beside the staff
token). A tap the node did not take is logged and not sent again: the clerk sees nothing
happen and lays the card again, which is better than a late tap opening another
member's page.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from coopnode.logs import get_logger
from coopnode.reader.felica import CardReader, ReaderUnavailable, Tap
from coopnode.settings import Settings

log = get_logger(__name__)

# A tap's POST gives up after this: a clerk waiting longer would lay the card again.
TAP_POST_TIMEOUT_S = 5.0


class CounterReader:
    """Sends each tap of `reader` to the node as the counter reader `name`."""

    def __init__(self, reader: CardReader, node_url: str, name: str, token: str) -> None:
        self.reader = reader
        self.url = f"{node_url.rstrip('/')}/api/v1/counter/readers/{name}/taps"
        self.headers = {"Authorization": f"Bearer {token}"}

    async def run(self, session: aiohttp.ClientSession) -> None:
        async for tap in self.reader.taps():
            await self.send(session, tap)

    async def send(self, session: aiohttp.ClientSession, tap: Tap) -> bool:
        """Post one tap; whether the node took it."""
        body = msgspec.json.encode({"idm": tap.idm})
        headers = {**self.headers, "Content-Type": "application/json"}
        timeout = aiohttp.ClientTimeout(total=TAP_POST_TIMEOUT_S)
        try:
            async with session.post(self.url, data=body, headers=headers, timeout=timeout) as sent:
                if sent.status == 200:
                    log.info("counter tap sent", idm_last4=tap.idm[-4:])
                    return True
                log.warning("counter tap refused", status=sent.status, body=await sent.text())
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("counter tap not sent", error=str(error))
        return False


async def _run(args: argparse.Namespace, settings: Settings, token: str) -> None:
    reader = CardReader(msgspec.structs.replace(settings.reader, device_path=args.reader))
    reader.start(wait_for_device=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    counter = CounterReader(reader, _node_url(args, settings), args.name, token)
    async with aiohttp.ClientSession() as session:
        work = loop.create_task(counter.run(session))
        print(f"counter reader {args.name} ready", flush=True)
        await asyncio.wait([work, loop.create_task(stop.wait())], return_when="FIRST_COMPLETED")
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
    reader.stop()


def _node_url(args: argparse.Namespace, settings: Settings) -> str:
    scheme = "https" if settings.node.tls else "http"
    url: str = args.node or f"{scheme}://{settings.node.host}:{settings.node.port}"
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"--node must be an http(s) URL, not {url!r}")
    return url


def counter_reader_run(args: argparse.Namespace, settings: Settings) -> int:
    token_file = Path(args.token_file) if args.token_file else settings.api_token_path
    try:
        token = token_file.read_text(encoding="ascii").strip()
        _node_url(args, settings)
    except (OSError, ValueError) as error:
        print(f"coopnode counter-reader: {error}", file=sys.stderr)
        return 2
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_run(args, settings, token))
    except ReaderUnavailable as error:
        print(f"coopnode counter-reader: {error.message}", file=sys.stderr)
        return 2
    return 0


def add_counter_reader_command(commands: Any) -> None:
    parser = commands.add_parser("counter-reader", help="run the counter's card reader")
    parser.add_argument(
        "--name", required=True, help="the reader's name, as the counter's page names it"
    )
    parser.add_argument("--reader", default="usb", help="usb or udp:HOST:PORT")
    parser.add_argument("--node", help="the node's URL (default: from the settings)")
    parser.add_argument("--token-file", help="an API token with members.read (default: api-token)")
    parser.set_defaults(run=counter_reader_run)
