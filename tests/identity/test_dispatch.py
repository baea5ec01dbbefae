"""The identity service's one table: every request type has exactly one handler, and
every kind of flow exactly one part that takes its steps.

The types are read from the request union itself, so a request type added to
`messages.IdentityRequest` without a handler fails here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import pytest

from coopnode.actors.identity.messages import Answer, Done, IdentityRequest
from coopnode.actors.identity.service import handler_table
from coopnode.domain.errors import InvariantViolation
from coopnode.domain.identity import FlowKind
from tests.identity.harness import Harness


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    built = Harness(tmp_path)
    try:
        yield built
    finally:
        built.close()


def test_every_request_type_in_the_union_has_exactly_one_handler(harness: Harness) -> None:
    request_types = get_args(IdentityRequest)
    assert len(request_types) > 40  # the union was read, not an empty tuple
    routed = Counter(kind for kind, _ in harness.service.routes)
    without_handler = [kind.__name__ for kind in request_types if not routed[kind]]
    filed_twice = [kind.__name__ for kind, count in routed.items() if count > 1]
    not_requests = [kind.__name__ for kind in routed if kind not in request_types]
    assert (without_handler, filed_twice, not_requests) == ([], [], [])


def test_every_kind_of_flow_has_exactly_one_step_handler(harness: Harness) -> None:
    routed = Counter(kind for kind, _ in harness.service.step_routes)
    assert {kind: routed[kind] for kind in FlowKind} == dict.fromkeys(FlowKind, 1)


def test_a_type_filed_twice_is_refused_when_the_table_is_built() -> None:
    async def one(request: object) -> Answer:
        return Answer(reply=Done(message="one"))

    with pytest.raises(InvariantViolation, match="two identity handlers"):
        handler_table([(FlowKind.PASSWORD, one), (FlowKind.PASSWORD, one)])
