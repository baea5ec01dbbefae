"""A trivial aiohttp server: the ceiling any aiohttp handler could reach on this machine.

It answers `GET /` and `POST /` with a tiny JSON body and does nothing else, so a node's
figures can be read against what aiohttp itself costs. Run it in its own process:

    python -m coopnode.loadtest.trivial --port 8081

It prints `listening on PORT` once it accepts connections (with `--port 0` the port is the
one the system chose) and stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from coopnode.loadtest.openloop import uvloop_factory

REPLY_BODY = b'{"ok":true}'


async def _reply(request: web.Request) -> web.Response:
    if request.can_read_body:
        # The body is read so that a POST costs what a real handler's would.
        await request.read()
    return web.Response(body=REPLY_BODY, content_type="application/json")


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", _reply)
    app.router.add_post("/", _reply)
    return app


async def serve(host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, announcing the bound port on stdout."""
    # No access log: one line per request would cost more than the handler itself.
    runner = web.AppRunner(create_app(), access_log=None)
    await runner.setup()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stopping.set)
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        print(f"listening on {bound_port}", flush=True)
        await stopping.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coopnode.loadtest.trivial")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 lets the system choose")
    args = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=uvloop_factory()) as runner:
        runner.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
