"""Every integer a client can send has a bound on both sides, and text is read one way."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from coopnode.actors.identity.messages import IdentityRequest
from coopnode.domain.bounds import EPOCH_MS_MAX, SAFE_INTEGER_MAX, Cursor, EpochMs, parse_int
from coopnode.domain.errors import InvalidInput
from coopnode.domain.messages import Operation
from coopnode.domain.till_frames import SignedBody, TillFrame
from coopnode.http.api.desk import DESK_ROUTES
from coopnode.http.api.dev_outbox import DEV_ROUTES
from coopnode.http.api.identity import IDENTITY_ROUTES
from coopnode.http.api.konbini import KONBINI_ROUTES, SweepRequest
from coopnode.http.api.oauth import OAUTH_ROUTES
from coopnode.http.api.wallet import ROUTES
from coopnode.http.tills.api import TILL_ROUTES
from coopnode.payments.konbini import PaymentNotice

ROUTE_TABLES = (ROUTES, IDENTITY_ROUTES, OAUTH_ROUTES, DESK_ROUTES, KONBINI_ROUTES, DEV_ROUTES)


def _unbounded_ints(info: msgspec.inspect.Type, path: str, seen: set[Any]) -> list[str]:
    """The paths of every integer in a type that lacks a lower or an upper bound."""
    inspect = msgspec.inspect
    match info:
        case inspect.IntType():
            low = info.ge is not None or info.gt is not None
            high = info.le is not None or info.lt is not None
            return [] if low and high else [path]
        case inspect.StructType():
            if info.cls in seen:
                return []
            seen.add(info.cls)
            return [
                found
                for field in info.fields
                for found in _unbounded_ints(field.type, f"{info.cls.__name__}.{field.name}", seen)
            ]
        case inspect.UnionType():
            return [found for part in info.types for found in _unbounded_ints(part, path, seen)]
        case inspect.ListType() | inspect.SetType() | inspect.FrozenSetType():
            return _unbounded_ints(info.item_type, f"{path}[]", seen)
        case inspect.VarTupleType():
            return _unbounded_ints(info.item_type, f"{path}[]", seen)
        case inspect.TupleType():
            parts = info.item_types
            return [found for part in parts for found in _unbounded_ints(part, path, seen)]
        case inspect.DictType():
            return _unbounded_ints(info.key_type, f"{path}{{}}", seen) + _unbounded_ints(
                info.value_type, f"{path}{{}}", seen
            )
    return []


def _client_types() -> list[Any]:
    """Every type the node decodes from what a client sends: bodies, queries, frames."""
    types: list[Any] = [Operation, IdentityRequest, TillFrame, SignedBody]
    types += [SweepRequest, PaymentNotice]
    for table in (*ROUTE_TABLES, TILL_ROUTES):
        for route in table:
            types += [t for t in (route.request, route.query_type) if t is not None]
    return types


def _name(client_type: Any) -> str:
    return (
        getattr(client_type, "__name__", None)
        or "|".join(part.__name__ for part in client_type.__args__)[:60]
    )


@pytest.mark.parametrize("client_type", _client_types(), ids=_name)
def test_every_integer_a_client_sends_is_bounded(client_type: Any) -> None:
    assert _unbounded_ints(msgspec.inspect.type_info(client_type), "", set()) == []


def test_every_integer_query_parameter_is_typed() -> None:
    """Integers in a query string come through a typed struct, never as bare text."""
    untyped = [
        (route.path, name)
        for table in ROUTE_TABLES
        for route in table
        for name, kind in route.query
        if kind != "string"
    ]
    assert untyped == []


@pytest.mark.parametrize(
    "text", ["", "-1", "+1", " 1", "1 ", "1e3", "0x10", "1_000", "²", "１", "1" * 5000]
)
def test_text_that_is_not_plain_digits_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="cursor is a whole number"):
        parse_int(text, Cursor, "cursor")


def test_digits_out_of_range_are_refused_with_the_bound() -> None:
    assert parse_int(str(SAFE_INTEGER_MAX), Cursor, "cursor") == SAFE_INTEGER_MAX
    with pytest.raises(InvalidInput, match=f"cursor: Expected `int` <= {SAFE_INTEGER_MAX}"):
        parse_int("99999999999999999999", Cursor, "cursor")
    assert parse_int(str(EPOCH_MS_MAX), EpochMs, "at_ms") == EPOCH_MS_MAX
    with pytest.raises(InvalidInput):
        parse_int(str(EPOCH_MS_MAX + 1), EpochMs, "at_ms")
