"""`coopnode till run` and `coopnode admin till add|retire`: the till's commands.

    coopnode till run [--node URL ...] --key FILE --reader usb|udp:HOST:PORT
        [--ca-file FILE | --pin-sha256 HEX] [--http-port N] [--no-prompt]
        [--fixed-amount-yen N] [--state-dir DIR]
    coopnode admin till add --store STORE --kind cafeteria|shop|bookstore --key-out FILE
        [--node URL] [--token-file FILE]
    coopnode admin till retire TILL_ID [--node URL] [--token-file FILE]

The running till takes amounts from a terminal prompt (`480` sells 480 yen, `void 12`
voids sale 12, `refund 12 100` refunds 100 yen of it) and from POS software on loopback:

    POST /sale    {"amount_yen": 480}              → the outcome, once a card is tapped
    POST /void    {"tap_seq": 12}
    POST /refund  {"tap_seq": 12, "amount_yen": 100}
    GET  /status          → online and to which node, the amount awaiting a card, queued
                            offline taps, deny list

`--node` may be given several times, once for each front of a cluster, first to last:
the till connects to the first that takes it and moves to the next when its front is
lost (`coopnode.reader.till_link`). Without `--node`, `till.agent_node_urls` names them.

With `--fixed-amount-yen` every tap is a sale of that amount (a set-menu till; the demo).
On an https:// node URL the till verifies the node's certificate with `--ca-file`, by
`--pin-sha256`, or against the system's CA store (`coopnode.reader.till_tls`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web
from nacl.signing import SigningKey

from coopnode.domain.messages import AmountYen, Label
from coopnode.domain.money import TillKind
from coopnode.domain.till_frames import Seq
from coopnode.logs import get_logger
from coopnode.reader.felica import CardReader, ReaderUnavailable
from coopnode.reader.reader_taps import ReaderTaps, fixed_price_loop
from coopnode.reader.till_agent import SaleOutcome, TillAgent
from coopnode.reader.till_key import KeyFileError, TillKeyFile, read_key_file, write_key_file
from coopnode.reader.till_state import TillState
from coopnode.reader.till_tls import TillTlsError, node_ssl
from coopnode.settings import NodeUrl, Settings, TillSettings

log = get_logger(__name__)


# The POS endpoint ----------------------------------------------------------------------


class SaleRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    amount_yen: AmountYen


class VoidRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    tap_seq: Seq


class RefundRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    tap_seq: Seq
    amount_yen: AmountYen


agent_key = web.AppKey("till_agent", TillAgent)
fixed_key = web.AppKey("fixed_amount_yen", int)
# POS requests are a few dozen bytes.
POS_BODY_MAX_BYTES = 1024


async def _body(request: web.Request, body_type: type[Any]) -> Any:
    try:
        return msgspec.json.decode(await request.read(), type=body_type)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise web.HTTPBadRequest(text=str(error)) from None


def _answer(outcome: SaleOutcome) -> web.Response:
    return web.Response(body=msgspec.json.encode(outcome), content_type="application/json")


async def pos_sale(request: web.Request) -> web.Response:
    if request.app[fixed_key]:
        raise web.HTTPConflict(text="this till sells a fixed amount on every tap")
    body = await _body(request, SaleRequest)
    return _answer(await request.app[agent_key].sell(body.amount_yen))


async def pos_void(request: web.Request) -> web.Response:
    body = await _body(request, VoidRequest)
    return _answer(await request.app[agent_key].void(body.tap_seq))


async def pos_refund(request: web.Request) -> web.Response:
    body = await _body(request, RefundRequest)
    return _answer(await request.app[agent_key].refund(body.tap_seq, body.amount_yen))


async def pos_status(request: web.Request) -> web.Response:
    agent = request.app[agent_key]
    view = agent.state.view
    status = {
        "till_id": agent.till_id,
        "online": agent.link.online,
        # The node (front) the till is connected to; "" while offline.
        "node": agent.link.node_url,
        # A sale waiting for its card: the amount (0 when no sale waits).
        "awaiting_card_yen": agent.awaiting_card_yen,
        "queued_offline": agent.state.queued_count(),
        # Queued frames the node refused outright: staff must look at these sales.
        "set_aside": agent.state.set_aside_count(),
        "deny_version": 0 if view is None else view.deny_version,
        "deny_count": len(agent.state.deny),
        "last_refusal": agent.link.last_refusal,
    }
    return web.json_response(status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def refuse_browsers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Only local programs may use the endpoint, not a web page open on the till.

    Loopback keeps other machines out, but a page in a browser on the till's own machine
    could post a form here (`/void`, `/refund`). A browser marks such a request with an
    `Origin` header, and a page cannot send `application/json` to another origin without
    asking first (a CORS preflight, which this endpoint never grants): so a request with
    an `Origin`, or a POST whose body is not declared JSON, is refused.
    """
    if "Origin" in request.headers:
        raise web.HTTPForbidden(text="the POS endpoint takes no requests from web pages")
    if request.method == "POST" and request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send the body as application/json")
    return await handler(request)


