"""Charging in the node process: the payments actor, the acquirer, and the sweep.

In development, with no `payments.acquirer_url`, the node starts the embedded test
acquirer on a free loopback port and charges cards through it over a real socket. In
production an acquirer must be named: the sandbox acquirer never runs there. The store
network's signing key comes from a file (created at first start in development). A
periodic sweep cancels convenience-store charges whose deadline passed.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from coopnode.actors.payments.actor import PaymentsClient, create_payments_actor
from coopnode.actors.wallet.client import WalletClient
from coopnode.logs import get_logger
from coopnode.node.secrets_files import read_or_create_secret
from coopnode.payments.acquirer import AcquirerClient
from coopnode.payments.charging import Charging
from coopnode.payments.sandbox_acquirer import start_sandbox_acquirer
from coopnode.settings import Environment, Settings, SettingsError

log = get_logger(__name__)


class PaymentsNode:
    """What charging runs in the node process, started and stopped together."""

    def __init__(
        self,
        charging: Charging,
        webhook_key: str,
        acquirer_runner: web.AppRunner | None,
        sweep: asyncio.Task[None],
    ) -> None:
        self.charging = charging
        self.webhook_key = webhook_key
        self._acquirer_runner = acquirer_runner
        self._sweep = sweep

    @classmethod
    async def start(
        cls, settings: Settings, wallet: WalletClient, ready_timeout_s: float
    ) -> PaymentsNode:
        payments = settings.payments
        client = PaymentsClient(create_payments_actor(settings), payments.call_timeout_s)
        await client.wait_ready(ready_timeout_s)
        runner = None
        url = payments.acquirer_url
        if not url:
            if settings.node.environment is not Environment.DEVELOPMENT:
                raise SettingsError("payments.acquirer_url is empty; production needs an acquirer")
            runner, url = await start_sandbox_acquirer()
            log.info("sandbox acquirer started", url=url)
        acquirer = AcquirerClient(
            url, payments.acquirer_timeout_s, payments.acquirer_response_max_bytes
        )
        charging = Charging(payments, client, acquirer, wallet)
        key = read_or_create_secret(settings.konbini_webhook_key_path, settings)
        sweep = asyncio.create_task(_sweep_forever(charging), name="konbini-sweep")
        return cls(charging, key, runner, sweep)

    async def stop(self) -> None:
        self._sweep.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sweep
        await self.charging.acquirer.close()
        if self._acquirer_runner is not None:
            await self._acquirer_runner.cleanup()


async def _sweep_forever(charging: Charging) -> None:
    while True:
        await asyncio.sleep(charging.settings.konbini_sweep_interval_s)
        try:
            await charging.sweep()
        except Exception:
            # One failed sweep (the actor restarting) must not stop the later ones.
            log.exception("konbini sweep failed")
