"""The embedded sandbox acquirer: a small aiohttp app the node starts on loopback in
development, speaking the acquirer API of `payments.acquirer`.

Test cards (any future expiry; a 3-digit security code, 4 for AMEX; any birthday):

    4242424242424242   Visa          approved
    5555555555554444   Mastercard    approved
    378282246310005    AMEX          approved
    4000000000000002   Visa          declined (card_declined)
    4000000000009995   Visa          declined (insufficient_funds)

Any other number that passes the Luhn check is approved. The acquirer keeps its
authorizations in memory only, by idempotency key, so a retried request gets the first
answer; it never writes or logs a card.
"""

from __future__ import annotations

import secrets

import msgspec
from aiohttp import web

from coopnode.domain.charging import card_brand, luhn_valid
from coopnode.payments.acquirer import AuthorizationRequest

DECLINED_CARDS = {"4000000000000002": "card_declined", "4000000000009995": "insufficient_funds"}
# The sandbox acquirer keeps this many authorizations; a development node makes far fewer.
AUTHORIZATIONS_MAX = 100_000
_request_decoder = msgspec.json.Decoder(AuthorizationRequest)


class _Authorization(msgspec.Struct, kw_only=True):
    id: str
    status: str
    amount: int
    brand: str
    last4: str


class TestAcquirer:
    """State of the sandbox acquirer: authorizations by id and by idempotency key."""

    __test__ = False  # Not a pytest class, whatever its name says.

    def __init__(self) -> None:
        self.by_id: dict[str, _Authorization] = {}
        self.by_key: dict[str, web.Response] = {}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16_384)
        app.router.add_post("/v1/authorizations", self.authorize)
        app.router.add_post("/v1/authorizations/{id}/{action:capture|void}", self.act)
        return app

    def _remember(self, key: str, response: web.Response) -> web.Response:
        if key and len(self.by_key) < AUTHORIZATIONS_MAX:
            self.by_key[key] = response
        return response

    async def authorize(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key", "")
        if key in self.by_key:
            first = self.by_key[key]
            return web.Response(
                body=first.body, status=first.status, content_type="application/json"
            )
        try:
            body = _request_decoder.decode(await request.read())
        except msgspec.DecodeError:
            return _error(400, "invalid_request")
        number = body.card.number
        if body.currency != "JPY" or body.amount <= 0 or not luhn_valid(number):
            return self._remember(key, _error(400, "invalid_request"))
        authorization_id = f"auth_{secrets.token_hex(8)}"
        declined = DECLINED_CARDS.get(number)
        if declined:
            return self._remember(key, _error(402, declined, authorization_id))
        authorization = _Authorization(
            id=authorization_id,
            status="authorized",
            amount=body.amount,
            brand=card_brand(number).value,
            last4=number[-4:],
        )
        if len(self.by_id) < AUTHORIZATIONS_MAX:
            self.by_id[authorization_id] = authorization
        return self._remember(key, _json(201, authorization))

    async def act(self, request: web.Request) -> web.Response:
        authorization = self.by_id.get(request.match_info["id"])
        if authorization is None:
            return _error(404, "not_found")
        action = request.match_info["action"]
        if action == "capture" and authorization.status in ("authorized", "captured"):
            authorization.status = "captured"
        elif action == "void" and authorization.status != "voided":
            authorization.status = "voided"
        elif authorization.status != {"capture": "captured", "void": "voided"}[action]:
            return _error(409, "invalid_state")
        return _json(201, authorization)


def _json(status: int, body: object) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(body), status=status, content_type="application/json"
    )


def _error(status: int, code: str, authorization_id: str = "") -> web.Response:
    body = {"id": authorization_id, "status": "declined", "error": {"code": code}}
    return _json(status, body)


async def start_sandbox_acquirer() -> tuple[web.AppRunner, str]:
    """Serve the sandbox acquirer on a free loopback port; the runner and its URL."""
    runner = web.AppRunner(TestAcquirer().app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"
