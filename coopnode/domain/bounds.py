"""Every integer a client may send, as a named type with its bounds, defined once.

Python's integers have no size, but every integer the node receives goes somewhere that
does: MessagePack (at most 2**64 - 1) on the way to a shard or an actor, an 8-byte key
in LMDB, a `datetime` (years 1 to 9999), a JavaScript number in a browser (exact up to
2**53 - 1). An integer past any of those, if it got in, failed later and elsewhere:
an unbounded `before_seq` on a history page broke the MessagePack encoding of the whole
batch it travelled in, failing every payment beside it. So each integer in a path, a
query or a body is one of the types below (or a narrower one named after what it
counts, such as `AmountYen`), checked where it arrives; out of range is a 400 with its
reason, and nothing travels on.

Text that should hold an integer (a form field, a path segment, a header) goes through
`parse_int`, which checks it against the same types, so that one rule decides everywhere
("²" is a digit to `str.isdigit` but not an integer to `int`). Query strings are decoded
into a typed struct whole (`read_query` in the HTTP layer), with the same types.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from coopnode.domain.errors import InvalidInput
from coopnode.domain.money import Reason

# The largest integer a JavaScript client (and any JSON parser using doubles) reads
# exactly; it also fits MessagePack's int64 and the 8-byte big-endian keys of the stores.
SAFE_INTEGER_MAX = 2**53 - 1
# The last millisecond of 9999-12-31 UTC: Python's `datetime` shows no later instant.
EPOCH_MS_MAX = 253_402_300_799_999
EPOCH_S_MAX = EPOCH_MS_MAX // 1000
# The most lines any list answers in one page (`identity.audit_page_max` is at most this):
# a client asking for more would be asking for lines the node never sends at once.
PAGE_LINES_MAX = 1000
# The most seats an event can be given (`identity.event_capacity_max` is at most this): a
# lecture hall, not a stadium.
EVENT_SEATS_MAX = 100_000

# More digits than any bound above has: refused before `int` reads them.
_DIGITS_MAX = 20

# A record's number (a journal sequence, an audit entry, a desk request), from 1.
RecordNo = Annotated[int, msgspec.Meta(ge=1, le=SAFE_INTEGER_MAX)]
# A paging cursor: "older than this record's number"; 0 means from the newest.
Cursor = Annotated[
    int,
    msgspec.Meta(
        ge=0, le=SAFE_INTEGER_MAX, description="older than this sequence number; 0: newest"
    ),
]
# How many lines a client asks for in one page.
PageLines = Annotated[int, msgspec.Meta(ge=1, le=PAGE_LINES_MAX)]
# The seats of an event.
EventSeats = Annotated[int, msgspec.Meta(ge=1, le=EVENT_SEATS_MAX)]
# An instant in milliseconds (or seconds) since the Unix epoch.
EpochMs = Annotated[int, msgspec.Meta(ge=0, le=EPOCH_MS_MAX, description="ms since 1970 UTC")]
EpochS = Annotated[int, msgspec.Meta(ge=0, le=EPOCH_S_MAX, description="s since 1970 UTC")]


def parse_int(text: str, bounded: Any, name: str) -> int:
    """`text` as an integer of the `bounded` type; InvalidInput names the field otherwise.

    Only ASCII digits are an integer here (no sign, exponent, space or "²"): every
    integer a client sends is a count, a number or an instant, none below zero.
    """
    if not (text.isascii() and text.isdigit()) or len(text) > _DIGITS_MAX:
        raise InvalidInput(Reason.INVALID_INPUT, f"{name} is a whole number, in digits")
    try:
        value: int = msgspec.convert(int(text), bounded)
    except msgspec.ValidationError as error:
        raise InvalidInput(Reason.INVALID_INPUT, f"{name}: {error}") from None
    return value
