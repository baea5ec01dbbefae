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
        ├── IdentityRefused      the identity actor's `Refused` reply: a reason code (an
        │                        `IdentityReason`, or a wallet `Reason` at enrolment)
        └── PageError            a portal page's refusal: a catalogue key and the status
                                 of that page; answered as the error page in the member's
                                 language, never as JSON

The status of an `ApiError` is looked up in `REASON_STATUS` and nowhere else: a raise
names a reason, never a number, and a reason missing from the table is a programmer
error (`InvariantViolation`). The identity actor names reasons only (`IdentityReason`,
authlib's OAuth codes among them), and the table has a row for each; a reason has one
status wherever it is raised, which the table's building checks. One kind keeps the
status it arrives with, made in one place: a `PageError` states its page's status.
aiohttp's own refusals (no such route, a method the route does not take) keep theirs
too. The store network's webhook is outside the tree: it answers the network's own
protocol (`WebhookAnswer`, in `api/konbini.py`), not the API's refusals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated

import msgspec
from aiohttp import web
from aiohttp.typedefs import Middleware

from coopnode.actors.identity.messages import IdentityReason, Refused
from coopnode.domain.errors import InvalidInput, InvariantViolation, OperatingError
from coopnode.domain.money import Reason
from coopnode.logs import get_logger

log = get_logger(__name__)

# The wallet's reasons: every `Reason`, which `Declined` results and the registry carry
# (and the identity actor passes on when a wallet cannot be opened at enrolment).
_WALLET_STATUS: dict[Reason, int] = {
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
    Reason.ACCOUNT_CLOSED: 403,
    Reason.WITHDRAWAL_CHANGED: 409,
    Reason.OVERDRAFT_OWED: 409,
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
# The front's own reasons.
_FRONT_STATUS: dict[str, int] = {
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
    # The console's tills and journal (issue 13 §3, §7): a till's key already downloaded,
    # expired or held by another front; a till not registered; a day not over or a shard
    # without the journal key; as many live views open as allowed is `overloaded`.
    "key_gone": 410,
    "unknown_till": 404,
    "seal_refused": 409,
    # The books (`console/books`): a day closed before it is over; reconciliation on a
    # node without the payments actor; a node of replicated shards (not served yet).
    "day_not_over": 409,
    "payments_off": 409,
}
# The identity actor's reasons: every `IdentityReason`.
_IDENTITY_STATUS: dict[IdentityReason, int] = {
    # Sessions and sign-in.
    IdentityReason.UNAUTHORIZED: 401,
    IdentityReason.SESSION_EXPIRED: 401,
    IdentityReason.CSRF: 403,
    IdentityReason.INVALID_CREDENTIALS: 401,
    IdentityReason.LOCKED: 429,
    # Flows and the records they touch.
    IdentityReason.NOT_FOUND: 404,
    IdentityReason.FLOW_EXPIRED: 410,
    IdentityReason.OUT_OF_ORDER: 409,
    IdentityReason.NO_MATCH: 404,
    IdentityReason.PHONE_MISMATCH: 400,
    IdentityReason.EMONEY_IN_USE: 409,
    IdentityReason.MAIL_IN_USE: 409,
    IdentityReason.PHONE_IN_USE: 409,
    IdentityReason.CONFLICT: 409,
    # Values out of bounds.
    IdentityReason.INVALID_INPUT: 400,
    IdentityReason.INVALID_MAIL: 400,
    IdentityReason.INVALID_PHONE: 400,
    IdentityReason.INVALID_STAFF_ID: 400,
    # Codes that were sent: wrong (400), gone (410), spent (409), or not now (429).
    IdentityReason.PASSCODE_WRONG: 400,
    IdentityReason.PASSCODE_EXPIRED: 410,
    IdentityReason.PASSCODE_USED: 409,
    IdentityReason.PASSCODE_LOCKED: 429,
    IdentityReason.PASSCODE_COOLDOWN: 429,
    IdentityReason.PASSCODE_RATE_LIMITED: 429,
    # An authenticator app's code used before: like a wrong one, the app shows the next.
    IdentityReason.TOTP_USED: 400,
    # A new password the rules refuse, whichever rule.
    **{reason: 400 for reason in IdentityReason if reason.startswith("password_")},
    # Not now.
    IdentityReason.BUSY: 503,
    IdentityReason.WALLET: 503,
    # Family access and the member desk.
    IdentityReason.FAMILY_SELF: 409,
    IdentityReason.FAMILY_TOO_MANY: 409,
    IdentityReason.FAMILY_INVITATIONS_EXHAUSTED: 429,
    IdentityReason.DESK_DAILY_LIMIT: 429,
    IdentityReason.DOCUMENT_UNKNOWN: 404,
    IdentityReason.EVENT_UNKNOWN: 404,
    IdentityReason.EVENT_CLOSED: 409,
    IdentityReason.EVENT_FULL: 409,
    # OAuth, with the statuses authlib gives its errors (RFC 6749 §4.1.2.1, RFC 6750 §3.1).
    IdentityReason.INVALID_REQUEST: 400,
    IdentityReason.INVALID_CLIENT: 400,
    IdentityReason.INVALID_GRANT: 400,
    IdentityReason.UNAUTHORIZED_CLIENT: 400,
    IdentityReason.UNSUPPORTED_RESPONSE_TYPE: 400,
    IdentityReason.UNSUPPORTED_GRANT_TYPE: 400,
    IdentityReason.INVALID_SCOPE: 400,
    IdentityReason.ACCESS_DENIED: 400,
    IdentityReason.INSECURE_TRANSPORT: 400,
    IdentityReason.MISSING_AUTHORIZATION: 401,
    IdentityReason.UNSUPPORTED_TOKEN_TYPE: 401,
    IdentityReason.INVALID_TOKEN: 401,
    IdentityReason.INSUFFICIENT_SCOPE: 403,
    # Staff: a role or a token's scopes without the permission; the bootstrap done.
    IdentityReason.FORBIDDEN: 403,
    IdentityReason.BOOTSTRAP_DONE: 409,
}


def one_status_each(*groups: Iterable[tuple[str, int]]) -> dict[str, int]:
    """The groups' rows as one table. A reason may stand in two groups (`unauthorized` is
    the edge's and the identity actor's) with one status; with two, it is a defect."""
    table: dict[str, int] = {}
    for group in groups:
        for reason, status in group:
            code = str(reason)
            if table.setdefault(code, status) != status:
                raise InvariantViolation(
                    f"the reason {code!r} has two statuses: {table[code]} and {status}"
                )
    return table


# Every reason code the front answers with, and its status.
REASON_STATUS: dict[str, int] = one_status_each(
    _WALLET_STATUS.items(), _FRONT_STATUS.items(), _IDENTITY_STATUS.items()
)


def status_of(reason: str) -> int:
    """The HTTP status of a reason code; a code without one is a programmer error."""
    status = REASON_STATUS.get(reason)
    if status is None:
        raise InvariantViolation(f"the reason {reason!r} has no status in REASON_STATUS")
    return status


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
        return status_of(reason)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.reason!r}, {self.message!r})"


