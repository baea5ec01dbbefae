"""Reading an HTML form, the one way every form route does it.

A form is `application/x-www-form-urlencoded` in UTF-8, of at most a bounded size and
number of fields, and sent from this node's own pages (`hardening.foreign_origin`).
Anything else — `multipart/form-data`, a body that is not UTF-8, a percent-escape that
does not decode to UTF-8, too many fields, too many bytes — is a `FormRefused` (an
`ApiError`: see `errors.py`) with its reason, which each caller answers in its own shape
(the portal's error page, OAuth's JSON). None of it reaches a handler half-read.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from aiohttp import web

from coopnode.http.errors import FormRefused
from coopnode.http.hardening import foreign_origin

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


async def _body(request: web.Request, body_max_bytes: int) -> bytes:
    if request.content_length is not None and request.content_length > body_max_bytes:
        raise FormRefused("too_large", "the form is too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(16_384):
        size += len(chunk)
        if size > body_max_bytes:
            raise FormRefused("too_large", "the form is too large")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_urlencoded(
    request: web.Request, *, fields_max: int, body_max_bytes: int
) -> list[tuple[str, str]]:
    """The fields of a form from this node's pages, in the order sent."""
    if foreign_origin(request) is not None:
        raise FormRefused("foreign_origin", "this form was sent from another site")
    if request.content_type != FORM_CONTENT_TYPE:
        raise FormRefused("invalid_request", f"a form is sent as {FORM_CONTENT_TYPE}")
    body = await _body(request, body_max_bytes)
    try:
        return parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=fields_max,
            encoding="utf-8",
            errors="strict",
        )
    except UnicodeDecodeError:
        raise FormRefused("invalid_request", "the form is not UTF-8") from None
    except ValueError:
        raise FormRefused("invalid_request", "the form has too many fields") from None