async def start_pos_endpoint(agent: TillAgent, port: int, fixed_yen: int) -> web.AppRunner:
    app = web.Application(client_max_size=POS_BODY_MAX_BYTES, middlewares=[refuse_browsers])
    app[agent_key] = agent
    app[fixed_key] = fixed_yen
    app.router.add_post("/sale", pos_sale)
    app.router.add_post("/void", pos_void)
    app.router.add_post("/refund", pos_refund)
    app.router.add_get("/status", pos_status)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    # Loopback only: whoever reaches this endpoint can make the till sell.
    await web.TCPSite(runner, "127.0.0.1", port).start()
    host, bound = runner.addresses[0][:2]
    print(f"POS endpoint http://{host}:{bound}/sale", flush=True)
    return runner


# The terminal prompt and the fixed-price loop -------------------------------------------


def _stdin_lines(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """Read the terminal in a daemon thread, so that a quit never waits for Enter."""
    for line in sys.stdin:
        loop.call_soon_threadsafe(lines.put_nowait, line.strip())
    loop.call_soon_threadsafe(lines.put_nowait, None)


async def prompt_loop(agent: TillAgent) -> None:
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_stdin_lines, args=(loop, lines), daemon=True).start()
    print("amount in yen, 'void SEQ' or 'refund SEQ YEN'; Ctrl-D quits", flush=True)
    while (line := await lines.get()) is not None:
        words = line.split()
        try:
            if len(words) == 1 and words[0].isdigit():
                print(f"¥{int(words[0]):,}: present the card", flush=True)
                await agent.sell(msgspec.convert(int(words[0]), AmountYen))
            elif len(words) == 2 and words[0] == "void":
                await agent.void(int(words[1]))
            elif len(words) == 3 and words[0] == "refund":
                await agent.refund(int(words[1]), msgspec.convert(int(words[2]), AmountYen))
            elif words:
                print("? an amount, 'void SEQ' or 'refund SEQ YEN'", flush=True)
        except (ValueError, msgspec.ValidationError) as error:
            print(f"? {error}", flush=True)


# Running --------------------------------------------------------------------------------


