"""The card acquirer adapter: the acquirer's JSON API over HTTP.

    POST /v1/authorizations                 {amount, currency: "JPY", card, reference}
                                            with an Idempotency-Key header
        201 {id, status: "authorized", amount, brand, last4}
        402 {error: {code: "card_declined" | "insufficient_funds"}}
    POST /v1/authorizations/{id}/capture    201 {id, status: "captured"}
    POST /v1/authorizations/{id}/void       201 {id, status: "voided"}

The idempotency key is the charge id, so a retried authorization is the same one at the
acquirer. The card's fields are sent in the request body and nowhere else: they are not
logged, and the `Card` struct's repr hides them.

Errors (a tree):
    AcquirerError            the acquirer could not be reached or answered nonsense
    (a decline is not an error: `Authorization.declined` names the reason)
"""

from __future__ import annotations

import aiohttp
import msgspec


class Card(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    number: str
    exp_month: int
    exp_year: int
    cvc: str
    birthday: str

    def __repr__(self) -> str:
        # A traceback or a log line must never show the card: only its last four digits.
        return f"Card(last4={self.number[-4:]!r})"


class AuthorizationRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    amount: int
    currency: str
    card: Card
    reference: str

    def __repr__(self) -> str:
        return f"AuthorizationRequest(amount={self.amount}, reference={self.reference!r})"


class AcquirerErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    message: str = ""


class AcquirerAnswer(msgspec.Struct, frozen=True, kw_only=True):
    id: str = ""
    status: str = ""
    amount: int = 0
    brand: str = ""
    last4: str = ""
    error: AcquirerErrorBody | None = None


class Authorization(msgspec.Struct, frozen=True, kw_only=True):
    acquirer_id: str
    # Empty when approved; otherwise "card_declined" or "insufficient_funds".
    declined: str = ""


class AcquirerError(Exception):
    """The acquirer could not be reached, or answered something that is not its API."""


_answer_decoder = msgspec.json.Decoder(AcquirerAnswer)


class AcquirerClient:
    """One acquirer, one HTTP session (made on first use, on the caller's event loop)."""

    def __init__(self, base_url: str, timeout_s: float, response_max_bytes: int) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._response_max_bytes = response_max_bytes
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"AcquirerClient({self._base_url!r})"

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def authorize(self, charge_id: str, amount_yen: int, card: Card) -> Authorization:
        body = AuthorizationRequest(
            amount=amount_yen, currency="JPY", card=card, reference=charge_id
        )
        status, answer = await self._post(
            "/v1/authorizations", msgspec.json.encode(body), charge_id
        )
        if status == 402 and answer.error is not None:
            return Authorization(acquirer_id=answer.id, declined=answer.error.code)
        if status not in (200, 201) or answer.status != "authorized" or not answer.id:
            raise AcquirerError(f"authorization answered {status}")
        if answer.amount != amount_yen:
            raise AcquirerError("the acquirer authorized another amount")
        return Authorization(acquirer_id=answer.id)

    async def capture(self, acquirer_id: str, charge_id: str) -> None:
        path = f"/v1/authorizations/{acquirer_id}/capture"
        status, answer = await self._post(path, b"{}", f"{charge_id}:capture")
        if status not in (200, 201) or answer.status != "captured":
            raise AcquirerError(f"capture answered {status}")

    async def void(self, acquirer_id: str, charge_id: str) -> None:
        path = f"/v1/authorizations/{acquirer_id}/void"
        status, answer = await self._post(path, b"{}", f"{charge_id}:void")
        if status not in (200, 201) or answer.status != "voided":
            raise AcquirerError(f"void answered {status}")

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self._timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def _post(self, path: str, body: bytes, key: str) -> tuple[int, AcquirerAnswer]:
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        try:
            async with self._client().post(
                self._base_url + path, data=body, headers=headers
            ) as response:
                raw = await response.content.read(self._response_max_bytes + 1)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise AcquirerError(type(error).__name__) from None
        if len(raw) > self._response_max_bytes:
            raise AcquirerError("the acquirer's answer is too long")
        try:
            return status, _answer_decoder.decode(raw)
        except msgspec.DecodeError:
            raise AcquirerError(f"the acquirer answered {status} with no JSON") from None
