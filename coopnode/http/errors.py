"""Errors as HTTP answers: one exception tree, one table from reason code to status, one
JSON shape.

Every refusal the front answers is an `ApiError`: a reason code, a sentence, the HTTP
status, and the seconds to wait or the tries left when they apply. Handlers raise it; the
middleware answers it as `ErrorBody`, `{"reason": "<code>", "message": "<sentence>"}`
(OAuth's token endpoints answer the same error in RFC 6749's shape). The tree hangs from
the domain's (`coopnode.domain.errors`):

    OperatingError               (domain) an expected outcome with a reason and a sentence
    ├── InvalidInput             (domain) a value out of bounds: always 400
    └── ApiError                 a refusal of the front; its status is REASON_STATUS's
        │                        for its reason code
        ├── AccessRefused        the route's `access` does not admit the caller (no staff
        │                        token, no session); raised before the handler runs
        ├── FormRefused          a posted form that is not read: too large, not UTF-8,
        │                        not urlencoded, or sent from another site (`forms.py`)
        ├── IdentityRefused      the identity actor's `Refused` reply, with the status the
        │                        actor chose (see below)
        └── PageError            a portal page's refusal: a catalogue key and the status
                                 of that page; answered as the error page in the member's
                                 language, never as JSON

The status of an `ApiError` is looked up in `REASON_STATUS` and nowhere else: a raise
names a reason, never a number, and a reason missing from the table is a programmer
error (`InvariantViolation`). Two kinds keep the status they arrive with, and each is
made in one place: `IdentityRefused.__init__` reads the status of the identity actor's
reply (its codes include authlib's, and one code can mean 400 at one step and 409 at
another: `passcode_used`), and a `PageError` states its page's status. aiohttp's own
refusals (no such route, a method the route does not take) keep theirs too. The store
network's webhook is outside the tree: it answers the network's own protocol
(`WebhookAnswer`, in `api/konbini.py`), not the API's refusals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

import msgspec
from aiohttp import web
from aiohttp.typedefs import Middleware

from coopnode.actors.identity.messages import Refused
from coopnode.domain.errors import InvalidInput, InvariantViolation, OperatingError
from coopnode.domain.money import Reason
from coopnode.logs import get_logger

log = get_logger(__name__)

# Every reason code the front answers with, and its status. The wallet's reasons first
# (every `Reason`, which `Declined` results and the registry carry), then the front's own.
REASON_STATUS: dict[str, int] = {
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
    # A form that is not one of this node's pages' (`forms.py`).
    "invalid_request": 400,
    "foreign_origin": 403,
    "too_large": 413,
    # No staff token, or no session, where the route's access needs one.
    "unauthorized": 401,
    # A read that took longer than `http.request_timeout_s`: nothing changed.
    "timeout": 503,
    # A defect; the log has the stack trace, the answer never does.
    "internal_error": 500,
    # The refund of a convenience-store charge (`api/konbini.py`).
    "unknown_charge": 404,
    "not_refundable": 409,
    "already_credited": 409,
    "refused": 409,
    # Backups (`api/backups.py`): no backup.dir, one already running, a directory that
    # is not under backup.dir, not empty or inside the live data, an id not known.
    "backups_off": 409,
    "backup_running": 409,
    "backup_target_refused": 409,
    "unknown_backup": 404,
}

# Methods that change nothing: a read that timed out is simply "try again", and a
# session reads without its CSRF token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
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


class ApiError(OperatingError):
    """A refusal of the front: raised by handlers, answered by `error_middleware`."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        retry_after_s: int = 0,
        attempts_left: int | None = None,
    ) -> None:
        super().__init__(str(reason), message)
        self.status = self._status_of(self.reason)
        self.retry_after_s = retry_after_s
        self.attempts_left = attempts_left

    def _status_of(self, reason: str) -> int:
        status = REASON_STATUS.get(reason)
        if status is None:
            raise InvariantViolation(f"the reason {reason!r} has no status in REASON_STATUS")
        return status

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.reason!r}, {self.message!r})"


class AccessRefused(ApiError):
    """The caller is not one the route's `access` admits; the handler did not run."""


class FormRefused(ApiError):
    """A posted form that is not read (`forms.read_urlencoded`)."""


class IdentityRefused(ApiError):
    """The identity actor refused: its reply, with the status the actor chose."""

    def __init__(self, refused: Refused) -> None:
        self.refused = refused
        super().__init__(
            refused.reason,
            refused.message,
            retry_after_s=refused.retry_after_s,
            attempts_left=refused.attempts_left,
        )

    def _status_of(self, reason: str) -> int:
        return self.refused.status


class PageError(ApiError):
    """Raised by a portal page to answer with the error page: the catalogue key of its
    sentence (`error.csrf`, …), the values the sentence names, and the page's status."""

    def __init__(self, status: int, key: str, **values: object) -> None:
        self.page_status = status
        super().__init__(key.removeprefix("error."), key)
        self.key = key
        self.values = values

    def _status_of(self, reason: str) -> int:
        return self.page_status


def retry_after(error: ApiError) -> dict[str, str]:
    """The `Retry-After` header: the wait the refusal names, and at least a second after
    every 503."""
    if error.retry_after_s:
        return {"Retry-After": str(max(1, error.retry_after_s))}
    if error.status == 503:
        return {"Retry-After": "1"}
    return {}


def _error_answer(status: int, body: ErrorBody, headers: dict[str, str]) -> web.Response:
    return web.Response(
        status=status,
        body=msgspec.json.encode(body),
        content_type="application/json",
        headers=headers or None,
    )


def error_response(error: ApiError) -> web.Response:
    """The one JSON answer of a refusal."""
    body = ErrorBody(
        reason=error.reason,
        message=error.message,
        retry_after_s=error.retry_after_s,
        attempts_left=error.attempts_left,
    )
    return _error_answer(error.status, body, retry_after(error))


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
            if request.method in SAFE_METHODS:
                return error_response(ApiError("timeout", "the request took too long; try again"))
            return error_response(ApiError(Reason.OUTCOME_UNKNOWN, OUTCOME_UNKNOWN_MESSAGE))

    return bounded


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure as JSON with a reason code; never leak a stack trace."""
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error)
    except InvalidInput as error:
        # The domain's bounds: 400 whatever the code (invalid_mail, invalid_phone, …).
        return _error_answer(400, ErrorBody(error.reason, error.message), {})
    except web.HTTPRequestEntityTooLarge:
        return error_response(ApiError("too_large", "the request body is too large"))
    except web.HTTPException as error:
        if error.status < 400:
            raise
        reason = error.reason.lower().replace(" ", "_")
        body = ErrorBody(reason, error.text or error.reason)
        headers = {"Retry-After": "1"} if error.status == 503 else {}
        return _error_answer(error.status, body, headers)
    except Exception:
        log.exception("unhandled error", path=request.path)
        return error_response(ApiError("internal_error", "something went wrong on our side"))