async def _run(args: argparse.Namespace, settings: Settings, key_file: TillKeyFile) -> None:
    reader_settings = msgspec.structs.replace(settings.reader, device_path=args.reader)
    reader = CardReader(reader_settings)
    reader.start()
    state_dir = Path(args.state_dir or settings.till.agent_state_dir) / key_file.till_id
    state = TillState(state_dir, settings.till.agent_lmdb_map_size_mib * 1024 * 1024)
    taps = ReaderTaps(reader)
    agent = TillAgent(key_file, node_urls(args, settings), settings.till, state, taps)
    await agent.start()
    port = settings.till.agent_http_port if args.http_port is None else args.http_port
    runner = await start_pos_endpoint(agent, port, args.fixed_amount_yen or 0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    work: asyncio.Task[Any]
    if args.fixed_amount_yen:
        work = loop.create_task(fixed_price_loop(agent, taps, args.fixed_amount_yen))
    elif args.no_prompt:
        work = loop.create_task(stop.wait())
    else:
        work = loop.create_task(prompt_loop(agent))
    print(f"till {key_file.till_id} ({key_file.store}, {key_file.kind}) ready", flush=True)
    await asyncio.wait([work, loop.create_task(stop.wait())], return_when="FIRST_COMPLETED")
    work.cancel()
    await runner.cleanup()
    await agent.stop()
    reader.stop()
    state.close()


def _with_tls_flags(args: argparse.Namespace, settings: Settings) -> Settings:
    """`--ca-file` or `--pin-sha256` in place of the settings' own, checked as they are."""
    flags = {
        "agent_tls_ca_file": args.ca_file,
        "agent_tls_pin_sha256": args.pin_sha256,
    }
    given = {key: value for key, value in flags.items() if value is not None}
    if not given:
        return settings
    # A flag replaces both settings: one way to check the node, the one on the command.
    cleared = {"agent_tls_ca_file": "", "agent_tls_pin_sha256": ""}
    fields = {**msgspec.to_builtins(settings.till), **cleared, **given}
    return msgspec.structs.replace(settings, till=msgspec.convert(fields, TillSettings))


def node_urls(args: argparse.Namespace, settings: Settings) -> list[str]:
    """The nodes the till sells to: `--node` (once or more), else the settings' list."""
    urls: list[str] = list(args.node or settings.till.agent_node_urls)
    if not urls:
        raise ValueError("name the node: --node URL, or till.agent_node_urls in the settings")
    for url in urls:
        try:
            msgspec.convert(url, NodeUrl)
        except msgspec.ValidationError:
            raise ValueError(f"{url!r} is not a node URL (http(s)://host:port)") from None
    return urls


def till_run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        key_file = read_key_file(Path(args.key))
        settings = _with_tls_flags(args, settings)
        for url in node_urls(args, settings):
            node_ssl(url, settings.till)
    except (KeyFileError, TillTlsError, ValueError) as error:
        print(f"coopnode till: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_run(args, settings, key_file))
    except ReaderUnavailable as error:
        print(f"coopnode till: {error.message}", file=sys.stderr)
        return 2
    return 0


def _staff_post(args: argparse.Namespace, settings: Settings, path: str, body: Any) -> Any:
    token_file = Path(args.token_file) if args.token_file else settings.api_token_path
    token = token_file.read_text(encoding="ascii").strip()
    scheme = "https" if settings.node.tls else "http"
    node = args.node or f"{scheme}://{settings.node.host}:{settings.node.port}"
    if not node.startswith(("http://", "https://")):
        raise ValueError(f"--node must be an http(s) URL, not {node!r}")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above.
        node.rstrip("/") + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def admin_till(args: argparse.Namespace, settings: Settings) -> int:
    try:
        if args.till_command == "add":
            key = SigningKey.generate()
            msgspec.convert(args.store, Label)
            key_out = Path(args.key_out)
            if key_out.exists():
                raise ValueError(f"{key_out} exists; a till key is never overwritten")
            body = {
                "store": args.store,
                "kind": args.kind,
                "public_key_hex": bytes(key.verify_key).hex(),
            }
            till = _staff_post(args, settings, "/api/v1/tills", body)
            key_file = TillKeyFile(
                till_id=till["till_id"],
                store=args.store,
                kind=TillKind(args.kind),
                signing_key_hex=bytes(key).hex(),
            )
            write_key_file(key_out, key_file)
            print(f"till {till['till_id']} added; its key is in {key_out} (mode 0600)")
        else:
            till = _staff_post(args, settings, f"/api/v1/tills/{args.till_id}/retire", {})
            print(f"till {till['till_id']} retired")
    except urllib.error.HTTPError as error:
        print(
            f"coopnode admin: the node said {error.code}: {error.read().decode()}", file=sys.stderr
        )
        return 1
    except (OSError, ValueError, KeyFileError, msgspec.ValidationError) as error:
        print(f"coopnode admin: {error}", file=sys.stderr)
        return 2
    return 0


def add_till_commands(commands: Any, admin: Any) -> None:
    """Add `till run` to the `coopnode` command and `till add|retire` under `admin`."""
    till = commands.add_parser("till", help="run a till").add_subparsers(
        dest="till_command", required=True
    )
    run = till.add_parser("run", help="run the till agent next to a card reader")
    run.add_argument(
        "--node",
        action="append",
        help="a node's URL, e.g. http://127.0.0.1:8080; once for each front of a cluster, "
        "first to last (default: till.agent_node_urls)",
    )
    run.add_argument("--key", required=True, help="the till's key file")
    run.add_argument("--reader", default="usb", help="usb or udp:HOST:PORT")
    trust = run.add_mutually_exclusive_group()
    trust.add_argument("--ca-file", help="CA certificates (PEM) to verify the https:// node by")
    trust.add_argument(
        "--pin-sha256", help="the SHA-256 of the node's certificate: that one and no other"
    )
    run.add_argument("--http-port", type=int, help="POS endpoint port on 127.0.0.1 (0: any)")
    run.add_argument("--no-prompt", action="store_true", help="no terminal prompt")
    run.add_argument("--fixed-amount-yen", type=int, help="every tap is a sale of this amount")
    run.add_argument("--state-dir", help="where the till's LMDB lives")
    run.set_defaults(run=run_till_command)
    admin_till_parser = admin.add_parser("till", help="add or retire a till")
    actions = admin_till_parser.add_subparsers(dest="till_command", required=True)
    add = actions.add_parser("add", help="register a till and write its key file")
    add.add_argument("--store", required=True)
    add.add_argument("--kind", required=True, choices=[kind.value for kind in TillKind])
    add.add_argument("--key-out", required=True, help="the key file to write (mode 0600)")
    retire = actions.add_parser("retire", help="retire a till")
    retire.add_argument("till_id")
    for parser in (add, retire):
        parser.add_argument("--node", help="the node's URL (default: from the settings)")
        parser.add_argument(
            "--token-file", help="an API token with tills.manage (default: api-token)"
        )
        parser.set_defaults(run=run_till_command)


def run_till_command(args: argparse.Namespace, settings: Settings) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        if args.command == "till":
            return till_run(args, settings)
        return admin_till(args, settings)
    return 130