class AccessRefused(ApiError):
    """The caller is not one the route's `access` admits; the handler did not run."""


class FormRefused(ApiError):
    """A posted form that is not read (`forms.read_urlencoded`)."""


class IdentityRefused(ApiError):
    """The identity actor refused: its reply, answered with its reason's status."""

    def __init__(self, refused: Refused) -> None:
        self.refused = refused
        super().__init__(
            refused.reason,
            refused.message,
            retry_after_s=refused.retry_after_s,
            attempts_left=refused.attempts_left,
        )


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


def asks_event_stream(request: web.Request) -> bool:
    """A request for server-sent events, as a browser's EventSource asks: the timeout
    leaves it be, and the route streams (to anyone else it answers once and ends)."""
    return request.headers.get("Accept", "") == "text/event-stream"


def timeout_middleware(timeout_s: float) -> Middleware:
    """Bound every request's time on the server; long-lived WebSockets and event streams
    (`Accept: text/event-stream`, which bound their own life) are exempt.

    A change that timed out may still happen: the front goes on sending its operation
    to the shard (with the same idempotency key) after the answer has gone. So it is
    answered `outcome_unknown`, never a bare "try again" that a POS system might ring
    up again under a new key and charge twice; a read is answered `timeout`."""

    @web.middleware
    async def bounded(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        if asks_event_stream(request):
            # A stream of server-sent events (the console's live view, the counter's card
            # reader) lives as long as its page; the route bounds its watchers.
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
