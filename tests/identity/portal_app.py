"""The portal's pages on an aiohttp test server over the in-process identity service and
wallet shard of `Harness`, whose clock the test moves; sessions come from the real portal
sign-in (password and SMS code)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from coopnode.actors.identity.messages import (
    Answer,
    FlowAnswer,
    FlowStep,
    IdentityRequest,
    SessionIssued,
    SignIn,
)
from coopnode.actors.notify.messages import Notification, SmsMessage
from coopnode.actors.wallet.client import WalletClient
from coopnode.domain.identity import FlowKind, SessionKind
from coopnode.http.api.wallet import wallet_client_key
from coopnode.http.hardening import setup_hardening
from coopnode.http.identity_front import (
    COOKIE_NAMES,
    identity_key,
    notifier_key,
)
from coopnode.http.portal.routes import setup_portal
from tests.identity.harness import Harness
from tests.identity.test_service import PASSWORD, code_in


class HarnessPort:
    def __init__(self, harness: Harness) -> None:
        self.harness = harness

    async def call(self, request: IdentityRequest) -> Answer:
        answer: Answer = await self.harness.service.handle(request)
        self.harness.sent.extend(answer.notifications)
        return answer


class AcceptingNotifier:
    def submit(self, message: Notification) -> bool:
        return True


@asynccontextmanager
async def portal_client(
    harness: Harness, *, production: bool = False
) -> AsyncIterator[TestClient[Any, Any]]:
    app = web.Application()
    app[identity_key] = HarnessPort(harness)
    app[notifier_key] = AcceptingNotifier()
    setup_hardening(app, production=production)
    # The pages only call `submit`, which the one-shard wallet of the harness answers.
    app[wallet_client_key] = cast(WalletClient, harness.wallet)
    setup_portal(app, harness.settings)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def portal_session(harness: Harness, mail: str, phone: str) -> SessionIssued:
    flow = await harness.call(SignIn(kind=SessionKind.PORTAL, identifier=mail, password=PASSWORD))
    assert isinstance(flow, FlowAnswer), flow
    step = FlowStep(
        kind=FlowKind.PORTAL_SIGN_IN,
        step="send_code",
        flow_id=flow.flow_id,
        method="sms",
        phone=phone,
    )
    await harness.call(step)
    sms = harness.sent[-1]
    assert isinstance(sms, SmsMessage)
    verify = FlowStep(
        kind=FlowKind.PORTAL_SIGN_IN, step="verify", flow_id=flow.flow_id, code=code_in(sms.body)
    )
    issued = await harness.call(verify)
    assert isinstance(issued, SessionIssued), issued
    return issued


def as_(client: TestClient[Any, Any], issued: SessionIssued) -> dict[str, str]:
    """The cookies of a signed-in member: pass them with each request."""
    client.session.cookie_jar.clear()
    return {
        COOKIE_NAMES[SessionKind.PORTAL]: issued.session_id,
        f"cn_csrf_{SessionKind.PORTAL.value}": issued.csrf_token,
    }
