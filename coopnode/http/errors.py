"""Errors as HTTP answers: one JSON shape, one place that maps reasons to status codes.

Every error body is `{"reason": "<code>", "message": "<sentence>"}`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

import msgspec
from aiohttp import web
from aiohttp.typedefs import Middleware

from coopnode.domain.errors import InvalidInput
from coopnode.domain.money import Reason
from coopnode.logs import get_logger

log = get_logger(__name__)

REASON_STATUS: dict[Reason, int] = {
    Reason.INSUFFICIENT_FUNDS: 402,
    Reason.SUSPENDED: 403,
    Reason.CARD_BLOCKED: 403,
    Reason.UNKNOWN_MEMBER: 404,
    Reason.UNKNOWN_CARD: 404,
    Reason.UNKNOWN_PAYMENT: 404,
    Reason.DUPLICATE: 409,
    Reason.IDEMPOTENCY_CONFLICT: 409,
    Reason.ALREADY_VOIDED: 409,
    Reason.VOID_WINDOW_CLOSED: 409,
    Reason.NOTHING_OWED: 409,
    Reason.OVER_LIMIT: 422,
    Reason.BELOW_MINIMUM: 422,
    Reason.ABOVE_MAXIMUM: 422,
    Reason.REFUND_EXCEEDS_PAYMENT: 422,
    Reason.PURSE_NOT_ALLOWED: 422,
    Reason.UNKNOWN_MEAL_PLAN: 422,
    Reason.UNKNOWN_COOP: 422,
    Reason.INVALID_INPUT: 400,
    Reason.OVERLOADED: 503,
    Reason.UNAVAILABLE: 503,
    Reason.OUTCOME_UNKNOWN: 503,
    Reason.STORAGE_FULL: 507,
    Reason.OPERATION_FAILED: 500,
}

# Methods that change nothing: a read that timed out is simply "try again".
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OUTCOME_UNKNOWN_MESSAGE = (
    "the node did not confirm this in time: it may have been done or not; send the same "
    "request with the same idempotency key to learn which (it is never done twice)"
)


class ErrorBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Every refusal of the API: a reason code and a sentence, with the seconds to wait
    (also in `Retry-After`) or the tries left when they apply."""

    reason: str
    message: str
    retry_after_s: Annotated[int, msgspec.Meta(ge=0)] = 0
    attempts_left: int | None = None


class ApiError(Exception):
    """An error answer; raised by handlers and turned into JSON by the middleware."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


def error_response(status: int, reason: str, message: str) -> web.Response:
    headers = {"Retry-After": "1"} if status == 503 else None
    return web.Response(
        status=status,
        body=msgspec.json.encode(ErrorBody(reason, message)),
        content_type="application/json",
        headers=headers,
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def timeout_middleware(timeout_s: float) -> Middleware:
    """Bound every request's time on the server; long-lived WebSockets are exempt.

    A change that timed out may still happen: the front goes on sending its operation
    to the shard (with the same idempotency key) after the answer has gone. So it is
    answered `outcome_unknown`, never a bare "try again" that a POS system might ring
    up again under a new key and charge twice; a read is answered `timeout`."""

    @web.middleware
    async def bounded(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        try:
            async with asyncio.timeout(timeout_s):
                return await handler(request)
        except TimeoutError:
            log.warning("request timed out", path=request.path, timeout_s=timeout_s)
            if request.method in _SAFE_METHODS:
                return error_response(503, "timeout", "the request took too long; try again")
            return error_response(503, Reason.OUTCOME_UNKNOWN, OUTCOME_UNKNOWN_MESSAGE)

    return bounded


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure as JSON with a reason code; never leak a stack trace."""
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error.status, error.reason, error.message)
    except InvalidInput as error:
        return error_response(400, error.reason, error.message)
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "too_large", "the request body is too large")
    except web.HTTPException as error:
        if error.status < 400:
            raise
        reason = error.reason.lower().replace(" ", "_")
        return error_response(error.status, reason, error.text or error.reason)
    except Exception:
        log.exception("unhandled error", path=request.path)
        return error_response(500, "internal_error", "something went wrong on our side")
