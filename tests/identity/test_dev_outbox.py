"""The development outbox exists in development only; in production its routes are absent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from coopnode.actors.identity.actor import LocalIdentity
from coopnode.actors.notify.actor import LocalOutbox
from coopnode.actors.notify.messages import Channel
from coopnode.actors.notify.notifier import Notifier
from coopnode.actors.notify.outbox import Outbox
from coopnode.actors.notify.sms import OutboxSms
from coopnode.actors.notify.smtp import MailSender
from coopnode.actors.wallet.client import WalletClient
from coopnode.http.app import make_app
from coopnode.http.identity_front import IdentityFront
from coopnode.metrics import Metrics
from coopnode.settings import Environment, Settings
from tests.identity.harness import Harness


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    built = Harness(tmp_path)
    try:
        yield built
    finally:
        built.close()


def _app(harness: Harness, environment: Environment, outbox: Outbox) -> TestServer:
    node = msgspec.structs.replace(harness.settings.node, environment=environment)
    settings: Settings = msgspec.structs.replace(harness.settings, node=node)
    notifier = Notifier(
        settings.notifier,
        mail=MailSender(settings.notifier, port=1),
        sms=OutboxSms(settings.notifier, outbox),
    )
    front = IdentityFront(
        client=LocalIdentity(harness.service), notifier=notifier, outbox=LocalOutbox(outbox)
    )
    wallet = WalletClient([], settings.wallet, Metrics())
    return TestServer(make_app(settings, wallet, Metrics(), "t" * 32, identity=front))


@pytest.mark.parametrize("environment", list(Environment))
async def test_outbox_routes_only_in_development(
    harness: Harness, environment: Environment
) -> None:
    outbox = Outbox(10)
    outbox.add(
        channel=Channel.SMS, to="+819000000000", sender="x", subject="", body="<b>123456</b>"
    )
    async with TestClient(_app(harness, environment, outbox)) as client:
        page = await client.get("/dev/outbox")
        as_json = await client.get("/dev/outbox.json")
        document = await (await client.get("/api/openapi.json")).json()
        if environment is Environment.PRODUCTION:
            assert page.status == 404 and as_json.status == 404
            assert "/dev/outbox" not in document["paths"]
            return
        assert page.status == 200 and "&lt;b&gt;123456&lt;/b&gt;" in await page.text()
        messages = (await as_json.json())["messages"]
        assert messages[0]["body"] == "<b>123456</b>"
        assert "/oauth/token" in document["paths"] and "/api/v1/members" in document["paths"]
